/**
 * The lean start-up path of `hpcc exec|run|shell|test`: bin/run.js calls
 * fastLaunch before loading oclif (whose start-up costs ~250 ms per launch).
 * It parses exactly the options of the launch contract (launch-options.ts);
 * anything else (--help, an unknown or malformed option) returns false and
 * oclif takes over, so help and flag errors look the same either way.
 * launchRequest turns a parse, from here or from oclif (launch-command.ts),
 * into what core/launch.ts runs: one mapping for both.
 */
import { reportError, UsageError } from '../errors/index.js';
import type { LaunchRequest } from '../core/launch.js';
import type { LaunchFlags } from '../runtime/builder/types.js';
import { isLaunchAction, launchOption, namesOption, unmemoisable, type LaunchAction, type ParsedLaunch } from './launch-options.js';

/** Parse launch argv; null when it holds anything this parser does not know (oclif reports it). */
export function parseFast(argv: readonly string[]): ParsedLaunch | null {
  const options = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]!;
    if (a === '--') {
      const image = argv[i + 1];
      return image === undefined ? null : { image, rest: argv.slice(i + 2), options };
    }
    if (!a.startsWith('-') || a === '-') return { image: a, rest: argv.slice(i + 1), options };
    let inline: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      inline = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const o = launchOption(a);
    if (!o) return null;
    const seen = options.get(o.name);
    // a flag given twice is given (as for oclif); a single value given twice is oclif's usage error
    if (seen && o.value && !o.multiple) return null;
    let v = '';
    if (o.value) {
      const next = inline ?? argv[++i];
      if (next === undefined || namesOption(next)) return null;
      v = next;
    } else if (inline !== undefined) return null;
    if (seen) {
      if (o.value) seen.push(v);
    }
    else options.set(o.name, [v]);
  }
  return null; // no IMAGE: let oclif report it
}

/** What core/launch.ts runs for a parsed launch command line (memo: set by the caller). */
export function launchRequest(action: LaunchAction, p: ParsedLaunch): LaunchRequest {
  const all = (k: string): string[] => p.options.get(k) ?? [];
  const one = (k: string): string | undefined => p.options.get(k)?.[0];
  const on = (k: string): boolean => p.options.has(k);
  const f: LaunchFlags = {
    action,
    args: p.rest,
    bind: all('bind'),
    noHome: on('no-home'),
    contain: on('contain'),
    containAll: on('containall'),
    cleanEnv: on('cleanenv'),
    env: all('env'),
    writableTmpfs: on('writable-tmpfs'),
    pid: on('pid'),
    nv: on('nv'),
    rocm: on('rocm'),
    noRdma: on('no-rdma'),
    fakeroot: on('fakeroot'),
    sharens: on('sharens'),
  };
  if (one('home') !== undefined) f.home = one('home')!;
  if (one('pwd') !== undefined) f.pwd = one('pwd')!;
  if (on('mount')) f.mount = all('mount');
  if (one('workdir') !== undefined) f.workdir = one('workdir')!;
  const planOut = one('plan-out');
  return {
    image: p.image,
    flags: f,
    envFilePaths: all('env-file'),
    ...(planOut ? { planOut } : {}),
    explainEnv: on('explain-env'),
    unsquash: on('unsquash'),
    ...(on('timings') ? { timings: { json: on('json') } } : {}),
  };
}

/** exec without a command: the same usage error on every path. */
export function checkPayload(action: LaunchAction, p: ParsedLaunch): void {
  if (action === 'exec' && p.rest.length === 0) {
    throw new UsageError('exec needs a command to run', { hint: 'Write: hpcc exec IMAGE.sif COMMAND [ARGS...]' });
  }
}

/**
 * Run a launch command without oclif. Returns false when oclif should handle argv instead.
 * `memoOut`: where to write a launch memo (HPCC_MEMO_OUT from native/front).
 */
export async function fastLaunch(command: string, argv: string[], memoOut?: string): Promise<boolean> {
  // hpcc-srun's staging rank (src/slurm/stage.ts) plans its node's launch: from this bundle, not dist/src
  if (command === 'slurm' && argv[0] === 'stage') {
    process.exitCode = await (await import('../slurm/stage.js')).stageCommand(argv.slice(1));
    return true;
  }
  if (!isLaunchAction(command)) return false;
  const p = parseFast(argv);
  if (!p) return false;
  const json = p.options.has('json');
  try {
    checkPayload(command, p);
    const { launch } = await import('../core/launch.js');
    const out = await launch({
      ...launchRequest(command, p),
      // the front asks for no memo when the contract says none may serve these options; nor is one written
      ...(memoOut && memoOut.startsWith('/') && !unmemoisable(p) ? { memo: { file: memoOut, argv: [command, ...(command === 'exec' ? argv.slice(0, argv.length - p.rest.length) : argv)] } } : {}),
    });
    if (out.kind === 'explained') process.stdout.write(json ? JSON.stringify({ status: 'ok', variables: out.rows }, null, 2) + '\n' : out.text);
    else if (out.kind === 'plan-written') process.stderr.write(`Wrote the launch plan to ${out.path}\n`);
    else process.exitCode = out.status;
  } catch (e) {
    reportError(e, json);
  }
  return true;
}
