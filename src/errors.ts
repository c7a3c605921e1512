// Errors that callers branch on. Every message names what failed (VM, field, step or device)
// and keeps the original error as `cause`, so one line is enough for `virsh start` to show.

import { clip, vmLabel } from './quote.js';

export interface ErrorContext {
  vm?: string;
  step?: string;
  device?: string;
  cause?: unknown;
}

export class VfwireError extends Error {
  override name = 'VfwireError';
  /** The VM's name as libvirt knows it (messages quote it when it is odd). */
  readonly vm?: string;
  readonly step?: string;
  readonly device?: string;

  constructor(message: string, ctx: ErrorContext = {}) {
    super(prefix(ctx) + message, ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.vm = ctx.vm;
    this.step = ctx.step;
    this.device = ctx.device;
  }
}

/** Bad input: metadata, config, CLI flags. The message says which field and why. */
export class ValidationError extends VfwireError {
  override name = 'ValidationError';
}

/** A kernel object that is already gone; teardown treats it as done. */
export class NotFoundError extends VfwireError {
  override name = 'NotFoundError';
}

/** No free VF, lock timeout and similar: the request was fine but cannot be served now. */
export class ResourceError extends VfwireError {
  override name = 'ResourceError';
}

/** Already reported to the user; just exit with this code. */
export class ExitError extends Error {
  override name = 'ExitError';
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

function prefix(ctx: ErrorContext): string {
  const parts = [ctx.vm !== undefined && `vm ${vmLabel(ctx.vm)}`, ctx.step, ctx.device].filter(Boolean);
  return parts.length ? parts.join(': ') + ': ' : '';
}

/** One line for a terminal or libvirt's error message: the message, then each cause. */
export function oneLine(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && depth < 4; depth++) {
    const msg = e instanceof Error ? e.message : String(e);
    if (!parts.some((p) => p.includes(msg))) parts.push(msg);
    e = e instanceof Error ? e.cause : undefined;
  }
  // Causes include other programs' stderr: no line breaks, escapes or invisible characters.
  return clip(parts.join(': ').replace(/\s*\n\s*/g, '; '), 1000);
}
