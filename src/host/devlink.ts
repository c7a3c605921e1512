// What vfwire reads from devlink: a PF's eswitch mode and its flow steering mode. On a real host
// `devlink -j` answers; the sim's PF has no devlink device, so sim/devlink-emulator.ts answers
// the same commands from the sim's tree, with the same JSON.

import { VfwireError } from '../errors.js';
import { CommandError, type Runner } from '../exec/runner.js';
import { parseJsonOutput } from '../json-output.js';

export type EswitchMode = 'legacy' | 'switchdev' | 'switchdev_inactive';

export interface DevlinkState {
  eswitchMode: EswitchMode;
  /** mlx5's flow_steering_mode parameter: dmfs (firmware) or smfs (software). */
  flowSteeringMode?: string;
}

/** `devlink -j dev eswitch show pci/BDF` prints {"dev":{"pci/BDF":{"mode":"switchdev",...}}}. */
export function parseEswitchShow(json: string, pci: string): EswitchMode {
  const mode = (parseJson(json, 'eswitch show', pci) as { dev?: Record<string, { mode?: unknown }> }).dev?.[
    `pci/${pci}`
  ]?.mode;
  if (mode === 'legacy' || mode === 'switchdev' || mode === 'switchdev_inactive') return mode;
  throw new VfwireError(`devlink eswitch show pci/${pci}: no eswitch mode in its output`);
}

/**
 * `devlink -j dev param show pci/BDF name flow_steering_mode` prints
 * {"param":{"pci/BDF":[{"name":"flow_steering_mode","type":"driver-specific","values":[{"cmode":"runtime","value":"dmfs"}]}]}}.
 */
export function parseFlowSteeringShow(json: string, pci: string): string | undefined {
  const params = (
    parseJson(json, 'param show', pci) as {
      param?: Record<string, { name?: string; values?: { cmode?: string; value?: unknown }[] }[]>;
    }
  ).param?.[`pci/${pci}`];
  const value = params?.find((p) => p.name === 'flow_steering_mode')?.values?.find((v) => v.cmode === 'runtime')?.value;
  return typeof value === 'string' ? value : undefined;
}

export async function readDevlinkState(runner: Runner, pci: string): Promise<DevlinkState> {
  const eswitch = await runner.run({ argv: ['devlink', '-j', 'dev', 'eswitch', 'show', `pci/${pci}`] });
  // Not every NIC has the parameter (only mlx5 does): absent is an answer, not an error. The
  // kernel answers a name the driver did not register with EINVAL (net/devlink/param.c
  // devlink_nl_param_get_doit), and devlink prints "kernel answers: <strerror>"
  // (iproute2 lib/mnl_utils.c mnlu_gen_socket_sndrcv); any other failure is thrown.
  const fsm = await runner
    .run({ argv: ['devlink', '-j', 'dev', 'param', 'show', `pci/${pci}`, 'name', 'flow_steering_mode'] })
    .catch((err: unknown) => {
      if (err instanceof CommandError && /kernel answers: Invalid argument$/m.test(err.message)) return undefined;
      throw err;
    });
  return {
    eswitchMode: parseEswitchShow(eswitch.stdout, pci),
    flowSteeringMode: fsm ? parseFlowSteeringShow(fsm.stdout, pci) : undefined,
  };
}

function parseJson(json: string, what: string, pci: string): unknown {
  return parseJsonOutput(json, `devlink ${what} pci/${pci}`);
}
