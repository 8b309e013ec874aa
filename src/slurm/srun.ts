/**
 * `hpcc slurm srun` (slurm/hpcc-srun): one job step whose ranks run the job's
 * pinned image from node-local storage, the ranks of a node in one warm mount
 * (`--sharens`).
 *
 * It runs srun once, with every rank starting slurm/hpcc-srun-entry instead of
 * the command; there is no extra step for staging. The entry (a few lines of
 * sh) finds the staged copy for the job on its node, or runs
 * `hpcc slurm stage` (src/slurm/stage.ts: the first rank of the node copies
 * and verifies under a lock, the others wait), then execs
 * `hpcc exec --sharens OPTIONS STAGED.sif COMMAND`, with the native front
 * (dist/native/hpcc), whose launch memos serve every later step without Node.
 * The image and options are the job's pin (hpcc-sbatch), or the pin this
 * command makes of its own `--image` (under salloc: on the login node).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SlurmError } from '../errors/index.js';
import { encodeCommandMemo, MemoFacts, processKey, stageMemo } from '../runtime/memo.js';
import { findLaunchHelper } from '../runtime/spawn.js';
import { installRoot } from '../util/install-root.js';
import { parseSrunArgs } from './args.js';
import { pinFromEnv, pinImage, type Pin } from './pin.js';

/** The hpcc the nodes run: the native front when built, else bin/run.js. */
export function frontPath(): string {
  const root = installRoot();
  const front = path.join(root, 'dist', 'native', 'hpcc');
  return fs.existsSync(front) ? front : path.join(root, 'bin', 'run.js');
}

export const entryPath = (): string => path.join(installRoot(), 'slurm', 'hpcc-srun-entry');

/** The srun command line: Slurm's options, then the entry with the pin and the command. */
export function srunCommand(slurm: string[], pin: Pin, command: string[], front = frontPath(), entry = entryPath()): string[] {
  const options = pin.options.includes('--sharens') ? pin.options : [...pin.options, '--sharens'];
  return [...slurm, entry, front, String(process.getuid!()), pin.image, pin.sha256, String(pin.size), String(options.length), ...options, ...command];
}

/**
 * Run hpcc-srun (launcher 'srun'), or hpcc-mpirun (launcher 'mpirun': the
 * same, with mpirun inside an allocation starting the ranks through its
 * daemons, which srun starts on each node); resolves with the launcher's exit status.
 */
export async function srunMain(argv: string[], launcher: 'srun' | 'mpirun' = 'srun', memoOut?: string): Promise<number> {
  const a = parseSrunArgs(argv);
  const rec = memoOut ? new MemoFacts() : undefined;
  const pin = a.image !== undefined ? await pinImage(a.image, a.options, rec) : pinFromEnv(process.env);
  if (!pin) {
    throw new SlurmError('HPCC_E_SLURM_NO_IMAGE', 'no image for this step: the job was not submitted with hpcc-sbatch, and no --image was given', {
      exitCode: 2,
      hint: 'Submit with hpcc-sbatch --image REF, or run hpcc-srun [srun options] --image REF [hpcc options] -- COMMAND.',
    });
  }
  const entry = entryPath();
  try {
    fs.accessSync(entry, fs.constants.X_OK);
  } catch (e) {
    throw new SlurmError('HPCC_E_SLURM_TOOL', `the per-rank entry ${entry} is missing or not executable: a broken hpcc install`, {
      cause: e,
      hint: 'Reinstall hpcc (the release tarball, or npm run build in a checkout); its slurm/ directory belongs next to bin/run.js.',
    });
  }
  const front = frontPath();
  const command = srunCommand(a.slurm, pin, a.rest, front, entry);
  // the memo: everything up to the step's command, which the front appends (parseSrunArgs: it follows the first --)
  const dd = argv.indexOf('--');
  if (rec && memoOut && dd >= 0 && argv.length - dd - 1 === a.rest.length) {
    writeCommandMemo(rec, memoOut, ['slurm', launcher, ...argv.slice(0, dd + 1)], [launcher, ...command.slice(0, command.length - a.rest.length)], [entry, front]);
  }
  const child = spawn(launcher, command, { stdio: 'inherit' });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) process.on(s, forward);
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new SlurmError('HPCC_E_SLURM_TOOL', `cannot run ${launcher}: ${e.message}`, { cause: e, hint: `Run hpcc-${launcher} where ${launcher} is on PATH.` })));
    child.on('exit', (code, sig) => resolve(code ?? 128 + (sig ? (({ SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }) as Record<string, number>)[sig] ?? 1 : 1)));
  });
}

/**
 * The command memo for this step (memo.ts COMMAND_MEMOS): the next hpcc-srun
 * with the same arguments up to `--` (any command after it), working directory
 * and environment as the launch memo's key has them (the job's HPCC_JOB_* pin
 * by value) execs `command` and the step's command
 * from the native front without Node, as long as `files` (the entry, the
 * front) and the pinned --image file (pinSif's fact) are the same files; a
 * changed SIF is pinned (hashed) again. Best effort.
 */
function writeCommandMemo(rec: MemoFacts, file: string, keyArgv: string[], command: string[], files: string[]): void {
  for (const f of files) rec.id(f);
  if (rec.spoiled !== null) {
    if (process.env.HPCC_DEBUG) process.stderr.write(`hpcc: no command memo: ${rec.spoiled}\n`);
    return;
  }
  const key = processKey(keyArgv, findLaunchHelper());
  const bytes = key && encodeCommandMemo(key, rec, command);
  if (bytes) stageMemo(file, bytes)?.commit();
}
