// `vfwire vm set|show|unset VM`: read and write a defined domain's vfwire metadata, so nobody
// hand-writes XML. Goes through `virsh metadata` for now (argv, never a shell).

import { VFWIRE_NS, type InterfaceSpec } from '../domain/interface-spec.js';
import { parseMetadataElement } from '../domain/parse-domain.js';
import { renderMetadata } from '../domain/render-metadata.js';
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
  const current = (await readSpecs(vm)) ?? [];
  const index = opts.index === undefined ? 0 : Number(opts.index);
  if (!Number.isInteger(index) || index < 0 || index > current.length) {
    throw new ValidationError(`--index: must be 0..${current.length} (the next free slot appends an interface)`, { vm });
  }
  const ifaces: Parameters<typeof renderMetadata>[0] = current.map((s) => ({ vni: s.vni, mac: s.mac, mtu: s.mtu, encrypt: s.encrypt, pf: s.pf }));
  // Attributes are strings until the metadata parser below validates the whole element.
  const next = { vni: opts.vni, mac: opts.mac, mtu: opts.mtu, encrypt: opts.encrypt, pf: opts.pf } as unknown as (typeof ifaces)[number];
  ifaces[index] = next;
  const xml = renderMetadata(ifaces);
  parseMetadataElement(withNamespace(xml), vm, '00000000-0000-0000-0000-000000000000');
  await virsh(vm, ['metadata', '--domain', vm, '--uri', VFWIRE_NS, '--key', 'vfwire', '--set', xml, '--config']);
}

export async function vmUnset(vm: string): Promise<void> {
  await virsh(vm, ['metadata', '--domain', vm, '--uri', VFWIRE_NS, '--remove', '--config']);
}

export async function vmShow(vm: string, opts: { json?: boolean }): Promise<void> {
  const specs = await readSpecs(vm);
  if (opts.json) return console.log(JSON.stringify({ vm, interfaces: specs ?? [] }, null, 2));
  if (!specs) return console.log(`${vm}: no vfwire metadata (tag it with: vfwire vm set ${vm} --vni N)`);
  for (const s of specs) {
    console.log(`${vm} interface ${s.index}: vni ${s.vni}, mac ${s.mac}, mtu ${s.mtu ?? 'default'}, encrypt ${s.encrypt}${s.pf ? `, pf ${s.pf}` : ''}`);
  }
}

/** The domain's vfwire interfaces, or null when it has no vfwire metadata. */
async function readSpecs(vm: string): Promise<InterfaceSpec[] | null> {
  let xml: string;
  try {
    xml = await virsh(vm, ['metadata', '--domain', vm, '--uri', VFWIRE_NS, '--config']);
  } catch (err) {
    if (/metadata not found|not present/i.test((err as Error).message)) return null;
    throw err;
  }
  const uuid = (await virsh(vm, ['domuuid', '--domain', vm])).trim();
  return parseMetadataElement(xml, vm, uuid);
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

function withNamespace(xml: string): string {
  return xml.replace(/^<net/, `<net xmlns="${VFWIRE_NS}"`);
}
