// The error a promise rejects with; fails the test when it resolves.

import { expect } from 'chai';

export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(Error);
    return err as Error;
  }
  throw new Error('expected a rejection');
}
