import { Args, Flags } from '@oclif/core';
import { HpccCommand } from '../../cli/base.js';
import { hpccAuthPath, normalizeRegistryKey, removeCredentials } from '../../oci/registry/auth.js';

export default class RegistryLogout extends HpccCommand {
  static override summary = "Remove a registry's credentials from hpcc's auth file.";
  static override description =
    "Removes the entry from $XDG_CONFIG_HOME/hpcc/auth.json. Docker's ~/.docker/config.json is never changed (use " +
    'docker logout for that).';
  static override args = {
    registry: Args.string({ required: true, description: 'registry host[:port]' }),
  };
  static override flags = {
    json: Flags.boolean({ description: 'print the result as JSON' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(RegistryLogout);
    const registry = normalizeRegistryKey(args.registry);
    const removed = await removeCredentials(registry);
    if (flags.json) this.printJson({ status: 'ok', registry, removed, file: hpccAuthPath() });
    else process.stderr.write(removed ? `Removed credentials for ${registry}\n` : `No stored credentials for ${registry}\n`);
  }
}
