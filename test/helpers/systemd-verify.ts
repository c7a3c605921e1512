// systemd's own check of vfwire's unit files (systemd-analyze verify), on copies whose
// ExecStart program points into the tree the test installed (verify wants it to exist).

import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

/** Verifies each unit (name -> text) with `program` put where `installedAs` is; fails on any warning about them. */
export async function expectUnitsVerify(units: Record<string, string>, installedAs: string, program: string) {
  const check = mkdtempSync(join(tmpdir(), 'vfwt-units-'));
  try {
    for (const [name, text] of Object.entries(units))
      writeFileSync(join(check, name), text.replaceAll(installedAs, program));
    const verify = await execa(
      'systemd-analyze',
      ['verify', '--man=no', '--generators=no', ...Object.keys(units).map((u) => join(check, u))],
      { reject: false },
    );
    expect(verify.exitCode, verify.stderr).to.equal(0);
    expect(verify.stderr, 'warnings about our units').to.not.match(/vfwire-(host-setup|ipsec)\.service:/);
  } finally {
    rmSync(check, { recursive: true, force: true });
  }
}
