// Golden files: compare text with test/fixtures/<name>; UPDATE_GOLDEN=1 rewrites them.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

// Compiled tests run from dist/test/helpers; the fixtures stay in the source tree.
export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures');

export function expectGolden(name: string, actual: string): void {
  const file = join(FIXTURES, name);
  if (process.env.UPDATE_GOLDEN) writeFileSync(file, actual);
  expect(actual).to.equal(readFileSync(file, 'utf8'), `golden ${name} (UPDATE_GOLDEN=1 to accept a deliberate change)`);
}
