// Which consecutive steps share one process: `ip` steps of one netns as an `ip -batch`
// (exec/ip-batch.ts: it stops at the first failure and names it), `nft -f -` steps of one netns
// as one script (exec/nft-batch.ts: one transaction, all or nothing).

import { ipBatch, ipBatchLine } from './ip-batch.js';
import { mergedNft, nftScriptOf } from './nft-batch.js';
import type { Command, Step } from './step.js';

export interface StepGroup {
  steps: Step[];
  /** Set when the group is two or more steps run as one process. */
  batch?: { cmd: Command; tool: 'ip' | 'nft' };
}

/** The tool, netns and input line of a step that may share a process with its neighbours. */
function batchable(step: Step): { tool: 'ip' | 'nft'; netns: string | undefined; line: string } | undefined {
  const ip = ipBatchLine(step.do);
  if (ip) return { tool: 'ip', ...ip };
  const nft = nftScriptOf(step.do);
  return nft && { tool: 'nft', netns: nft.netns, line: nft.script };
}

/** Steps in order, consecutive batchable ones of one tool and netns grouped. */
export function groupSteps(steps: Step[]): StepGroup[] {
  const groups: StepGroup[] = [];
  let run: { tool: 'ip' | 'nft'; netns: string | undefined; steps: Step[]; lines: string[] } | undefined;
  const close = () => {
    if (!run) return;
    const cmd = run.tool === 'ip' ? ipBatch(run.netns, run.lines) : mergedNft(run.netns, run.lines);
    groups.push(run.steps.length === 1 ? { steps: run.steps } : { steps: run.steps, batch: { cmd, tool: run.tool } });
    run = undefined;
  };
  for (const step of steps) {
    const b = batchable(step);
    if (b && run && run.tool === b.tool && run.netns === b.netns) {
      run.steps.push(step);
      run.lines.push(b.line);
      continue;
    }
    close();
    if (b) run = { tool: b.tool, netns: b.netns, steps: [step], lines: [b.line] };
    else groups.push({ steps: [step] });
  }
  close();
  return groups;
}
