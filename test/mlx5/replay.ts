// Replays a list of vfwire Commands through the mlx5 model in order: the final state when every
// command was accepted, or the first refusal with its index (the commands after it are not run).

import type { Command } from '../../src/exec/step.js';
import { Mlx5Refusal } from './refusal.js';
import type { HostState, Mlx5Host } from './model.js';

export type ReplayResult =
  | { ok: true; state: HostState; stdout: string[] }
  | { ok: false; index: number; command: Command; refusal: Mlx5Refusal; state: HostState };

export function replay(host: Mlx5Host, commands: readonly Command[]): ReplayResult {
  const stdout: string[] = [];
  for (let index = 0; index < commands.length; index++) {
    const command = commands[index]!;
    try {
      stdout.push(host.run(command));
    } catch (e) {
      if (e instanceof Mlx5Refusal) return { ok: false, index, command, refusal: e, state: host.state() };
      throw e;
    }
  }
  return { ok: true, state: host.state(), stdout };
}

/**
 * Golden-plan lines as Commands: one command a line, `#` lines skipped, and `CMD <<< INPUT` (the
 * formatCommandWithInput form) split into argv and stdin. Quoting is the plain shell subset vfwire's
 * formatter writes (single quotes).
 */
export function commandsFromPlanText(text: string): Command[] {
  const out: Command[] = [];
  // A command's quoted stdin may span lines (a merged nft script): a line continues while its
  // quotes are open (a quote that is not shell-escaped as \' opens or closes one).
  const lines: string[] = [];
  for (const raw of text.split('\n')) {
    const last = lines.at(-1);
    if (last !== undefined && (last.match(/(?<!\\)'/g) ?? []).length % 2 === 1)
      lines[lines.length - 1] = `${last}\n${raw}`;
    else lines.push(raw);
  }
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const at = line.indexOf(' <<< ');
    const argv = splitWords(at >= 0 ? line.slice(0, at) : line);
    out.push(at >= 0 ? { argv, stdin: `${unquote(line.slice(at + 5))}\n` } : { argv });
  }
  return out;
}

function unquote(s: string): string {
  const t = s.trim();
  return t.startsWith("'") && t.endsWith("'") ? t.slice(1, -1).replace(/'\\''/g, "'") : t;
}

function splitWords(s: string): string[] {
  const words: string[] = [];
  const re = /'((?:[^']|'\\'')*)'|(\S+)/g;
  for (let m = re.exec(s); m; m = re.exec(s)) words.push(m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2]!);
  return words;
}
