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

/** nft has no `-n NS`: inside a netns it runs under `ip netns exec`. */
export function nft(netns: string | undefined, ...args: string[]): string[] {
  return netns ? ['ip', 'netns', 'exec', netns, 'nft', ...args] : ['nft', ...args];
}

/** arping (iputils) has no `-n NS` either. */
export function arping(netns: string | undefined, ...args: string[]): string[] {
  return netns ? ['ip', 'netns', 'exec', netns, 'arping', ...args] : ['arping', ...args];
}
