/**
 * Staging a job's pinned SIF onto node-local storage (hpcc-srun; docs/slurm.md,
 * "Wrappers"). Run by a rank of a node whose staged copy is missing
 * (slurm/hpcc-srun-entry), as the job's user:
 *
 *   BASE = ${HPCC_STAGE_DIR:-${TMPDIR:-/tmp}}/hpcc-stage-UID   (0700, the user's; checked)
 *   BASE/JOBID/SHA256.sif     the verified copy, there only once complete
 *   BASE/JOBID/SHA256.ready   the copy is there and the node's launch memo made (stageForStep)
 *   BASE/JOBID/SHA256.lock    the copier's lock (src/oci/cache/lock.ts)
 *   BASE/JOBID/.SHA256.*.tmp  a copy in progress
 *
 * The first rank of the node takes the lock and copies the pinned file while
 * hashing it, fsyncs, compares size and SHA-256 with the pin and only then
 * renames it into place (and fsyncs the directory); the node's other ranks
 * wait for the lock and find it there. A mismatch (the file changed since the
 * pin) or a failed write (node-local storage full) removes the temporary copy
 * and fails the rank with HPCC_E_SLURM_IMAGE_CHANGED / HPCC_E_SLURM_STAGE:
 * nothing runs, and no partial copy ever has the final name.
 *
 * Clean-up: the copier first removes the stage directories of the user's other
 * jobs on this node that Slurm no longer runs (squeue), and `hpcc slurm
 * unstage` (the end of an hpcc-sbatch job) removes the job's own.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SlurmError, addContext, isHpccError, reportError } from '../errors/index.js';
import { acquireLock } from '../oci/cache/lock.js';
import { untrusted } from '../util/cache-path.js';
import { removeTree } from '../util/remove-tree.js';
import { hashCopy } from './copy.js';

export interface StageRequest {
  base: string;
  job: string;
  src: string;
  sha256: string;
  size: number;
}

/** Make (or check) a directory of the stage tree: the user's, 0700, not a link. */
function ownDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw stageError(`make the stage directory ${dir}`, e);
  }
  const st = fs.lstatSync(dir);
  const why = untrusted(st, 'dir') ?? ((st.mode & 0o077) !== 0 ? `mode ${(st.mode & 0o777).toString(8)}, not 700` : null);
  if (why) {
    throw new SlurmError('HPCC_E_SLURM_STAGE_DIR', `the stage directory ${dir} is not one hpcc made for you: ${why}`, {
      hint: 'Another user may have made it first: set HPCC_STAGE_DIR to a node-local directory of your own, or ask the admins to remove it.',
    });
  }
}

function stageError(what: string, e: unknown): SlurmError {
  if (isHpccError(e) && e.code.startsWith('HPCC_E_SLURM_')) return e as SlurmError;
  const io = addContext(what, e);
  const full = /ENOSPC|EDQUOT/.test(io.code);
  return new SlurmError('HPCC_E_SLURM_STAGE', `${io.message} (on ${hostName()})`, {
    cause: e,
    hint: full
      ? 'The node-local storage is full: free space in it or set HPCC_STAGE_DIR to a larger node-local directory.'
      : 'Check the node-local directory ($HPCC_STAGE_DIR, else $TMPDIR, else /tmp) and the pinned image file.',
  });
}

function hostName(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();
  } catch {
    return 'this node';
  }
}

/** Stage the pinned image on this node (once per node and job); returns the staged path. */
export async function stage(req: StageRequest): Promise<string> {
  if (!/^[0-9]+$/.test(req.job) || !/^[0-9a-f]{64}$/.test(req.sha256) || !path.isAbsolute(req.base)) {
    throw new SlurmError('HPCC_E_SLURM_ARGS', `hpcc slurm stage: bad request ${JSON.stringify(req)}`, { exitCode: 2 });
  }
  ownDir(req.base);
  const jobDir = path.join(req.base, req.job);
  ownDir(jobDir);
  const final = path.join(jobDir, `${req.sha256}.sif`);
  const ready = async () => fs.existsSync(final);
  if (await ready()) return final;
  const lock = await acquireLock(path.join(jobDir, `${req.sha256}.lock`), { satisfied: ready }).catch((e: unknown) => {
    throw stageError('lock the stage directory', e);
  });
  if (lock === null) return final;
  try {
    if (await ready()) return final;
    collectGarbage(req.base, req.job);
    const tmp = path.join(jobDir, `.${req.sha256}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const got = hashCopy(req.src, tmp);
      if (got.size !== req.size || got.sha256 !== req.sha256) {
        throw new SlurmError('HPCC_E_SLURM_IMAGE_CHANGED', `${req.src} is not the image pinned when the job was submitted: sha256 ${got.sha256} (${got.size} bytes), pinned ${req.sha256} (${req.size} bytes)`, {
          exitCode: 88,
          hint: 'The file was changed or replaced after submission; nothing was run. Submit the job again to run the file as it is now.',
          details: { expected: req.sha256, actual: got.sha256 },
        });
      }
      fs.renameSync(tmp, final);
      const d = fs.openSync(jobDir, 'r');
      try {
        fs.fsyncSync(d);
      } finally {
        fs.closeSync(d);
      }
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw stageError(`stage ${req.src} into ${jobDir}`, e);
    }
    return final;
  } finally {
    await lock.release();
  }
}

/** The mark that the node's ranks may start: BASE/JOBID/SHA256.ready (slurm/hpcc-srun-entry waits for it). */
export const readyMark = (req: StageRequest): string => path.join(req.base, req.job, `${req.sha256}.ready`);

/**
 * `hpcc slurm stage BASE JOBID SRC SHA256 SIZE [EXEC-ARGS...]`, run by the node's
 * first local rank: stage the image, then, given the arguments its
 * `hpcc exec` will have (options, the staged path, the command), write the
 * launch memo for them (src/core/launch.ts writeLaunchMemo) so that every
 * rank of the node starts from it, planned once here instead of once per
 * rank; then the ready mark, which the waiting ranks start on. The memo is
 * best effort (a rank without one plans in Node, as without hpcc-srun).
 */
export async function stageForStep(req: StageRequest, exec: string[]): Promise<string> {
  const final = await stage(req);
  if (exec.length > 0) {
    const { writeLaunchMemo } = await import('../core/launch.js');
    const why = await writeLaunchMemo('exec', exec).catch((e: unknown) => (e instanceof Error ? e.message : String(e)));
    if (why && process.env.HPCC_DEBUG) process.stderr.write(`hpcc: slurm stage: no launch memo for the node's ranks: ${why}\n`);
  }
  try {
    fs.closeSync(fs.openSync(readyMark(req), fs.constants.O_CREAT | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o600));
  } catch (e) {
    throw stageError(`mark ${final} ready`, e);
  }
  return final;
}

/**
 * `hpcc slurm stage BASE JOBID SRC SHA256 SIZE [EXEC-ARGS...]`; errors are rendered here.
 * Run from the launch bundle (src/cli/fast-launch.ts) as well as from src/slurm/cli.ts.
 */
export async function stageCommand(argv: string[]): Promise<number> {
  const [base, job, src, sha256, size, ...exec] = argv;
  try {
    await stageForStep({ base: base ?? '', job: job ?? '', src: src ?? '', sha256: sha256 ?? '', size: Number(size) }, exec);
    return 0;
  } catch (e) {
    reportError(e, false);
    return typeof process.exitCode === 'number' ? process.exitCode : 70;
  }
}

/** Slurm states of a job whose stage directory may still be used. */
const LIVE = new Set(['PENDING', 'RUNNING', 'SUSPENDED', 'COMPLETING', 'CONFIGURING', 'REQUEUED', 'REQUEUE_FED', 'REQUEUE_HOLD', 'RESIZING', 'SIGNALING', 'STAGE_OUT', 'STOPPED']);

/**
 * Remove BASE/JOBID of the user's jobs that Slurm no longer runs. Only when
 * squeue answers (else nothing is removed); only numeric directories of the
 * user's; never the current job's.
 */
export function collectGarbage(base: string, current: string): string[] {
  const others = fs.readdirSync(base).filter((n) => /^[0-9]+$/.test(n) && n !== current);
  if (others.length === 0) return [];
  const q = spawnSync('squeue', ['-h', '-t', 'all', '-u', String(process.getuid!()), '-o', '%A %T'], { encoding: 'utf8', timeout: 30_000 });
  if (q.status !== 0) return [];
  const live = new Set(q.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter(([, s]) => s !== undefined && LIVE.has(s)).map(([id]) => id));
  const removed: string[] = [];
  for (const id of others) {
    if (live.has(id)) continue;
    const dir = path.join(base, id);
    const st = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (!st || untrusted(st, 'dir') !== null) continue;
    removeTree(dir);
    removed.push(id);
  }
  return removed;
}

/** `hpcc slurm unstage`: remove this job's stage directory on this node (the end of an hpcc-sbatch job). */
export function unstage(base: string, job: string): boolean {
  if (!/^[0-9]+$/.test(job)) return false;
  const st = fs.lstatSync(base, { throwIfNoEntry: false });
  if (!st || untrusted(st, 'dir') !== null) return false;
  const dir = path.join(base, job);
  const d = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (!d || untrusted(d, 'dir') !== null) return false;
  removeTree(dir);
  return true;
}
