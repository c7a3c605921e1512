// Absence told apart from failure, for files: a path that is not there answers undefined; any
// other failure (permissions, I/O, a full disk) throws. exec/if-present.ts does the same for tools.

const ABSENT = new Set(['ENOENT', 'ENOTDIR']);

export async function ifExists<T>(op: Promise<T>): Promise<T | undefined> {
  try {
    return await op;
  } catch (err) {
    if (ABSENT.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw err;
  }
}
