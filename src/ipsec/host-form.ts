// The xfrm form of this host: its kernel and iproute2 read once per command, judged against the
// config's offload mode (xfrm-form.ts). The real backend is a ConnectX in switchdev mode.

import type { Config } from '../config/config.js';
import type { Runner } from '../exec/runner.js';
import { probeVersions } from '../host/versions.js';
import { xfrmForm, type XfrmForm } from './xfrm-form.js';

export async function hostXfrmForm(cfg: Pick<Config, 'backend' | 'ipsec'>, runner: Runner): Promise<XfrmForm> {
  return xfrmForm({ ...(await probeVersions(runner)), switchdev: cfg.backend === 'real' }, cfg.ipsec.offload);
}
