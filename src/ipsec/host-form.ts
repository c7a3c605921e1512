// The xfrm form of this host: its kernel and iproute2 read once per command, judged against the
// config's offload mode (xfrm-form.ts). The real backend is a ConnectX in switchdev mode.

import type { Config } from '../config/config.js';
import type { Runner } from '../exec/runner.js';
import { activeUplink } from '../failover/pf-switch.js';
import { probeVersions } from '../host/versions.js';
import { xfrmForm, type XfrmForm } from './xfrm-form.js';

export async function hostXfrmForm(cfg: Pick<Config, 'backend' | 'ipsec'>, runner: Runner): Promise<XfrmForm> {
  return xfrmForm({ ...(await probeVersions(runner)), switchdev: cfg.backend === 'real' }, cfg.ipsec.offload);
}

/**
 * What a static pair's SAs are rendered for on this host now, read before the ledger lock: the
 * xfrm form (refused here when the host cannot do what ipsec.offload asks) and the uplink the
 * SAs offload to.
 */
export async function pairHost(cfg: Config, runner: Runner): Promise<{ form: XfrmForm; uplink: string }> {
  const form = await hostXfrmForm(cfg, runner);
  return { form, uplink: await activeUplink(cfg, runner) };
}
