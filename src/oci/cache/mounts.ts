/**
 * `hpcc cache list|clean --type mounts`: the warm mounts' keepers of the
 * calling user on this node (native/launch/warm.c; docs/launcher.md, "Warm
 * mounts"). Each keeper has KEY-CG.sock and KEY-CG.json in the rendezvous
 * directory; the socket answers 'S' (status) and 'Q' (stop: no new joins, it
 * ends when its users have gone).
 *
 * Nothing here is trusted that the launcher would not trust: the launch
 * directory and the rendezvous directory must be the caller's (lstat, not a
 * symlink; the rendezvous directory without group or other bits), and each
 * file a regular file or socket of the caller's. Anything else is skipped,
 * never read, connected to or removed. A keeper that does not answer is
 * listed as dead; clean removes its files only when its socket refuses
 * connections (no process listens) and is still the socket it looked at.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { loadConfig } from '../../runtime/builder/config.js';
import { userLaunchDir, warmRendezvousDir } from '../../runtime/builder/facts.js';
import { WARM_PROTOCOL } from '../../runtime/builder/warm.js';

export interface MountEntry {
  type: 'mount';
  /** KEY-CG: the keeper's key and cgroup hash */
  name: string;
  /** its socket */
  path: string;
  size: number;
  /** now while it has users, else when its last user left */
  lastUsed: string;
  image: string;
  pid: number | null;
  ageSeconds: number | null;
  idleSeconds: number | null;
  /** seconds it stays unused before it ends */
  idleLimit: number | null;
  users: number | null;
  /** stopped accepting (image changed or stopped): ends when its users have gone */
  stale: boolean;
  /** no keeper answers on the socket */
  dead: boolean;
}

export interface KeeperStatus {
  pid: number;
  ageSeconds: number;
  users: number;
  idleSeconds: number;
  stale: boolean;
}

const REPLY_MS = 2000;
const META_MAX = 64 * 1024;

/**
 * This user's rendezvous directory, opened (O_NOFOLLOW) and checked through
 * its descriptor: `via` is /proc/self/fd/N, through which every file in it is
 * reached (also keeping socket paths short: a unix socket's path is limited
 * to 107 bytes), `dir` its name for display. null when there is none that
 * may be trusted. close() when done.
 */
export function openWarmDir(env: Record<string, string | undefined> = process.env, uid = process.getuid!()): { dir: string; via: string; close: () => void } | null {
  const base = userLaunchDir(env, loadConfig(env), uid);
  const dir = warmRendezvousDir(base);
  const st = fs.lstatSync(base, { throwIfNoEntry: false });
  if (!st?.isDirectory() || st.uid !== uid) return null;
  let fd: number;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  const ds = fs.fstatSync(fd);
  if (!ds.isDirectory() || ds.uid !== uid || (ds.mode & 0o077) !== 0) {
    fs.closeSync(fd);
    return null;
  }
  return { dir, via: `/proc/self/fd/${fd}`, close: () => fs.closeSync(fd) };
}

/** One request to a keeper; the first line of its answer, or the errno code when it cannot be reached. */
export function askKeeper(sock: string, req: 'S' | 'Q'): Promise<{ line: string } | { error: string }> {
  return new Promise((resolve) => {
    let buf = '';
    let done = false;
    const c = net.connect({ path: sock });
    const finish = (r: { line: string } | { error: string }) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      c.destroy();
      resolve(r);
    };
    const t = setTimeout(() => finish({ error: 'ETIMEDOUT' }), REPLY_MS);
    c.on('connect', () => c.write(req));
    c.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl >= 0 || buf.length > 512) finish({ line: buf.slice(0, nl >= 0 ? nl : 512) });
    });
    c.on('end', () => finish(buf ? { line: buf } : { error: 'ECONNRESET' }));
    c.on('error', (e: NodeJS.ErrnoException) => finish({ error: e.code ?? 'EIO' }));
  });
}

export function parseStatus(line: string): KeeperStatus | null {
  const m = new RegExp(`^${WARM_PROTOCOL.replace('/', '\\/')} status (\\d+) (\\d+) (\\d+) (\\d+) ([01])$`).exec(line.trim());
  if (!m) return null;
  return { pid: Number(m[1]), ageSeconds: Number(m[2]), users: Number(m[3]), idleSeconds: Number(m[4]), stale: m[5] === '1' };
}

function ownFile(p: string, uid: number, kind: 'file' | 'socket'): fs.Stats | null {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (!st || st.uid !== uid || !(kind === 'file' ? st.isFile() : st.isSocket())) return null;
  return st;
}

function readMeta(p: string, uid: number): { image?: unknown; pid?: unknown; idle?: unknown; started?: unknown } {
  const st = ownFile(p, uid, 'file');
  if (!st || st.size > META_MAX) return {};
  try {
    const v = JSON.parse(fs.readFileSync(p, 'utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** This user's keepers, asked for their status. */
export async function listMounts(env: Record<string, string | undefined> = process.env, now = Date.now()): Promise<MountEntry[]> {
  const uid = process.getuid!();
  const wd = openWarmDir(env, uid);
  if (!wd) return [];
  try {
    return await listIn(wd.dir, wd.via, uid, now);
  } finally {
    wd.close();
  }
}

async function listIn(dir: string, via: string, uid: number, now: number): Promise<MountEntry[]> {
  const names = new Set<string>();
  for (const f of fs.readdirSync(via)) {
    const m = /^([0-9a-f]{16,64}-[0-9a-f]{16})\.(sock|json)$/.exec(f);
    if (m) names.add(m[1]!);
  }
  const out: MountEntry[] = [];
  for (const name of [...names].sort()) {
    const sock = path.join(via, `${name}.sock`);
    const meta = readMeta(path.join(via, `${name}.json`), uid);
    const hasSock = ownFile(sock, uid, 'socket') !== null;
    if (!hasSock && fs.lstatSync(sock, { throwIfNoEntry: false })) continue; // someone else's, or not a socket: not ours to touch
    const answer = hasSock ? await askKeeper(sock, 'S') : { error: 'ENOENT' };
    const s = 'line' in answer ? parseStatus(answer.line) : null;
    const num = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);
    const started = num(meta.started);
    out.push({
      type: 'mount',
      name,
      path: path.join(dir, `${name}.sock`),
      size: 0,
      lastUsed: new Date(s ? now - (s.users ? 0 : s.idleSeconds * 1000) : started !== null ? started * 1000 : now).toISOString(),
      image: typeof meta.image === 'string' ? meta.image : '',
      pid: s ? s.pid : num(meta.pid),
      ageSeconds: s ? s.ageSeconds : null,
      idleSeconds: s ? s.idleSeconds : null,
      idleLimit: num(meta.idle),
      users: s ? s.users : null,
      stale: s ? s.stale : true,
      dead: s === null,
    });
  }
  return out;
}

/**
 * Stop a keeper ('Q': no new joins; it ends when its users have gone), or
 * remove the files of a dead one when its socket still refuses connections.
 * 'busy': it answered neither way (starting, or hung): left alone.
 */
export async function stopMount(e: MountEntry, env: Record<string, string | undefined> = process.env): Promise<'stopped' | 'removed' | 'busy'> {
  const uid = process.getuid!();
  const wd = openWarmDir(env, uid);
  if (!wd || path.dirname(e.path) !== wd.dir) {
    wd?.close();
    return 'busy';
  }
  try {
    return await stopIn(wd.via, e.name, uid);
  } finally {
    wd.close();
  }
}

async function stopIn(via: string, name: string, uid: number): Promise<'stopped' | 'removed' | 'busy'> {
  const sock = path.join(via, `${name}.sock`);
  const json = path.join(via, `${name}.json`);
  const st = ownFile(sock, uid, 'socket');
  const answer = st ? await askKeeper(sock, 'Q') : { error: 'ENOENT' };
  if ('line' in answer) return 'stopped';
  if (answer.error !== 'ECONNREFUSED' && answer.error !== 'ENOENT') return 'busy';
  // a launch may have started a new keeper on this name meanwhile: remove only what was looked at
  const again = fs.lstatSync(sock, { throwIfNoEntry: false });
  if (st && again && again.ino === st.ino && again.dev === st.dev) fs.rmSync(sock, { force: true });
  if (!ownFile(sock, uid, 'socket') && ownFile(json, uid, 'file')) fs.rmSync(json, { force: true });
  return 'removed';
}
