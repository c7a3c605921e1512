// Whether a NIC encrypts ESP itself: `ethtool -k` says `esp-hw-offload: on` (the lab notes'
// test of a working ConnectX-6 Dx; a card without the crypto option says `off [fixed]`).

import type { Runner } from '../exec/runner.js';

export async function hasEspOffload(runner: Runner, netns: string | undefined, dev: string): Promise<boolean> {
  const argv = netns ? ['ip', 'netns', 'exec', netns, 'ethtool', '-k', dev] : ['ethtool', '-k', dev];
  const { stdout } = await runner.run({ argv });
  return /^esp-hw-offload: on\b/m.test(stdout);
}
