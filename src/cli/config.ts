// `vfwire config check` and `vfwire config get KEY`: the config as vfwire reads it (validated,
// defaults applied). install.sh pins the hook's state directory with `config get state_dir`.

import type { Command } from 'commander';
import { loadConfig, type Config } from '../config/config.js';
import { ValidationError } from '../errors.js';

// The settings a script may want one at a time, by their name in the file.
const KEYS: Record<string, (cfg: Config) => string> = {
  backend: (c) => c.backend,
  state_dir: (c) => c.stateDir,
  log_dir: (c) => c.logDir,
  libvirt_uri: (c) => c.libvirtUri,
  overlay: (c) => c.overlay,
  'ipsec.mode': (c) => c.ipsec.mode,
  'ipsec.key_dir': (c) => c.ipsec.keyDir,
  /** One per line: install.sh orders host setup after their devices. */
  pfs: (c) => c.pfs.map((p) => p.name).join('\n'),
};

export function configCommands(program: Command, config: () => string): void {
  const cmd = program.command('config').description('the config file as vfwire reads it');
  cmd
    .command('check')
    .description('validate the config file; exit 1 with the first problem')
    .action(async () => {
      const cfg = await loadConfig(config());
      console.log(`${cfg.path}: valid (backend ${cfg.backend}, overlay ${cfg.overlay}, ipsec ${cfg.ipsec.mode})`);
    });
  cmd
    .command('get')
    .description(`print one effective setting: ${Object.keys(KEYS).join(', ')}`)
    .argument('<key>', 'setting, named as in the file')
    .action(async (key: string) => {
      const get = KEYS[key];
      if (!get) throw new ValidationError(`config get: unknown key "${key}" (have: ${Object.keys(KEYS).join(', ')})`);
      console.log(get(await loadConfig(config())));
    });
}
