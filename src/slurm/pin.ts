/**
 * A job's pinned image: the SIF file every step of the job runs, its SHA-256
 * and size as read once when it was pinned, and the hpcc launch options.
 *
 *   docker://NAME[:TAG]  resolved to its manifest digest and converted once
 *                        into the user's cache (the cache's SIF for that digest,
 *                        src/core/pull.ts), on the node that pins (hpcc-sbatch:
 *                        the login node); a tag that moves later changes nothing.
 *   FILE.sif             checked to be a SIF, its absolute path pinned.
 *
 * The pin travels in the job's environment (HPCC_JOB_*; the names are here and
 * nowhere else): sbatch passes the submission environment to the batch script,
 * and srun to every task. Each node checks its staged copy against the SHA-256
 * (src/slurm/stage.ts), so a file changed after the pin is never run.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SlurmError, UsageError, addContext } from '../errors/index.js';
import { MemoFacts } from '../runtime/memo.js';
// the SIF reader, the reference parser and pull are loaded only to make a pin:
// hpcc-srun in a job submitted by hpcc-sbatch reads the pin and needs none of them

export interface Pin {
  /** absolute path of the SIF on the shared file system */
  image: string;
  sha256: string;
  size: number;
  /** hpcc launch options, normalised (src/slurm/args.ts) */
  options: string[];
}

/** The environment variables that carry a pin (the only place their names are written). */
export const PIN_ENV = Object.freeze({ image: 'HPCC_JOB_IMAGE', sha256: 'HPCC_JOB_IMAGE_SHA256', size: 'HPCC_JOB_IMAGE_SIZE', options: 'HPCC_JOB_OPTIONS' });

export function pinToEnv(p: Pin): Record<string, string> {
  return { [PIN_ENV.image]: p.image, [PIN_ENV.sha256]: p.sha256, [PIN_ENV.size]: String(p.size), [PIN_ENV.options]: JSON.stringify(p.options) };
}

/** The pin in an environment, or undefined when none; a malformed one is an error, not ignored. */
export function pinFromEnv(env: NodeJS.ProcessEnv): Pin | undefined {
  const image = env[PIN_ENV.image];
  if (image === undefined || image === '') return undefined;
  const sha256 = env[PIN_ENV.sha256] ?? '';
  const size = Number(env[PIN_ENV.size]);
  let options: unknown;
  try {
    options = JSON.parse(env[PIN_ENV.options] ?? '[]');
  } catch {
    options = null;
  }
  if (!path.isAbsolute(image) || !/^[0-9a-f]{64}$/.test(sha256) || !Number.isSafeInteger(size) || size < 0 ||
    !Array.isArray(options) || !options.every((o) => typeof o === 'string')) {
    throw new SlurmError('HPCC_E_SLURM_NO_IMAGE', `the job's image pin (${Object.values(PIN_ENV).join(', ')}) is malformed`, {
      exitCode: 2,
      hint: 'Submit with hpcc-sbatch, or give hpcc-srun --image REF; do not set the HPCC_JOB_* variables by hand.',
    });
  }
  return { image, sha256, size, options: options as string[] };
}

/** SHA-256 and size of an open file, read once from its start. */
export function hashFd(fd: number): { sha256: string; size: number } {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  let size = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, size);
    if (n === 0) break;
    h.update(buf.subarray(0, n));
    size += n;
  }
  return { sha256: h.digest('hex'), size };
}

/** Pin a SIF file: check that it is one, and read it once for its SHA-256; `rec` records the file it read (a command memo's fact). */
export async function pinSif(file: string, options: string[], rec?: MemoFacts): Promise<Pin> {
  const abs = path.resolve(file);
  rec?.id(abs);
  let fd: number;
  try {
    fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK); // a FIFO must not hang hpcc-sbatch
  } catch (e) {
    throw addContext(`open image ${abs}`, e);
  }
  try {
    if (!fs.fstatSync(fd).isFile()) throw new UsageError(`${abs} is not a regular file`, { hint: 'Give --image a .sif file or a docker:// reference.' });
    const { SifReader } = await import('../formats/sif/index.js');
    await SifReader.fromFd(fd, abs); // throws HPCC_E_SIF_* when it is not a SIF
    const pin = { image: abs, ...hashFd(fd), options };
    // the identity recorded must be that of the bytes hashed: a file changed meanwhile gets no memo
    if (rec) {
      const after = new MemoFacts();
      after.id(abs);
      if (after.spoiled !== null || !rec.records.includes(after.records[0]!)) rec.spoil(`${abs} changed while it was hashed`);
    }
    return pin;
  } finally {
    fs.closeSync(fd);
  }
}

/** Pin what --image or `#HPCC --image=` names; `rec`: see pinSif (a reference spoils it: its tag is resolved each time). */
export async function pinImage(ref: string, options: string[], rec?: MemoFacts): Promise<Pin> {
  const { isImageReference, parseReference } = await import('../oci/reference.js');
  if (!isImageReference(ref)) return pinSif(ref, options, rec);
  rec?.spoil('a reference is resolved again at every step');
  if (parseReference(ref).transport !== 'docker') {
    throw new SlurmError('HPCC_E_SLURM_ARGS', `${ref}: the Slurm wrappers take docker:// references or .sif files`, {
      exitCode: 2,
      hint: 'Convert it first (hpcc pull IMAGE.sif REF) and give the .sif.',
    });
  }
  const { ensureCachedSif } = await import('../core/pull.js');
  const r = await ensureCachedSif(ref);
  return pinSif(r.path, options);
}
