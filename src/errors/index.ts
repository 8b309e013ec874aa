/**
 * hpcc's typed errors. Every failure a user can hit is an HpccError with a
 * stable code (HPCC_E_*), an exit code from hpcc's own band, a message, an
 * optional one-line hint ("Try this") and an optional cause chain.
 *
 * Exit-code bands (the CLI contract):
 *   2          usage errors (bad flags/arguments)
 *   64..79     image format errors (SIF, squashfs, definition files)
 *   80..95     I/O, cache and network errors
 *   96..111    launcher setup errors (reserved for the runtime)
 * Payload exit statuses (0..255 from a container) are passed through by the
 * launcher, which is why hpcc's own failures live in bands of their own and
 * the launcher reports them on stderr with the code.
 */
export interface HpccErrorOptions {
  hint?: string;
  cause?: unknown;
  exitCode?: number;
  details?: Record<string, unknown>;
}

export class HpccError extends Error {
  readonly code: string;
  readonly exitCode: number;
  readonly hint?: string;
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, opts: HpccErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = opts.exitCode ?? 1;
    if (opts.hint !== undefined) this.hint = opts.hint;
    if (opts.details !== undefined) this.details = opts.details;
  }

  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { code: this.code, message: this.message, exitCode: this.exitCode };
    if (this.hint) out.hint = this.hint;
    if (this.details) out.details = this.details;
    const chain = causeChain(this);
    if (chain.length > 0) out.causes = chain;
    return out;
  }
}

export class UsageError extends HpccError {
  constructor(message: string, opts: HpccErrorOptions = {}) {
    super('HPCC_E_USAGE', message, { exitCode: 2, ...opts });
  }
}

/** Malformed or unsupported squashfs image. */
export class SquashfsFormatError extends HpccError {
  constructor(code: string, message: string, opts: HpccErrorOptions = {}) {
    super(code, message, {
      exitCode: 65,
      hint: 'The squashfs image is damaged or not a squashfs 4.0 image; rebuild or re-download it.',
      ...opts,
    });
  }
}

/** Problems writing a squashfs image (bad entries, limits exceeded). */
export class SquashfsWriteError extends HpccError {
  constructor(code: string, message: string, opts: HpccErrorOptions = {}) {
    super(code, message, { exitCode: 66, ...opts });
  }
}

/** Malformed or unsupported SIF file. */
export class SifFormatError extends HpccError {
  constructor(code: string, message: string, opts: HpccErrorOptions = {}) {
    super(code, message, {
      exitCode: 64,
      hint: 'The file is not a valid SIF image; check the path, or rebuild the image with `hpcc build`.',
      ...opts,
    });
  }
}

/** Compression codec missing or failing. */
export class CodecError extends HpccError {
  constructor(code: string, message: string, opts: HpccErrorOptions = {}) {
    super(code, message, { exitCode: 67, ...opts });
  }
}

/** Filesystem I/O failure (open, read, write, rename). */
export class HpccIOError extends HpccError {
  constructor(code: string, message: string, opts: HpccErrorOptions = {}) {
    super(code, message, { exitCode: 80, ...opts });
  }
}

/** Extraction refused because an entry would land outside the target. */
export class UnsafePathError extends HpccError {
  constructor(message: string, opts: HpccErrorOptions = {}) {
    super('HPCC_E_UNSAFE_PATH', message, {
      exitCode: 68,
      hint: 'The image contains a path that escapes the extraction directory; it was not written.',
      ...opts,
    });
  }
}

/** OCI image problems: bad references, manifests, configs, layers (issue 4). */
export class OciError extends HpccError {
  constructor(code: string, message: string, opts: HpccErrorOptions = {}) {
    super(code, message, { exitCode: 69, ...opts });
  }
}

/** A blob's bytes do not match its digest or size (HPCC_E_OCI_DIGEST). */
export class DigestMismatchError extends OciError {
  readonly expected: string;
  readonly actual: string;
  constructor(message: string, expected: string, actual: string, opts: HpccErrorOptions = {}) {
    super('HPCC_E_OCI_DIGEST', message, {
      hint: 'The blob is corrupt or was tampered with; remove it from the cache or re-download it.',
      details: { expected, actual },
      ...opts,
    });
    this.expected = expected;
    this.actual = actual;
  }
}

export function isHpccError(e: unknown): e is HpccError {
  return e instanceof HpccError;
}

function messageOf(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' && !(e instanceof HpccError) && !e.message.includes(code)
      ? `${e.message} (${code})`
      : e.message;
  }
  return String(e);
}

/** The messages of an error's causes, outermost first (bounded, cycle-safe). */
export function causeChain(e: unknown): string[] {
  const out: string[] = [];
  const seen = new Set<unknown>();
  let cur: unknown = e instanceof Error ? e.cause : undefined;
  while (cur !== undefined && cur !== null && !seen.has(cur) && out.length < 8) {
    seen.add(cur);
    out.push(messageOf(cur));
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return out;
}

/** Wrap any error with short context ("read SIF descriptors: ..."), keeping HpccError codes. */
export function withContext<T>(context: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw addContext(context, e);
  }
}

export async function withContextAsync<T>(context: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw addContext(context, e);
  }
}

export function addContext(context: string, e: unknown): HpccError {
  if (e instanceof HpccError) {
    e.message = `${context}: ${e.message}`;
    return e;
  }
  const errno = (e as { code?: unknown })?.code;
  if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno)) {
    return new HpccIOError(`HPCC_E_IO_${errno}`, `${context}: ${messageOf(e)}`, { cause: e, hint: ioHint(errno) });
  }
  return new HpccError('HPCC_E_INTERNAL', `${context}: ${messageOf(e)}`, {
    cause: e,
    exitCode: 70,
    hint: 'This is a bug in hpcc; please report it with the command you ran.',
  });
}

export function ioHint(errno: string): string | undefined {
  switch (errno) {
    case 'ENOENT':
      return 'Check that the path exists and is spelled correctly.';
    case 'EACCES':
    case 'EPERM':
      return 'Check the file permissions, or choose a path you can write to.';
    case 'ENOSPC':
    case 'EDQUOT':
      return 'The disk or your quota is full; free space or choose another output directory.';
    case 'EISDIR':
      return 'A directory was given where a file is expected.';
    case 'ENOTDIR':
      return 'A file was given where a directory is expected.';
    default:
      return undefined;
  }
}

/** Render for humans: "Error (CODE): message", "Try this: …", "Caused by: …". */
export function renderError(e: unknown): string {
  const err = e instanceof HpccError ? e : addContext('unexpected error', e);
  const lines = [`Error (${err.code}): ${err.message}`];
  if (err.hint) lines.push(`Try this: ${err.hint}`);
  for (const c of causeChain(err)) lines.push(`Caused by: ${c}`);
  return lines.join('\n');
}

export function renderErrorJson(e: unknown): string {
  const err = e instanceof HpccError ? e : addContext('unexpected error', e);
  return JSON.stringify({ status: 'error', error: err.toJSON() });
}

/**
 * How a command ends on an error: the rendering on stderr (or the JSON one on
 * stdout with --json) and the error's exit code, 70 for anything not an HpccError.
 */
export function reportError(e: unknown, json: boolean): void {
  if (json) process.stdout.write(renderErrorJson(e) + '\n');
  else process.stderr.write(renderError(e) + '\n');
  process.exitCode = e instanceof HpccError ? e.exitCode : 70;
}

/** A launch plan that cannot be encoded, or bytes that are not a valid plan (src/runtime/codec.ts). */
export class LaunchPlanError extends HpccError {
  constructor(message: string, opts: HpccErrorOptions = {}) {
    super('HPCC_E_PLAN_INVALID', message, {
      exitCode: 98,
      hint: 'The launch plan is malformed; write it again with the hpcc version that matches the helper.',
      ...opts,
    });
  }
}

/**
 * The launch helper (native/launch) failed while setting up the container:
 * `opIndex` is the failing mount op (-1 for other steps), `op` the op or step
 * name, `errno` the Linux errno name (e.g. EPERM). Exit codes 96..111, or
 * 126/127 when the payload cannot be executed / is not found.
 */
export class LaunchSetupError extends HpccError {
  readonly opIndex: number;
  readonly op: string;
  readonly errno: string;
  constructor(
    code: string,
    message: string,
    where: { opIndex: number; op: string; errno: string },
    opts: HpccErrorOptions = {},
  ) {
    super(code, message, { exitCode: 103, ...opts, details: { ...where, ...(opts.details ?? {}) } });
    this.opIndex = where.opIndex;
    this.op = where.op;
    this.errno = where.errno;
  }
}

/**
 * The unprivileged build environment cannot do what a build needs (issue 12,
 * src/build/): no subordinate ids where they are required, a user namespace
 * or id map the kernel refused, a missing bootstrap tool, a rootfs whose
 * layout would lead mounts out of it. Exit code 72.
 */
export class BuildEnvironmentError extends HpccError {
  constructor(code: string, message: string, opts: HpccErrorOptions = {}) {
    super(code, message, { exitCode: 72, ...opts });
  }
}

/**
 * A definition file hpcc cannot build (`hpcc build OUT.sif FILE.def`): the
 * message starts with FILE:LINE:COLUMN and ends with the offending line;
 * `details` carries file, line, column and text. Exit 71.
 */
export class DefinitionError extends HpccError {
  constructor(code: string, message: string, opts: HpccErrorOptions = {}) {
    super(code, message, { exitCode: 71, ...opts });
  }
}

/** A definition-file build step failed (%setup, %post, %test, a base image, %files): exit 73. */
export class BuildStepError extends HpccError {
  constructor(code: string, message: string, opts: HpccErrorOptions = {}) {
    super(code, message, { exitCode: 73, ...opts });
  }
}

/**
 * The Slurm wrappers (src/slurm, slurm/hpcc-sbatch, slurm/hpcc-srun):
 * HPCC_E_SLURM_ARGS, _NO_IMAGE, _NO_JOB (usage, exit 2); _IMAGE_CHANGED (the
 * staged copy is not the pinned image, exit 88); _STAGE (staging on the node
 * failed, e.g. node-local storage full, exit 89); _STAGE_DIR (a stage directory
 * hpcc did not make for the user, exit 89); _SLURM_TOOL (sbatch/srun/squeue
 * missing, exit 89). docs/errors.md, docs/slurm.md ("Wrappers").
 */
export class SlurmError extends HpccError {
  constructor(code: `HPCC_E_SLURM_${string}`, message: string, opts: HpccErrorOptions = {}) {
    super(code, message, { exitCode: 89, ...opts });
  }
}
