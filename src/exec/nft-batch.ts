// `nft -f -` scripts of one netns as one nft process. nft sends a file to the kernel as one
// netlink batch, and the kernel commits it whole or aborts it whole (net/netfilter/nfnetlink.c
// nfnetlink_rcv_batch: any message's error aborts the batch, nf_tables_abort undoes the rest),
// so a merged script that failed changed nothing, and its parts can be run one by one to find
// which fails. Each nft process costs some 30 ms (it reads the ruleset before it writes).

import { nft } from './tools.js';
import type { Command } from './step.js';

/** The netns and script of an `nft -f -` command (as exec/tools.ts nft() builds it), else undefined. */
export function nftScriptOf(cmd: Command): { netns: string | undefined; script: string } | undefined {
  if (cmd.stdin === undefined || !cmd.inputShown) return undefined;
  const a = cmd.argv;
  if (a.length === 3 && a[0] === 'nft' && a[1] === '-f' && a[2] === '-') return { netns: undefined, script: cmd.stdin };
  if (a.length === 7 && a[0] === 'ip' && a[1] === 'netns' && a[2] === 'exec' && a.slice(4).join(' ') === 'nft -f -')
    return { netns: a[3], script: cmd.stdin };
  return undefined;
}

/** A command that may stand for several (nftLast): run `parts` one by one should it fail. Never recorded. */
export interface UndoCommand extends Command {
  parts?: Command[];
}

/** One `nft -f -` running the scripts in order, as one transaction. */
export function mergedNft(netns: string | undefined, scripts: string[]): Command {
  return {
    argv: nft(netns, '-f', '-'),
    stdin: scripts.map((s) => (s.endsWith('\n') ? s : `${s}\n`)).join(''),
    inputShown: true,
  };
}

/**
 * A release's commands with its nft scripts last, merged per netns: each one left `parts` to
 * run singly should the merged one fail. Every nft script vfwire undoes with removes a
 * restriction (overlay/rep-guard.ts repUnguardScript, overlay/admission.ts
 * admissionRemoveScript), so run later it holds that restriction longer, never shorter.
 */
export function nftLast(commands: Command[]): UndoCommand[] {
  const rest: Command[] = [];
  const byNetns = new Map<string | undefined, Command[]>();
  for (const cmd of commands) {
    const s = nftScriptOf(cmd);
    if (!s) rest.push(cmd);
    else byNetns.set(s.netns, [...(byNetns.get(s.netns) ?? []), cmd]);
  }
  const merged = [...byNetns].map(([netns, cmds]) =>
    cmds.length === 1
      ? cmds[0]!
      : {
          ...mergedNft(
            netns,
            cmds.map((c) => c.stdin!),
          ),
          parts: cmds,
        },
  );
  return [...rest, ...merged];
}
