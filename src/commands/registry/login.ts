import { Args, Flags } from '@oclif/core';
import { HpccCommand } from '../../cli/base.js';
import { UsageError } from '../../errors/index.js';
import { normalizeRegistryKey, storeCredentials } from '../../oci/registry/auth.js';
import { RegistryClient, closeDefaultAgent } from '../../oci/registry/client.js';
import { isInsecureRegistry } from '../../oci/registry/config.js';

async function readStdin(limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of process.stdin) {
    n += (c as Buffer).length;
    if (n > limit) throw new UsageError('the password on stdin is too long');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export default class RegistryLogin extends HpccCommand {
  static override summary = 'Store credentials for a registry (checked against it first).';
  static override description =
    'Reads the password from stdin (--password-stdin), checks it against the registry (/v2/ with Basic auth, or a ' +
    'token from its Bearer realm), and stores it in $XDG_CONFIG_HOME/hpcc/auth.json (default ' +
    '~/.config/hpcc/auth.json) with mode 0600.' +
    '\n\n' +
    'Credentials in ~/.docker/config.json are used too, without logging in again.';
  static override examples = ['echo "$TOKEN" | <%= config.bin %> registry login ghcr.io -u me --password-stdin'];
  static override args = {
    registry: Args.string({ required: true, description: 'registry host[:port], e.g. ghcr.io or docker.io' }),
  };
  static override flags = {
    username: Flags.string({ char: 'u', required: true, description: 'user name' }),
    'password-stdin': Flags.boolean({ description: 'read the password from stdin' }),
    insecure: Flags.boolean({ description: 'plain HTTP registry' }),
    'no-verify': Flags.boolean({ description: 'store without checking against the registry' }),
    json: Flags.boolean({ description: 'print the result as JSON' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(RegistryLogin);
    if (!flags['password-stdin']) {
      throw new UsageError('pass the password on stdin with --password-stdin', {
        hint: 'Passwords on the command line end up in shell history and ps output.',
      });
    }
    const password = await readStdin();
    if (password === '') throw new UsageError('empty password on stdin');
    const registry = normalizeRegistryKey(args.registry);
    if (!flags['no-verify']) {
      const client = new RegistryClient({
        registry,
        insecure: flags.insecure || isInsecureRegistry(registry),
        credentials: { username: flags.username, password, source: 'the command line' },
        retries: 1,
      });
      try {
        await client.ping();
      } finally {
        await closeDefaultAgent();
      }
    }
    const file = await storeCredentials(registry, flags.username, password);
    if (flags.json) this.printJson({ status: 'ok', registry, username: flags.username, file });
    else process.stderr.write(`Login succeeded: credentials for ${registry} stored in ${file}\n`);
  }
}
