// `vfwire vm set|show|unset VM`: read and write a defined domain's vfwire metadata, so nobody
// hand-writes XML. Goes through `virsh metadata` for now (argv, never a shell).

import { VFWIRE_NS, type InterfaceSpec } from '../domain/interface-spec.js';
import { parseMetadataElement } from '../domain/parse-domain.js';
import { deriveMac } from '../domain/mac.js';
import { renderMetadata, type MetadataInterface } from '../domain/render-metadata.js';
import { ValidationError } from '../errors.js';
import { ExecRunner } from '../exec/runner.js';

const runner = new ExecRunner(30_000);

export interface VmSetOptions {
  vni: string;
  index?: string;
  mac?: string;
  mtu?: string;
  encrypt?: string;
  pf?: string;
}

export async function vmSet(vm: string, opts: VmSetOptions): Promise<void> {
  const current = await readSpecs(vm);
  const specs = current?.specs ?? [];
  const index = opts.index === undefined ? 0 : Number(opts.index);
  if (!Number.isInteger(index) || index < 0 || index > specs.length) {
    throw new ValidationError(`--index: must be 0..${specs.length} (the next free slot appends an interface)`, { vm });
  }
  // Derived MACs stay derived: writing them out would pin them through a clone's new UUID.
  const ifaces: MetadataInterface[] = specs.map((s) => ({ vni: s.vni, mac: s.mac === deriveMac(current!.uuid, s.index) ? undefined : s.mac, mtu: s.mtu, encrypt: s.encrypt, pf: s.pf }));
  // Flags are strings until the metadata parser below validates the whole element.
  ifaces[index] = { vni: opts.vni, mac: opts.mac, mtu: opts.mtu, encrypt: opts.encrypt, pf: opts.pf } as unknown as MetadataInterface;
  const xml = renderMetadata(ifaces, { vm });
  parseMetadataElement(xml, vm, current?.uuid ?? '00000000-0000-0000-0000-000000000000');
  await virsh(vm, ['metadata', '--domain', vm, '--uri', VFWIRE_NS, '--key', 'vfwire', '--set', xml, '--config']);
}

export async function vmUnset(vm: string): Promise<void> {
  await virsh(vm, ['metadata', '--domain', vm, '--uri', VFWIRE_NS, '--remove', '--config']);
}

export async function vmShow(vm: string, opts: { json?: boolean }): Promise<void> {
  const specs = (await readSpecs(vm))?.specs;
  if (opts.json) return console.log(JSON.stringify({ vm, interfaces: specs ?? [] }, null, 2));
  if (!specs) return console.log(`${vm}: no vfwire metadata (tag it with: vfwire vm set ${vm} --vni N)`);
  for (const s of specs) {
    console.log(`${vm} interface ${s.index}: vni ${s.vni}, mac ${s.mac}, mtu ${s.mtu ?? 'default'}, encrypt ${s.encrypt}${s.pf ? `, pf ${s.pf}` : ''}`);
  }
}

/** The domain's vfwire interfaces, or null when it has no vfwire metadata. */
async function readSpecs(vm: string): Promise<{ uuid: string; specs: InterfaceSpec[] } | null> {
  let xml: string;
  try {
    xml = await virsh(vm, ['metadata', '--domain', vm, '--uri', VFWIRE_NS, '--config']);
  } catch (err) {
    if (/metadata not found|not present/i.test((err as Error).message)) return null;
    throw err;
  }
  const uuid = (await virsh(vm, ['domuuid', '--domain', vm])).trim();
  return { uuid, specs: parseMetadataElement(xml, vm, uuid) };
}

async function virsh(vm: string, args: string[]): Promise<string> {
  const uri = process.env.LIBVIRT_DEFAULT_URI ?? 'qemu:///system';
  try {
    return (await runner.run({ argv: ['virsh', '-c', uri, ...args] })).stdout;
  } catch (err) {
    if (/failed to get domain|Domain not found/i.test((err as Error).message)) {
      throw new ValidationError(`no such domain (see: virsh -c ${uri} list --all)`, { vm, cause: err });
    }
    throw err;
  }
}
