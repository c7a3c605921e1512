// The JSON a tool printed (`ip -j`, `tc -j`, `devlink -j`): parsed, or one clear error that names
// the command, never a SyntaxError from deep inside.

import { ValidationError } from './errors.js';

export function parseJsonOutput(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError(`${what}: output is not JSON`);
  }
}
