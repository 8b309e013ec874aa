/**
 * The command lines of the Slurm wrappers (slurm/hpcc-sbatch, slurm/hpcc-srun):
 *
 *   hpcc-sbatch [sbatch options] [--image REF [hpcc launch options]] [sbatch options] SCRIPT [ARGS]
 *   hpcc-srun   [srun options]   [--image REF [hpcc launch options]] [srun options] -- COMMAND [ARGS]
 *
 * The one rule that makes colliding short options (-B, -c, -e, -C, -H, -p, -W)
 * unambiguous: hpcc's options start at `--image` and run until the first word
 * that is not an hpcc launch option; every other option word is Slurm's.
 * Which words are hpcc launch options, and which take a value, comes from the
 * launch contract (src/cli/launch-options.ts), never from a list of our own
 * (test/unit/slurm/args.test.ts fails on drift). A long hpcc option after
 * Slurm's resumed (`--image X -N2 --nv`) is refused rather than guessed.
 * Options are kept normalised as `--NAME=VALUE` / `--NAME`, the form that
 * `hpcc exec` parses the same way on every launch path.
 *
 * Pure: no I/O.
 */
import { LAUNCH_OPTIONS, launchOption, type LaunchOption } from '../cli/launch-options.js';
import { SlurmError } from '../errors/index.js';

/** Launch options that make no sense for a wrapped job step (they print or write instead of running, or cannot share a mount). */
export const NOT_FOR_WRAPPERS: Readonly<Record<string, string>> = Object.freeze({
  'plan-out': 'it writes a plan instead of launching',
  'explain-env': 'it prints instead of launching',
  unsquash: 'the ranks of a node share one FUSE mount of the staged image (--sharens), which an extracted tree cannot be',
});

export interface HpccBlock {
  /** the image as given (docker://…, or a path to a .sif) */
  image?: string;
  /** the hpcc launch options, normalised (`--bind=/a`, `--nv`) */
  options: string[];
}

export interface WrapperArgs extends HpccBlock {
  /** the Slurm options, in order, as given */
  slurm: string[];
  /** hpcc-srun: COMMAND [ARGS]; hpcc-sbatch: SCRIPT [ARGS] (empty with --wrap) */
  rest: string[];
}

/**
 * sbatch's options that take no value (Slurm 22.05 and later). Every other
 * option word without `=` takes the next word as its value; options whose value
 * is optional (--exclusive, --get-user-env, --no-kill, --propagate, -I) take it
 * only as `--NAME=VALUE`, as sbatch itself does. Needed only to find SCRIPT;
 * `--` before SCRIPT also marks it.
 */
export const SBATCH_NO_VALUE = Object.freeze(new Set([
  '-h', '--help', '--usage', '-V', '--version', '-H', '--hold', '-I', '--immediate', '-k', '--no-kill', '-O', '--overcommit',
  '-Q', '--quiet', '-s', '--oversubscribe', '-v', '--verbose', '-W', '--wait', '--contiguous', '--exclusive', '--get-user-env',
  '--ignore-pbs', '--no-requeue', '--parsable', '--reboot', '--requeue', '--spread-job', '--test-only', '--use-min-nodes', '--propagate',
]));

const bad = (message: string, hint?: string) => new SlurmError('HPCC_E_SLURM_ARGS', message, { exitCode: 2, ...(hint ? { hint } : {}) });

/**
 * Parse an hpcc block: `words[i]` is `--image` or `--image=REF`. Returns the
 * block and the index of the first word after it.
 */
export function parseHpccBlock(words: readonly string[], i: number): { block: HpccBlock; next: number } {
  const options: string[] = [];
  let image: string | undefined;
  const first = words[i]!;
  if (first.startsWith('--image=')) image = first.slice('--image='.length);
  else {
    image = words[i + 1];
    i++;
  }
  if (image === undefined || image === '') throw bad('--image needs a value (docker://NAME[:TAG] or a .sif file)');
  i++;
  for (; i < words.length; i++) {
    const w = words[i]!;
    if (w === '--') break;
    const eq = w.startsWith('--') ? w.indexOf('=') : -1;
    const name = eq >= 0 ? w.slice(0, eq) : w;
    const o = launchOption(name);
    if (!o) break;
    if (NOT_FOR_WRAPPERS[o.name]) throw bad(`--${o.name} cannot be used with the Slurm wrappers: ${NOT_FOR_WRAPPERS[o.name]}`);
    if (!o.value) {
      if (eq >= 0) throw bad(`--${o.name} takes no value (${w})`);
      options.push(`--${o.name}`);
      continue;
    }
    const value = eq >= 0 ? w.slice(eq + 1) : words[++i];
    if (value === undefined) throw bad(`${name} needs a value`);
    options.push(`--${o.name}=${value}`);
  }
  return { block: { image, options }, next: i };
}

/** A word after Slurm's options resumed that names hpcc's (refused: which program it is for would be a guess). */
function refuseLate(w: string, after: string): void {
  const name = w.startsWith('--') ? w.split('=')[0]! : '';
  if (name === '--image') throw bad('--image is given twice', 'Give the image once: --image REF, then hpcc launch options.');
  const o = name ? launchOption(name) : undefined;
  if (o) {
    throw bad(`${name} comes after the Slurm option ${after}: is it hpcc's or Slurm's?`, 'Put hpcc launch options right after --image REF, and Slurm options before --image or after them.');
  }
}

/** hpcc-srun's command line (see the top of this file). */
export function parseSrunArgs(argv: readonly string[]): WrapperArgs {
  const slurm: string[] = [];
  let block: HpccBlock = { options: [] };
  let lastSlurm = '';
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if (w === '--') {
      const rest = argv.slice(i + 1);
      if (rest.length === 0) throw bad('no command after --', 'Usage: hpcc-srun [srun options] [--image REF [hpcc options]] -- COMMAND [ARGS]');
      return { slurm, ...block, rest };
    }
    if ((w === '--image' || w.startsWith('--image=')) && block.image === undefined) {
      const r = parseHpccBlock(argv, i);
      block = r.block;
      i = r.next - 1;
      continue;
    }
    if (block.image !== undefined || w === '--image' || w.startsWith('--image=')) refuseLate(w, lastSlurm || w);
    slurm.push(w);
    if (w.startsWith('-')) lastSlurm = w;
  }
  throw bad('no -- before the command', 'Usage: hpcc-srun [srun options] [--image REF [hpcc options]] -- COMMAND [ARGS] (srun options cannot be told from the command otherwise).');
}

/** hpcc-sbatch's command line (see the top of this file). */
export function parseSbatchArgs(argv: readonly string[]): WrapperArgs {
  const slurm: string[] = [];
  let block: HpccBlock = { options: [] };
  let lastSlurm = '';
  let wrap = false;
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if (w === '--') return { slurm, ...block, rest: argv.slice(i + 1) };
    if ((w === '--image' || w.startsWith('--image=')) && block.image === undefined) {
      const r = parseHpccBlock(argv, i);
      block = r.block;
      i = r.next - 1;
      continue;
    }
    if (block.image !== undefined) refuseLate(w, lastSlurm || w);
    if (!w.startsWith('-') || w === '-') return { slurm, ...block, rest: argv.slice(i) };
    slurm.push(w);
    lastSlurm = w;
    if (w === '--wrap' || w.startsWith('--wrap=')) wrap = true;
    const takesValue = !w.includes('=') && !SBATCH_NO_VALUE.has(w) && (w.startsWith('--') || w.length === 2);
    if (takesValue && i + 1 < argv.length) slurm.push(argv[++i]!);
  }
  if (wrap) return { slurm, ...block, rest: [] };
  throw bad('no batch script given', 'Usage: hpcc-sbatch [sbatch options] [--image REF [hpcc options]] [sbatch options] SCRIPT [ARGS]');
}

/**
 * `#HPCC` lines of a batch script, like `#SBATCH` ones: read from the top until
 * the first line that is neither blank nor a comment. Each line holds hpcc
 * options only (`#HPCC --image=docker://… --env=A=1 -B /data`), split on blanks.
 */
export function scriptHpccLines(script: string): HpccBlock {
  const words: string[] = [];
  for (const line of script.split('\n')) {
    const t = line.trim();
    if (t !== '' && !t.startsWith('#')) break;
    const m = /^#HPCC(\s.*)?$/.exec(t);
    if (m) words.push(...(m[1] ?? '').trim().split(/\s+/).filter(Boolean));
  }
  if (words.length === 0) return { options: [] };
  // --image may come on any #HPCC line: parse as if it came first
  const at = words.findIndex((w) => w === '--image' || w.startsWith('--image='));
  if (at < 0) return { options: hpccOptionsOnly(words) };
  const imageWords = words[at] === '--image' ? words.splice(at, 2) : words.splice(at, 1);
  const { block, next } = parseHpccBlock([...imageWords, ...words], 0);
  if (next < imageWords.length + words.length) throw bad(`#HPCC: ${[...imageWords, ...words][next]} is not an hpcc launch option`);
  return block;
}

function hpccOptionsOnly(words: string[]): string[] {
  const { block, next } = parseHpccBlock(['--image=-', ...words], 0);
  if (next < words.length + 1) throw bad(`#HPCC: ${words[next - 1]} is not an hpcc launch option`);
  return block.options;
}

/** The command line's hpcc block over the script's #HPCC lines: its image wins, options add up (script's first). */
export function mergeBlocks(script: HpccBlock, cli: HpccBlock): HpccBlock {
  const image = cli.image ?? script.image;
  return { ...(image !== undefined ? { image } : {}), options: [...script.options, ...cli.options] };
}

/** The launch options as the contract names them (for tests and docs). */
export const launchOptionNames = (): string[] => LAUNCH_OPTIONS.map((o: LaunchOption) => o.name);
