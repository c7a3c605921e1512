// Absence told apart from failure: a read whose object is not there answers undefined, any other
// failure (a timeout, a tool missing, a kernel error) throws. The runner decides what "not there"
// is (NotFoundError, from the tools' own words in runner.ts).

import { NotFoundError } from '../errors.js';

/** true: the read succeeded; false: its object is not there (NotFoundError); anything else is thrown. */
export async function isPresent(read: Promise<unknown>): Promise<boolean> {
  return (await ifPresent(read.then(() => true))) ?? false;
}

export async function ifPresent<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}
