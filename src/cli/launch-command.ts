/**
 * Shared base of `hpcc exec|run|shell|test`: Apptainer's flag names, and
 * argv split at IMAGE so everything after it belongs to the payload
 * (`hpcc exec img.sif ls -la` runs `ls -la`; `--` also ends hpcc's flags).
 */
import { Args, Flags } from '@oclif/core';
import { UsageError } from '../errors/index.js';
import type { Action, LaunchFlags } from '../runtime/builder/types.js';
import { HpccCommand } from './base.js';

export const launchFlags = {
  bind: Flags.string({ char: 'B', multiple: true, multipleNonGreedy: true, description: 'bind SRC[:DST[:ro|rw]] (comma list; repeatable)' }),
  mount: Flags.string({ multiple: true, multipleNonGreedy: true, description: 'bind with type=bind,source=SRC,destination=DST[,ro] (repeatable; paths may hold ":")' }),
  workdir: Flags.string({ char: 'W', description: 'host directory for /tmp and /var/tmp (its tmp/, var_tmp/; with --contain also home/ for $HOME)' }),
  home: Flags.string({ char: 'H', description: 'home directory SRC[:DST] (default: your $HOME)' }),
  'no-home': Flags.boolean({ description: 'do not mount the home directory' }),
  pwd: Flags.string({ description: 'working directory inside the container' }),
  contain: Flags.boolean({ char: 'c', description: 'minimal /dev and empty /tmp, /var/tmp and $HOME instead of the host ones' }),
  containall: Flags.boolean({ char: 'C', description: '--contain, plus a PID namespace and a clean environment' }),
  cleanenv: Flags.boolean({ char: 'e', description: 'do not pass the host environment' }),
  env: Flags.string({ multiple: true, multipleNonGreedy: true, description: 'set NAME=VALUE inside the container (repeatable)' }),
  'env-file': Flags.string({ multiple: true, multipleNonGreedy: true, description: 'set the NAME=VALUE lines of a file (repeatable)' }),
  'writable-tmpfs': Flags.boolean({ description: 'a writable (temporary) layer over the image' }),
  unsquash: Flags.boolean({ description: 'run from an extraction of the image in the cache (no FUSE needed)' }),
  pid: Flags.boolean({ char: 'p', description: 'run in a new PID namespace' }),
  nv: Flags.boolean({ description: "the host's NVIDIA driver (libraries, nvidia-smi, devices) in the container" }),
  fakeroot: Flags.boolean({ description: 'be root inside (uid 0 mapped to you; no capabilities, no other ids); $HOME is /root' }),
  rocm: Flags.boolean({ description: "the host's AMD ROCm driver (libraries, rocm-smi, /dev/kfd and /dev/dri) in the container" }),
  'plan-out': Flags.string({ description: 'write the launch plan to FILE instead of running it (run it with hpcc-launch --plan FILE)' }),
  'explain-env': Flags.boolean({ description: 'print where each container variable comes from, then exit' }),
  json: Flags.boolean({ char: 'j', description: 'print hpcc errors as JSON' }),
};

const VALUE_FLAGS = new Set(['-B', '--bind', '-H', '--home', '--pwd', '--env', '--env-file', '--plan-out']);

/** Split argv at IMAGE: [hpcc's flags + IMAGE, payload arguments]. */
export function splitAtImage(argv: string[]): { head: string[]; rest: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      // `hpcc exec -B x -- img.sif cmd`: the image follows --
      return { head: [...argv.slice(0, i), ...argv.slice(i + 1, i + 2)], rest: argv.slice(i + 2) };
    }
    if (a.startsWith('-') && a !== '-') {
      if (VALUE_FLAGS.has(a)) i++;
      continue;
    }
    return { head: argv.slice(0, i + 1), rest: argv.slice(i + 1) };
  }
  return { head: argv, rest: [] };
}

export abstract class LaunchCommand extends HpccCommand {
  static override strict = false;
  static override flags = launchFlags;
  static override args = {
    image: Args.string({ required: true, description: 'SIF image' }),
  };
  protected abstract readonly action: Action;

  async run(): Promise<void> {
    const { head, rest } = splitAtImage(this.argv);
    const { args, flags } = await this.parse({ args: LaunchCommand.args, flags: launchFlags, strict: true }, head);
    if (this.action === 'exec' && rest.length === 0) {
      throw new UsageError('exec needs a command to run', { hint: 'Write: hpcc exec IMAGE.sif COMMAND [ARGS...]' });
    }
    const lf: LaunchFlags = {
      action: this.action,
      args: rest,
      bind: flags.bind ?? [],
      noHome: flags['no-home'],
      contain: flags.contain,
      containAll: flags.containall,
      cleanEnv: flags.cleanenv,
      env: flags.env ?? [],
      writableTmpfs: flags['writable-tmpfs'],
      pid: flags.pid,
      nv: flags.nv,
      rocm: flags.rocm,
      fakeroot: flags.fakeroot,
    };
    if (flags.home !== undefined) lf.home = flags.home;
    if (flags.pwd !== undefined) lf.pwd = flags.pwd;
    if (flags.mount !== undefined) lf.mount = flags.mount;
    if (flags.workdir !== undefined) lf.workdir = flags.workdir;
    const { launch } = await import('../core/launch.js');
    const out = await launch({
      image: args.image as string,
      flags: lf,
      envFilePaths: flags['env-file'] ?? [],
      ...(flags['plan-out'] ? { planOut: flags['plan-out'] } : {}),
      explainEnv: flags['explain-env'],
      unsquash: flags.unsquash,
    });
    if (out.kind === 'explained') {
      if (flags.json) this.printJson({ status: 'ok', variables: out.rows });
      else process.stdout.write(out.text);
    }
    else if (out.kind === 'plan-written') process.stderr.write(`Wrote the launch plan to ${out.path}\n`);
    else process.exitCode = out.status;
  }
}
