/**
 * Start the C helper (native/launch → dist/native/hpcc-launch) on a plan:
 * the encoded plan goes down a pipe (fd 3, `--plan-fd 3`), setup failures
 * come back on a status pipe (fd 4, `--status-fd 4`, records described in
 * native/launch/status.c), stdin/stdout/stderr are inherited. The helper is
 * told to die with us (`--die-with-parent`: a SIGKILLed hpcc SIGTERMs the
 * helper, which forwards it to the payload and cleans up).
 *
 * Signals: SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 sent to this process are
 * passed to the helper (which forwards them to the payload). SIGINT and
 * SIGQUIT are passed on too unless stdin is a terminal: then the terminal
 * already sends them to the whole foreground group, helper and payload
 * included, and we only keep Node from dying of them.
 *
 * Result: the payload's exit status (0..255, 128+N after signal N), or a
 * LaunchSetupError when the helper reported a setup failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as util from 'node:util';
import { LaunchSetupError } from '../errors/index.js';
import { installRoot } from '../util/install-root.js';
import { encodePlan } from './codec.js';
import type { LaunchPlan } from './plan.js';

export const LAUNCH_HELPER = 'hpcc-launch';

/** One status record from the helper ("status/1 fail INDEX STEP ERRNO EXIT MESSAGE"). */
export interface StatusRecord {
  opIndex: number;
  op: string;
  errno: number;
  exitCode: number;
  message: string;
}

/** The helper binary: $HPCC_LAUNCH_HELPER, else dist/native/hpcc-launch of this checkout/package. */
export function findLaunchHelper(): string {
  const env = process.env.HPCC_LAUNCH_HELPER;
  const candidate = env && env !== '' ? env : path.join(installRoot(), 'dist', 'native', LAUNCH_HELPER);
  try {
    fs.accessSync(candidate, fs.constants.X_OK);
    return candidate;
  } catch {
    throw new LaunchSetupError(
      'HPCC_E_LAUNCH_HELPER_MISSING',
      `the launch helper ${candidate} is missing or not executable`,
      { opIndex: -1, op: 'helper', errno: 'ENOENT' },
      { exitCode: 103, hint: 'Build it from source: `npm run build` (or `make -C native`), then retry.' },
    );
  }
}

/** Informational records ("status/1 info INDEX STEP MESSAGE"), e.g. the overlay method the helper used. */
export interface InfoRecord {
  opIndex: number;
  step: string;
  message: string;
}

export function parseInfoRecords(text: string): InfoRecord[] {
  const out: InfoRecord[] = [];
  for (const line of text.split('\n')) {
    const m = /^status\/1 info (-1|\d{1,5}) ([a-z_-]{1,32}) ?(.*)$/.exec(line);
    if (m) out.push({ opIndex: Number(m[1]), step: m[2]!, message: m[3]! });
  }
  return out;
}

export function parseStatusRecords(text: string): StatusRecord[] {
  const out: StatusRecord[] = [];
  for (const line of text.split('\n')) {
    const m = /^status\/1 fail (-1|\d{1,5}) ([a-z_-]{1,32}) (\d{1,4}) (\d{1,3}) ?(.*)$/.exec(line);
    if (m) out.push({ opIndex: Number(m[1]), op: m[2]!, errno: Number(m[3]), exitCode: Number(m[4]), message: m[5]! });
  }
  return out;
}

function errnoName(n: number): { name: string; text: string } {
  if (n === 0) return { name: '', text: '' };
  const e = util.getSystemErrorMap().get(-n);
  return e ? { name: e[0], text: e[1] } : { name: `E${n}`, text: `errno ${n}` };
}

const USERNS_HINT =
  'User namespaces are disabled or restricted on this node (AppArmor, kernel.unprivileged_userns_clone or user.max_user_namespaces): see `hpcc doctor`.';

function classify(r: StatusRecord, errno: string): { code: string; hint?: string } {
  if (r.opIndex >= 0) {
    if (r.op === 'overlay' || r.op === 'overlay-ro')
      return {
        code: 'HPCC_E_LAUNCH_OVERLAY',
        hint: 'No overlay method the plan allowed worked here (kernel overlayfs needs Linux 5.11+, fuse-overlayfs needs /dev/fuse): see `hpcc doctor`, or set HPCC_OVERLAY=skeleton.',
      };
    if (r.op === 'bind')
      return {
        code: 'HPCC_E_LAUNCH_BIND',
        hint:
          errno === 'ENOENT'
            ? 'A bind source does not exist on the host, or its target cannot be created in the image; check -B/--bind.'
            : 'Check the bind source permissions and that the target can exist in the image (read-only image: use --writable-tmpfs).',
      };
    return { code: 'HPCC_E_LAUNCH_MOUNT', hint: 'A mount inside the container failed; run `hpcc doctor` to check what this node allows.' };
  }
  switch (r.op) {
    case 'plan':
      return { code: 'HPCC_E_LAUNCH_PLAN', hint: 'The helper and hpcc disagree on the plan format; rebuild both (`npm run build`).' };
    case 'privileges':
      return { code: 'HPCC_E_LAUNCH_PRIVILEGES', hint: 'hpcc-launch must not be setuid or setgid; install it as an ordinary executable.' };
    case 'unshare':
    case 'setgroups':
    case 'uid_map':
    case 'gid_map':
    case 'private':
    case 'pidns':
      return { code: 'HPCC_E_LAUNCH_USERNS', hint: USERNS_HINT };
    case 'sharens':
      return {
        code: 'HPCC_E_LAUNCH_SHARENS',
        hint: '--sharens needs a warm mount to join (its keeper, the rendezvous directory, setns into its user namespace): `hpcc doctor` checks them; HPCC_DEBUG=1 says more.',
      };
    case 'image':
      return { code: 'HPCC_E_LAUNCH_IMAGE', hint: 'Check that the image file exists and that you can read it.' };
    case 'fuse-device':
      return {
        code: 'HPCC_E_LAUNCH_FUSE_DEVICE',
        hint:
          errno === 'ENOENT'
            ? '/dev/fuse does not exist on this node: load the fuse module, or run with --unsquash (extracts the image to the cache).'
            : '/dev/fuse is not usable by you (it should be mode 0666): ask the admin, or run with --unsquash.',
      };
    case 'fuse-helper':
      return { code: 'HPCC_E_LAUNCH_SQUASHFUSE', hint: 'squashfuse is missing: install it (Debian: apt-get install squashfuse), or run with --unsquash.' };
    case 'fuse':
    case 'fuse-mount':
      return {
        code: 'HPCC_E_LAUNCH_FUSE',
        hint: 'squashfuse could not serve the image (damaged squashfs, or FUSE refused); check the image with `hpcc inspect`, or run with --unsquash.',
      };
    case 'stage':
    case 'rootfs':
      return { code: 'HPCC_E_LAUNCH_ROOTFS', hint: 'The container root could not be prepared; check HPCC_TMPDIR points to a writable local directory.' };
    case 'pivot_root':
    case 'caps':
      return { code: 'HPCC_E_LAUNCH_ROOT', hint: 'Switching to the container root failed; run `hpcc doctor`.' };
    case 'chdir':
      return { code: 'HPCC_E_LAUNCH_CWD', hint: 'The working directory does not exist in the container; pass --pwd DIR or bind it with -B.' };
    case 'exec':
      return errno === 'ENOENT' || errno === 'ENOTDIR'
        ? { code: 'HPCC_E_LAUNCH_EXEC_NOT_FOUND', hint: 'The command was not found in the container; check its name and the PATH inside the image.' }
        : { code: 'HPCC_E_LAUNCH_EXEC_DENIED', hint: 'The command exists but cannot be executed (permissions, or a binary for another architecture).' };
    default:
      return { code: 'HPCC_E_LAUNCH_INTERNAL', hint: 'This is a bug in hpcc or an exhausted system resource; please report it.' };
  }
}

/** Turn a helper status record into the typed error users see. */
export function setupErrorFromStatus(r: StatusRecord): LaunchSetupError {
  const e = errnoName(r.errno);
  const { code, hint } = classify(r, e.name);
  const where = r.opIndex >= 0 ? `mount op ${r.opIndex} (${r.op})` : r.op;
  const msg = `launch failed at ${where}: ${r.message}${e.text ? `: ${e.text} (${e.name})` : ''}`;
  return new LaunchSetupError(code, msg, { opIndex: r.opIndex, op: r.op, errno: e.name }, {
    exitCode: r.exitCode,
    ...(hint ? { hint } : {}),
  });
}

/** one of the payload's standard streams: inherited, a pipe, /dev/null, or an fd of ours */
export type PayloadStdio = 'inherit' | 'pipe' | 'ignore' | number;

export interface LaunchOptions {
  /** the helper binary (default: findLaunchHelper()) */
  helper?: string;
  /** stdin, stdout, stderr of the payload (default inherit) */
  stdio?: [PayloadStdio, PayloadStdio, PayloadStdio];
  /** pass signals sent to this process on to the helper (default true) */
  forwardSignals?: boolean;
  /** the helper gets SIGTERM when this process dies (default true) */
  dieWithParent?: boolean;
  /** informational records (overlay method used); default: printed to stderr when HPCC_DEBUG is set */
  onInfo?: (records: InfoRecord[]) => void;
  /** --timings: the helper sends its phases (status.c), each status line is passed here as it comes */
  onStatusLine?: (line: string) => void;
}

export interface RunningLaunch {
  child: ChildProcess;
  /** payload exit status; rejects with LaunchSetupError */
  result: Promise<number>;
}

const FORWARDED = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const;
const TTY_GROUP = ['SIGINT', 'SIGQUIT'] as const;

/** Start the helper on `plan` and return at once (tests use `child` to send signals). */
export function startLaunch(plan: LaunchPlan, opts: LaunchOptions = {}): RunningLaunch {
  const bytes = encodePlan(plan);
  const helper = opts.helper ?? findLaunchHelper();
  const args = ['--plan-fd', '3', '--status-fd', '4'];
  if (opts.dieWithParent !== false) args.push('--die-with-parent');
  if (opts.onStatusLine) args.push('--report-phases');
  const stdio: PayloadStdio[] = opts.stdio ?? ['inherit', 'inherit', 'inherit'];
  const child = spawn(helper, args, { stdio: [stdio[0], stdio[1], stdio[2], 'pipe', 'pipe'] });
  const handlers: Array<[NodeJS.Signals, () => void]> = [];
  if (opts.forwardSignals !== false) {
    const tty = process.stdin.isTTY === true;
    for (const sig of [...FORWARDED, ...TTY_GROUP]) {
      const h = tty && (TTY_GROUP as readonly string[]).includes(sig) ? () => undefined : () => void child.kill(sig);
      process.on(sig, h);
      handlers.push([sig, h]);
    }
  }
  const result = new Promise<number>((resolve, reject) => {
    let status = '';
    const planPipe = child.stdio[3] as NodeJS.WritableStream & { on(ev: 'error', f: () => void): void };
    planPipe.on('error', () => undefined); // the helper may exit before reading everything
    planPipe.end(Buffer.from(bytes));
    const statusPipe = child.stdio[4] as NodeJS.ReadableStream;
    statusPipe.setEncoding('utf8');
    let line = '';
    statusPipe.on('data', (d: string) => {
      if (status.length < 65536) status += d;
      if (!opts.onStatusLine) return;
      const lines = (line + d).split('\n');
      line = lines.pop()!.slice(0, 4096);
      for (const l of lines) opts.onStatusLine(l);
    });
    child.on('error', (e) => {
      cleanup();
      reject(
        new LaunchSetupError('HPCC_E_LAUNCH_HELPER_MISSING', `cannot start the launch helper ${helper}: ${e.message}`,
          { opIndex: -1, op: 'helper', errno: (e as NodeJS.ErrnoException).code ?? '' },
          { exitCode: 103, cause: e, hint: 'Build it from source: `npm run build` (or `make -C native`), then retry.' }),
      );
    });
    child.on('close', (code, signal) => {
      cleanup();
      const infos = parseInfoRecords(status);
      if (infos.length > 0) {
        if (opts.onInfo) opts.onInfo(infos);
        else if (process.env.HPCC_DEBUG) for (const r of infos.filter((x) => x.step !== 'timing')) process.stderr.write(`hpcc: op ${r.opIndex} ${r.step}: ${r.message}\n`);
      }
      const recs = parseStatusRecords(status);
      if (recs.length > 0) return reject(setupErrorFromStatus(recs[0]!));
      if (code !== null) return resolve(code);
      // the helper itself was killed (it never dies of a forwarded signal otherwise)
      resolve(128 + (signal ? (os.constants.signals[signal] ?? 0) : 0));
    });
  });
  function cleanup(): void {
    for (const [sig, h] of handlers.splice(0)) process.off(sig, h);
  }
  return { child, result };
}

/** Run `plan` and resolve with the payload's exit status (rejects with LaunchSetupError). */
export async function launch(plan: LaunchPlan, opts: LaunchOptions = {}): Promise<number> {
  return startLaunch(plan, opts).result;
}
