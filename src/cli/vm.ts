// `vfwire vm set|show|unset VM`: read and write a defined domain's vfwire metadata through the
// libvirt binding, so nobody hand-writes XML. Changes go to the persistent definition and take
// effect at the VM's next start.

import { VFWIRE_NS, type InterfaceSpec } from '../domain/interface-spec.js';
import { deriveMac } from '../domain/mac.js';
import { parseMetadataElement } from '../domain/parse-domain.js';
import { renderMetadata, type MetadataInterface } from '../domain/render-metadata.js';
import { ValidationError } from '../errors.js';
import { ErrorCode, isLibvirtError, ModifyFlag, openConnection, type Domain } from '../libvirt/index.js';

export interface VmSetOptions {
  vni?: string;
  index?: string;
  mac?: string;
  mtu?: string;
  encrypt?: string;
  pf?: string;
}

const METADATA_KEY = 'vfwire';

/** Sets interface --index (default 0): flags not given keep their current value; a new index appends. */
export async function vmSet(vm: string, opts: VmSetOptions): Promise<void> {
  await withDomain(vm, async (dom) => {
    const specs = await readSpecs(dom, vm);
    const index = opts.index === undefined ? 0 : Number(opts.index);
    if (!Number.isInteger(index) || index < 0 || index > specs.length) {
      throw new ValidationError(`--index: must be 0..${specs.length} (the next free slot appends an interface)`, { vm });
    }
    // Derived MACs stay derived: writing them out would pin them through a clone's new UUID.
    const ifaces: MetadataInterface[] = specs.map((s) => ({ vni: s.vni, mac: s.mac === deriveMac(dom.uuid(), s.index) ? undefined : s.mac, mtu: s.mtu, encrypt: s.encrypt, pf: s.pf }));
    const current = ifaces[index];
    if (!current && opts.vni === undefined) throw new ValidationError(`interface ${index}: vni: required for a new interface (--vni N)`, { vm });
    const given = Object.fromEntries(Object.entries({ vni: opts.vni, mac: opts.mac, mtu: opts.mtu, encrypt: opts.encrypt, pf: opts.pf }).filter(([, v]) => v !== undefined));
    // Flags are strings until the metadata parser below validates the whole element.
    ifaces[index] = { ...current, ...given } as MetadataInterface;
    const xml = renderMetadata(ifaces, { vm });
    parseMetadataElement(xml, vm, dom.uuid());
    await dom.setMetadata(VFWIRE_NS, METADATA_KEY, xml, ModifyFlag.Config);
  });
}

export async function vmUnset(vm: string): Promise<void> {
  await withDomain(vm, (dom) => dom.setMetadata(VFWIRE_NS, METADATA_KEY, null, ModifyFlag.Config));
}

export async function vmShow(vm: string, opts: { json?: boolean }): Promise<void> {
  const specs = await withDomain(vm, (dom) => readSpecs(dom, vm));
  if (opts.json) return console.log(JSON.stringify({ vm, interfaces: specs }, null, 2));
  if (specs.length === 0) return console.log(`${vm}: no vfwire metadata (tag it with: vfwire vm set ${vm} --vni N)`);
  for (const s of specs) {
    console.log(`${vm} interface ${s.index}: vni ${s.vni}, mac ${s.mac}, mtu ${s.mtu ?? 'default'}, encrypt ${s.encrypt}${s.pf ? `, pf ${s.pf}` : ''}`);
  }
}

/** The domain's vfwire interfaces in its persistent definition; none without metadata. */
async function readSpecs(dom: Domain, vm: string): Promise<InterfaceSpec[]> {
  const xml = await dom.getMetadata(VFWIRE_NS, ModifyFlag.Config);
  return xml === null ? [] : parseMetadataElement(xml, vm, dom.uuid());
}

async function withDomain<T>(vm: string, fn: (dom: Domain) => Promise<T>): Promise<T> {
  const uri = process.env.LIBVIRT_DEFAULT_URI ?? 'qemu:///system';
  const conn = await openConnection(uri);
  try {
    const dom = await conn.lookupDomainByName(vm).catch((err: unknown) => {
      if (isLibvirtError(err, ErrorCode.NoDomain)) throw new ValidationError(`no such domain (see: virsh -c ${uri} list --all)`, { vm, cause: err });
      throw err;
    });
    try {
      return await fn(dom);
    } finally {
      dom.free();
    }
  } finally {
    await conn.close();
  }
}
