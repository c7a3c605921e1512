// Waiting for something outside the process (a daemon, a socket, a console line): poll, with a
// deadline and a message that names what never came.

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every `intervalMs` until it returns a value (not undefined) or `ms` are up. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  ms = 30_000,
  intervalMs = 200,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
