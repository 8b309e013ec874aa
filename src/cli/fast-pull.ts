/**
 * The lean start-up path of `hpcc pull`: bin/run.js calls fastPull before
 * loading oclif (docs/benchmarks.md, "Start-up"). It accepts exactly the
 * flags of src/commands/pull.ts, each at most once; anything else (--help, an
 * unknown, repeated or malformed flag, a wrong number of arguments) returns
 * false and oclif takes over, so help and flag errors look the same either way.
 * The command itself is src/cli/pull-action.ts, shared with the oclif command.
 */
import { reportError } from '../errors/index.js';
import { runPull, type PullFlags } from './pull-action.js';

const BOOL: Record<string, 'force' | 'insecure' | 'no-sif-cache' | 'quiet' | 'json' | 'timings'> = {
  '-F': 'force', '--force': 'force', '--insecure': 'insecure', '--no-sif-cache': 'no-sif-cache',
  '-q': 'quiet', '--quiet': 'quiet', '--json': 'json', '--timings': 'timings',
};
const VALUE = new Set(['arch', 'platform', 'compressor', 'level', 'block-size']);
const COMPRESSORS = new Set(['gzip', 'zstd', 'xz', 'lz4']);

export interface FastPullArgs {
  first: string;
  second: string | undefined;
  flags: PullFlags;
}

/** Parse pull argv; null when it holds anything this parser does not take (oclif then parses it). */
export function parsePullArgv(argv: readonly string[]): FastPullArgs | null {
  const flags: PullFlags = { force: false, insecure: false, 'no-sif-cache': false, quiet: false, json: false, timings: false };
  const seen = new Set<string>();
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      args.push(a);
      continue;
    }
    const bool = BOOL[a];
    if (bool !== undefined && Object.hasOwn(BOOL, a)) {
      if (seen.has(bool)) return null;
      seen.add(bool);
      flags[bool] = true;
      continue;
    }
    if (!a.startsWith('--')) return null;
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (!VALUE.has(name) || seen.has(name)) return null;
    const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined || v === '' || (eq < 0 && v.startsWith('-'))) return null;
    seen.add(name);
    if (name === 'compressor') {
      if (!COMPRESSORS.has(v)) return null;
      flags.compressor = v;
    } else if (name === 'level') {
      if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) return null;
      flags.level = Number(v);
    } else if (name === 'arch') flags.arch = v;
    else if (name === 'platform') flags.platform = v;
    else flags['block-size'] = v;
  }
  if (args.length < 1 || args.length > 2) return null;
  return { first: args[0]!, second: args[1], flags };
}

/** Run `hpcc pull` without oclif. Returns false when oclif should handle argv instead. */
export async function fastPull(command: string, argv: string[]): Promise<boolean> {
  if (command !== 'pull') return false;
  const p = parsePullArgv(argv);
  if (!p) return false;
  try {
    await runPull(p.first, p.second, p.flags);
  } catch (e) {
    reportError(e, argv.includes('--json')); // as HpccCommand.catch
  }
  return true;
}
