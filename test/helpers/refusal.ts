// Refusals: what a validating function throws for input it must not accept.

import { expect } from 'chai';
import { ValidationError } from '../../src/errors.js';

/** Runs `fn`, expects a ValidationError, returns it. */
export function refusal(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    return err as ValidationError;
  }
  return expect.fail('expected a ValidationError');
}
