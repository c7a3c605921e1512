// Kernel and iproute2 versions as the model compares them: "6.12", "6.1.0-31-amd64", "6.15.0".

export type Version = [number, number, number];

export function parseVersion(v: string): Version {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(v.trim());
  if (!m) throw new Error(`mlx5 model: ${JSON.stringify(v)} is not a version like 6.12 or 6.1.0-31-amd64`);
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/** a >= b, comparing major, minor, patch. */
export function atLeast(a: Version, b: string): boolean {
  const w = parseVersion(b);
  for (let i = 0; i < 3; i++) {
    if (a[i]! !== w[i]!) return a[i]! > w[i]!;
  }
  return true;
}
