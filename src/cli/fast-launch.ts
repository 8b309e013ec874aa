/**
 * The lean start-up path of `hpcc exec|run|shell|test`: bin/run.js calls
 * fastLaunch before loading oclif (whose start-up costs ~250 ms per launch).
 * It handles exactly the flags of launch-command.ts; anything else (--help,
 * an unknown or malformed flag) returns false and oclif takes over, so help
 * and flag errors look the same either way.
 */
import { reportError, UsageError } from '../errors/index.js';
import type { Action, LaunchFlags } from '../runtime/builder/types.js';

const ACTIONS = new Set<Action>(['exec', 'run', 'shell', 'test']);
const VALUE: Record<string, string> = {
  '-B': 'bind', '--bind': 'bind', '-H': 'home', '--home': 'home', '--pwd': 'pwd',
  '--env': 'env', '--env-file': 'env-file', '--plan-out': 'plan-out', '--mount': 'mount', '-W': 'workdir', '--workdir': 'workdir',
};
const BOOL: Record<string, string> = {
  '--no-home': 'no-home', '-c': 'contain', '--contain': 'contain', '-C': 'containall', '--containall': 'containall',
  '-e': 'cleanenv', '--cleanenv': 'cleanenv', '--writable-tmpfs': 'writable-tmpfs', '-p': 'pid', '--pid': 'pid',
  '--explain-env': 'explain-env', '--json': 'json', '--unsquash': 'unsquash', '--nv': 'nv', '--rocm': 'rocm', '--fakeroot': 'fakeroot',
};
const MULTI = new Set(['bind', 'env', 'env-file', 'mount']);

export interface FastArgs {
  image: string;
  rest: string[];
  values: Record<string, string[]>;
  bools: Set<string>;
}

/** Parse launch argv; null when it holds anything this parser does not know. */
export function parseFast(argv: string[]): FastArgs | null {
  const values: Record<string, string[]> = {};
  const bools = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]!;
    if (a === '--') {
      const image = argv[i + 1];
      return image === undefined ? null : { image, rest: argv.slice(i + 2), values, bools };
    }
    if (!a.startsWith('-') || a === '-') return { image: a, rest: argv.slice(i + 1), values, bools };
    let inline: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      inline = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    if (VALUE[a]) {
      const v = inline ?? argv[++i];
      if (v === undefined) return null;
      const k = VALUE[a]!;
      if (!MULTI.has(k) && values[k]) return null;
      (values[k] ??= []).push(v);
    } else if (BOOL[a] && inline === undefined) {
      bools.add(BOOL[a]!);
    } else return null;
  }
  return null; // no IMAGE: let oclif report it
}

export function toLaunchFlags(action: Action, p: FastArgs): LaunchFlags {
  const f: LaunchFlags = {
    action,
    args: p.rest,
    bind: p.values.bind ?? [],
    noHome: p.bools.has('no-home'),
    contain: p.bools.has('contain'),
    containAll: p.bools.has('containall'),
    cleanEnv: p.bools.has('cleanenv'),
    env: p.values.env ?? [],
    writableTmpfs: p.bools.has('writable-tmpfs'),
    pid: p.bools.has('pid'),
    nv: p.bools.has('nv'),
    rocm: p.bools.has('rocm'),
    fakeroot: p.bools.has('fakeroot'),
  };
  if (p.values.home) f.home = p.values.home[0]!;
  if (p.values.pwd) f.pwd = p.values.pwd[0]!;
  if (p.values.mount) f.mount = p.values.mount;
  if (p.values.workdir) f.workdir = p.values.workdir[0]!;
  return f;
}

/**
 * Run a launch command without oclif. Returns false when oclif should handle argv instead.
 * `memoOut`: where to write a launch memo (HPCC_MEMO_OUT from native/front).
 */
export async function fastLaunch(command: string, argv: string[], memoOut?: string): Promise<boolean> {
  if (!ACTIONS.has(command as Action)) return false;
  const p = parseFast(argv);
  if (!p) return false;
  const json = p.bools.has('json');
  try {
    if (command === 'exec' && p.rest.length === 0) {
      throw new UsageError('exec needs a command to run', { hint: 'Write: hpcc exec IMAGE.sif COMMAND [ARGS...]' });
    }
    const { launch } = await import('../core/launch.js');
    const out = await launch({
      image: p.image,
      flags: toLaunchFlags(command as Action, p),
      envFilePaths: p.values['env-file'] ?? [],
      ...(p.values['plan-out'] ? { planOut: p.values['plan-out'][0]! } : {}),
      explainEnv: p.bools.has('explain-env'),
      unsquash: p.bools.has('unsquash'),
      ...(memoOut && memoOut.startsWith('/') ? { memo: { file: memoOut, argv: [command, ...(command === 'exec' ? argv.slice(0, argv.length - p.rest.length) : argv)] } } : {}),
    });
    if (out.kind === 'explained') process.stdout.write(json ? JSON.stringify({ status: 'ok', variables: out.rows }, null, 2) + '\n' : out.text);
    else if (out.kind === 'plan-written') process.stderr.write(`Wrote the launch plan to ${out.path}\n`);
    else process.exitCode = out.status;
  } catch (e) {
    reportError(e, json);
  }
  return true;
}
