// devlink for the sim's PF, which has no devlink device: the few commands vfwire sends, answered
// from a state file in the sim's tree with devlink's own JSON, and with mlx5's rule that the
// eswitch mode changes only while no VFs are enabled.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EswitchMode } from '../host/devlink.js';
import { CommandError, type RunResult, type Runner } from '../exec/runner.js';
import { formatCommand, type Command } from '../exec/step.js';

interface SimDevlinkState {
  mode: EswitchMode;
  flow_steering_mode: string;
}

const SIM_DEVLINK_FILE = 'sim-devlink.json';

export async function writeSimDevlinkState(pciDir: string, state: SimDevlinkState): Promise<void> {
  await writeFile(join(pciDir, SIM_DEVLINK_FILE), JSON.stringify(state) + '\n');
}

/** Passes every command through, except `devlink`, which it answers itself. */
export class SimDevlinkRunner implements Runner {
  constructor(
    private readonly sysfsRoot: string,
    private readonly inner: Runner,
  ) {}

  async run(cmd: Command): Promise<RunResult> {
    if (cmd.argv[0] !== 'devlink') return this.inner.run(cmd);
    const args = cmd.argv.slice(1).filter((a) => a !== '-j');
    const dev = args.find((a) => a.startsWith('pci/'));
    if (!dev) throw new CommandError(`${formatCommand(cmd)}: sim devlink: no pci/ device`);
    const pciDir = join(this.sysfsRoot, 'bus/pci/devices', dev.slice(4));
    const state = JSON.parse(
      await readFile(join(pciDir, SIM_DEVLINK_FILE), 'utf8').catch(() => {
        throw new CommandError(`${formatCommand(cmd)}: exit code 1: kernel answers: No such device`);
      }),
    ) as SimDevlinkState;
    const verb = args.slice(0, 3).join(' ');
    const value = (key: string) => args[args.indexOf(key) + 1];
    switch (verb) {
      case 'dev eswitch show':
        return out({ dev: { [dev]: { mode: state.mode, 'inline-mode': 'none', 'encap-mode': 'basic' } } });
      case 'dev param show':
        return out({
          param: {
            [dev]: [
              {
                name: 'flow_steering_mode',
                type: 'driver-specific',
                values: [{ cmode: 'runtime', value: state.flow_steering_mode }],
              },
            ],
          },
        });
      case 'dev eswitch set': {
        const numvfs = Number((await readFile(join(pciDir, 'sriov_numvfs'), 'utf8')).trim());
        if (numvfs !== 0 && value('mode') !== state.mode)
          throw new CommandError(
            `${formatCommand(cmd)}: exit code 1: Error: mlx5_core: Can't change mode while VFs are enabled.`,
          );
        state.mode = value('mode') as EswitchMode;
        break;
      }
      case 'dev param set':
        state.flow_steering_mode = value('value') ?? state.flow_steering_mode;
        break;
      default:
        throw new CommandError(`${formatCommand(cmd)}: sim devlink does not know "${verb}"`);
    }
    await writeSimDevlinkState(pciDir, state);
    return out(undefined);
  }
}

function out(doc: unknown): RunResult {
  return { stdout: doc === undefined ? '' : JSON.stringify(doc), stderr: '' };
}
