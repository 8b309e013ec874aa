/**
 * Per-key lock files for the cache, safe across processes of one user and
 * across hosts sharing the cache directory:
 *   - acquire: open(path, O_CREAT|O_EXCL) and write {pid, boot, start, host};
 *   - the holder touches the file every HEARTBEAT_MS;
 *   - a waiter treats a lock as stale when the holder is gone (same host and
 *     boot: no such pid, or the pid's start time differs — e.g. after SIGKILL;
 *     a live holder on this host keeps its lock however long it works), when
 *     it was made in another boot of this host, or when its mtime is older
 *     than STALE_MS (another host that stopped heartbeating).
 * A stale lock is removed only if its content is still what was judged stale.
 * The worst case of a race between two waiters is a duplicate download, never a
 * corrupt blob: blobs are written to private temp files and renamed.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import { HpccIOError, addContext } from '../../errors/index.js';

export const HEARTBEAT_MS = 5_000;
export const STALE_MS = 60_000;

interface LockInfo {
  pid: number;
  boot: string;
  start: string;
  host: string;
}

let bootIdCache: string | undefined;
export function bootId(): string {
  if (bootIdCache === undefined) {
    try {
      bootIdCache = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootIdCache = '';
    }
  }
  return bootIdCache;
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot); '' when unknown. */
export function processStartTime(pid: number): string | null {
  let s: string;
  try {
    s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? null : '';
  }
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return rest[19] ?? '';
}

let mine: LockInfo | undefined;
function myInfo(): LockInfo {
  // pid and start time are this process's for good (a fork would be a new process)
  if (mine?.pid !== process.pid) mine = { pid: process.pid, boot: bootId(), start: processStartTime(process.pid) ?? '', host: os.hostname() };
  return mine;
}

function isStale(text: string, mtimeMs: number): boolean {
  const age = Date.now() - mtimeMs;
  let info: Partial<LockInfo>;
  try {
    info = JSON.parse(text) as Partial<LockInfo>;
  } catch {
    // Half-written by a holder killed between open and write: stale once a little old.
    return age > 2_000;
  }
  // Another host: only the heartbeat tells whether its holder is alive.
  if (info.host !== os.hostname()) return age > STALE_MS;
  if (info.boot && bootId() && info.boot !== bootId()) return true;
  if (typeof info.pid !== 'number') return true;
  const start = processStartTime(info.pid);
  if (start === null) return true; // no such process
  if (info.start !== undefined && info.start !== '' && start !== '') return start !== info.start;
  // This host, but the holder's identity cannot be checked: fall back to the heartbeat.
  return age > STALE_MS;
}

export interface HeldLock {
  release(): Promise<void>;
}

export interface AcquireOptions {
  /** give up after this long (default: wait forever, the holder heartbeats) */
  timeoutMs?: number;
  /** polled while waiting: return true to stop waiting without the lock (e.g. the blob appeared) */
  satisfied?: () => Promise<boolean>;
  pollMs?: number;
}

/** Take the lock, or resolve null when `satisfied()` says the work was done by someone else. */
export async function acquireLock(lockPath: string, opts: AcquireOptions = {}): Promise<HeldLock | null> {
  const deadline = opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : Infinity;
  const poll = opts.pollMs ?? 50;
  for (;;) {
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(lockPath, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw addContext(`create lock ${lockPath}`, e);
    }
    if (fh) {
      try {
        await fh.writeFile(JSON.stringify(myInfo()));
      } finally {
        await fh.close();
      }
      return held(lockPath);
    }
    if (opts.satisfied && (await opts.satisfied())) return null;
    await breakIfStale(lockPath);
    if (Date.now() > deadline) {
      throw new HpccIOError('HPCC_E_CACHE_LOCK_TIMEOUT', `timed out waiting for the cache lock ${lockPath}`, {
        hint: 'Another hpcc process holds it; if none is running, remove the lock file.',
      });
    }
    await new Promise((r) => setTimeout(r, poll + Math.random() * poll));
  }
}

/** Remove the lock when its holder is gone (e.g. killed after finishing the work but before releasing). */
export async function breakIfStale(lockPath: string): Promise<void> {
  let text: string;
  let st: fs.Stats;
  try {
    st = await fsp.stat(lockPath);
    text = await fsp.readFile(lockPath, 'utf8');
  } catch {
    return; // gone already
  }
  if (!isStale(text, st.mtimeMs)) return;
  try {
    const again = await fsp.readFile(lockPath, 'utf8');
    if (again === text) await fsp.unlink(lockPath);
  } catch {
    /* someone else removed it */
  }
}

function held(lockPath: string): HeldLock {
  const timer = setInterval(() => {
    const now = new Date();
    fsp.utimes(lockPath, now, now).catch(() => undefined);
  }, HEARTBEAT_MS);
  timer.unref();
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await fsp.unlink(lockPath).catch(() => undefined);
    },
  };
}
