// `vfwire vm set|show|unset VM`: read and write a defined domain's vfwire metadata through the
// libvirt binding, so nobody hand-writes XML. Changes go to the persistent definition and take
// effect at the VM's next start.

import { VFWIRE_NS, type InterfaceSpec } from '../domain/interface-spec.js';
import { deriveMac } from '../domain/mac.js';
import { parseMetadataElement } from '../domain/parse-domain.js';
import { renderMetadata, type MetadataInterface } from '../domain/render-metadata.js';
import { existsSync } from 'node:fs';
import { type Config, configPath, loadConfig } from '../config/config.js';
import { ValidationError } from '../errors.js';
import {
  ErrorCode,
  isLibvirtError,
  ModifyFlag,
  openConnection,
  type Connection,
  type Domain,
} from '../libvirt/index.js';
import { hotplugShortfall } from '../domain/hotplug-slots.js';
import { addMissingRootPorts } from '../ops/hotplug-ports.js';
import { readLedger } from '../ledger/store.js';
import { leasesOf } from '../ledger/record.js';
import { defaultGuestMtu, maxGuestMtu } from '../overlay/mtu.js';

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
export async function vmSet(vm: string, opts: VmSetOptions, configFlag?: string): Promise<void> {
  await withDomain(vm, await vmConfig(configFlag), async (dom, conn) => {
    const specs = await readSpecs(dom, vm);
    const index = opts.index === undefined ? 0 : Number(opts.index);
    if (!Number.isInteger(index) || index < 0 || index > specs.length) {
      throw new ValidationError(`--index: must be 0..${specs.length} (the next free slot appends an interface)`, {
        vm,
      });
    }
    // Derived MACs stay derived: writing them out would pin them through a clone's new UUID.
    const ifaces: MetadataInterface[] = specs.map((s) => ({
      vni: s.vni,
      mac: s.mac === deriveMac(dom.uuid(), s.index) ? undefined : s.mac,
      mtu: s.mtu,
      encrypt: s.encrypt,
      pf: s.pf,
    }));
    const current = ifaces[index];
    if (!current && opts.vni === undefined)
      throw new ValidationError(`interface ${index}: vni: required for a new interface (--vni N)`, { vm });
    const given = Object.fromEntries(
      Object.entries({ vni: opts.vni, mac: opts.mac, mtu: opts.mtu, encrypt: opts.encrypt, pf: opts.pf }).filter(
        ([, v]) => v !== undefined,
      ),
    );
    // Flags are strings until the metadata parser below validates the whole element.
    ifaces[index] = { ...current, ...given } as MetadataInterface;
    const xml = renderMetadata(ifaces, { vm });
    parseMetadataElement(xml, vm, dom.uuid());
    await dom.setMetadata(VFWIRE_NS, METADATA_KEY, xml, ModifyFlag.Config);
    // Each interface's VF is hot-plugged after the start: one free slot each.
    const { added, slots } = await addMissingRootPorts(conn, dom, ifaces.length);
    if (added)
      console.log(
        `${vm}: added ${added} pcie-root-port${added === 1 ? '' : 's'} to the persistent definition (q35 hot-plugs one VF per empty port; from the next start)`,
      );
    else {
      // What vm set cannot add (a pc VM's slots) it names.
      const short = hotplugShortfall(slots, ifaces.length, vm);
      if (short) console.error(`${vm}: ${short}`);
    }
  });
}

export async function vmUnset(vm: string, configFlag?: string): Promise<void> {
  await withDomain(vm, await vmConfig(configFlag), (dom) =>
    dom.setMetadata(VFWIRE_NS, METADATA_KEY, null, ModifyFlag.Config),
  );
}

/**
 * The MTU each interface's VF gets: the lease's while the VM holds one, else what a start would
 * give it under this host's config. The guest sets it itself (README: "The guest's MTU").
 */
export async function vmShow(vm: string, opts: { json?: boolean }, configFlag?: string): Promise<void> {
  const cfg = await vmConfig(configFlag);
  const { specs, uuid } = await withDomain(vm, cfg, async (dom) => ({
    specs: await readSpecs(dom, vm),
    uuid: dom.uuid(),
  }));
  const leases = cfg ? leasesOf(await readLedger(cfg.stateDir), uuid) : [];
  const vfMtu = (s: InterfaceSpec) => {
    const lease = leases.find((l) => l.index === s.index);
    if (lease) return { mtu: lease.mtu, why: `leased: ${lease.pf} vf ${lease.vf}` };
    if (!cfg) return undefined;
    const encrypted = cfg.ipsec.mode !== 'off';
    const max = maxGuestMtu(cfg.underlay.mtu, encrypted);
    const over = `at most ${max} over VXLAN${encrypted ? '+ESP' : ''} on the ${cfg.underlay.mtu} underlay`;
    if (s.mtu !== undefined)
      return s.mtu > max
        ? { mtu: s.mtu, why: `does not fit: ${over}; the start is refused` }
        : { mtu: s.mtu, why: 'from the metadata' };
    return { mtu: defaultGuestMtu(cfg.vfMtu, cfg.underlay.mtu, encrypted), why: `vf_mtu ${cfg.vfMtu}, ${over}` };
  };
  if (opts.json) {
    const interfaces = specs.map((s) => {
      const m = vfMtu(s);
      return m ? { ...s, vfMtu: m.mtu } : s;
    });
    return console.log(JSON.stringify({ vm, interfaces }, null, 2));
  }
  if (specs.length === 0) return console.log(`${vm}: no vfwire metadata (tag it with: vfwire vm set ${vm} --vni N)`);
  for (const s of specs) {
    const m = vfMtu(s);
    const mtu = m
      ? `${m.mtu} (${m.why})`
      : `${s.mtu ?? 'default'} (no config at ${configPath(configFlag)}: the host's vf_mtu, bounded by the overlay)`;
    console.log(
      `${vm} interface ${s.index}: vni ${s.vni}, mac ${s.mac}, mtu ${mtu}, encrypt ${s.encrypt}${s.pf ? `, pf ${s.pf}` : ''}`,
    );
  }
}

/** The host's config where there is one: its libvirt_uri and MTUs. None at the default path is fine. */
async function vmConfig(flag?: string): Promise<Config | undefined> {
  const path = configPath(flag);
  if (flag === undefined && !existsSync(path)) return undefined;
  return loadConfig(path);
}

/** The domain's vfwire interfaces in its persistent definition; none without metadata. */
async function readSpecs(dom: Domain, vm: string): Promise<InterfaceSpec[]> {
  const xml = await dom.getMetadata(VFWIRE_NS, ModifyFlag.Config);
  return xml === null ? [] : parseMetadataElement(xml, vm, dom.uuid());
}

async function withDomain<T>(
  vm: string,
  cfg: Config | undefined,
  fn: (dom: Domain, conn: Connection) => Promise<T>,
): Promise<T> {
  // The config's libvirt_uri, as for the rest of vfwire; without a config, libvirt's own default.
  const uri = cfg?.libvirtUri ?? process.env.LIBVIRT_DEFAULT_URI ?? 'qemu:///system';
  const conn = await openConnection(uri);
  try {
    const dom = await conn.lookupDomainByName(vm).catch((err: unknown) => {
      if (isLibvirtError(err, ErrorCode.NoDomain))
        throw new ValidationError(`no such domain (see: virsh -c ${uri} list --all)`, { vm, cause: err });
      throw err;
    });
    try {
      return await fn(dom, conn);
    } finally {
      dom.free();
    }
  } finally {
    await conn.close();
  }
}
