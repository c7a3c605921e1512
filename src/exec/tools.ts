// argv builders for the host tools. On a sim host every command runs inside the host's netns;
// Node cannot setns() one thread, so "inside" means iproute2's own `-n NS` (`ip -n`, `bridge -n`,
// `tc -n`).

export function ip(netns: string | undefined, ...args: string[]): string[] {
  return netns ? ['ip', '-n', netns, ...args] : ['ip', ...args];
}

export function bridge(netns: string | undefined, ...args: string[]): string[] {
  return netns ? ['bridge', '-n', netns, ...args] : ['bridge', ...args];
}

export function tc(netns: string | undefined, ...args: string[]): string[] {
  return netns ? ['tc', '-n', netns, ...args] : ['tc', ...args];
}

/** A tool without `-n NS` (nft, arping): inside a netns it runs under `ip netns exec`. */
function inNetns(netns: string | undefined, tool: string, args: string[]): string[] {
  return netns ? ['ip', 'netns', 'exec', netns, tool, ...args] : [tool, ...args];
}

export function nft(netns: string | undefined, ...args: string[]): string[] {
  return inNetns(netns, 'nft', args);
}

export function arping(netns: string | undefined, ...args: string[]): string[] {
  return inNetns(netns, 'arping', args);
}
