/**
 * Host facts for the plan builder, gathered once per launch (the only
 * impure part of src/runtime/builder/): identity, the caller's passwd and
 * group entries (the files first, `getent` once when the user is not in
 * them, e.g. LDAP), $HOME, cwd, the environment, path look-ups, the FUSE
 * helper, whether overlayfs should work in a user namespace, fuse-overlayfs,
 * and the stage.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HpccIOError } from '../../errors/index.js';
import type { FactRecorder } from '../memo.js';
import { findById, parseGroupLine, parsePasswdLine } from './passwd.js';
import { parseWarmIdle } from './config.js';
import type { GroupEntry, HostFacts, LaunchConfig, PathInfo, UserEntry, WarmFacts } from './types.js';
import { WARM_IDLE_DEFAULT } from './warm.js';

function readText(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

function getent(db: 'passwd' | 'group', id: number): string | null {
  const r = spawnSync('getent', [db, String(id)], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 && r.stdout ? r.stdout.split('\n')[0]! : null;
}

export function lookupUser(uid: number, rec?: FactRecorder): UserEntry | null {
  rec?.id('/etc/passwd');
  const text = readText('/etc/passwd');
  const e = text ? findById(text, parsePasswdLine, 'uid', uid) : null;
  if (e) return e;
  rec?.spoil('the user is not in /etc/passwd (getent)');
  const line = getent('passwd', uid);
  return line ? parsePasswdLine(line) : null;
}

export function lookupGroup(gid: number, rec?: FactRecorder): GroupEntry | null {
  rec?.id('/etc/group');
  const text = readText('/etc/group');
  const e = text ? findById(text, parseGroupLine, 'gid', gid) : null;
  if (e) return e;
  rec?.spoil('the group is not in /etc/group (getent)');
  const line = getent('group', gid);
  return line ? parseGroupLine(line) : null;
}

/** A host path look-up with symlinks followed; cached for one launch. */
export function hostLookup(rec?: FactRecorder): (p: string) => PathInfo | null {
  const cache = new Map<string, PathInfo | null>();
  return (p: string) => {
    if (cache.has(p)) return cache.get(p)!;
    let info: PathInfo | null = null;
    try {
      const real = fs.realpathSync(p);
      const st = fs.statSync(real);
      info = { kind: st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other', real };
    } catch {
      info = null;
    }
    rec?.look(p, info);
    cache.set(p, info);
    return info;
  };
}

/** The first executable `name` in PATH, then /usr/bin, /bin, /usr/sbin, /sbin. */
export function onPath(name: string, envPath: string | undefined, rec?: FactRecorder): string | null {
  for (const d of (envPath ?? '').split(':').concat(['/usr/bin', '/bin', '/usr/sbin', '/sbin'])) {
    if (!d.startsWith('/')) continue;
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      rec?.acc(p, fs.constants.X_OK, true);
      return p;
    } catch {
      rec?.acc(p, fs.constants.X_OK, false);
    }
  }
  return null;
}

/** squashfuse_ll (multithreaded, faster), else squashfuse; config or HPCC_SQUASHFUSE first. */
export function findFuseHelper(env: Record<string, string | undefined>, config: LaunchConfig, rec?: FactRecorder): string | null {
  const explicit = env.HPCC_SQUASHFUSE ?? config.squashfuse;
  if (explicit !== undefined) {
    if (explicit === '' || explicit === 'none') return null;
    return explicit.startsWith('/') ? explicit : onPath(explicit, env.PATH, rec);
  }
  return onPath('squashfuse_ll', env.PATH, rec) ?? onPath('squashfuse', env.PATH, rec);
}

/** Kernel release as [major, minor]. */
export function kernelVersion(release = os.release()): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** Kernel overlayfs may be mounted in a user namespace from Linux 5.11. HPCC_NO_OVERLAY=1 turns it off. */
export function overlayInUserns(env: Record<string, string | undefined>, rec?: FactRecorder): boolean {
  if (env.HPCC_NO_OVERLAY === '1') return false;
  const [maj, min] = kernelVersion(); // the release is part of a memo's key
  if (maj < 5 || (maj === 5 && min < 11)) return false;
  rec?.sum('/proc/filesystems');
  const fsList = readText('/proc/filesystems');
  if (fsList === null || /\toverlay$/m.test(fsList)) return true;
  const mod = `/lib/modules/${os.release()}/kernel/fs/overlayfs`;
  rec?.id(mod);
  return fs.existsSync(mod);
}

/** fuse-overlayfs on PATH, when /dev/fuse is usable too (else null). */
export function findFuseOverlayfs(env: Record<string, string | undefined>, rec?: FactRecorder): string | null {
  const p = onPath('fuse-overlayfs', env.PATH, rec);
  if (!p) return null;
  const rw = fs.constants.R_OK | fs.constants.W_OK;
  try {
    fs.accessSync('/dev/fuse', rw);
    rec?.acc('/dev/fuse', rw, true);
    return p;
  } catch {
    rec?.acc('/dev/fuse', rw, false);
    return null;
  }
}

/**
 * Stage candidates (see HostFacts.stageDirs): $XDG_RUNTIME_DIR/hpcc, then
 * directories that exist on nearly every node and are rarely bound (the
 * helper only mounts a private tmpfs over them, inside its own namespace),
 * then a per-user fallback, $HPCC_TMPDIR, $TMPDIR or /tmp + /hpcc-<uid>,
 * created 0700 and checked to be a directory we own. All are fixed paths,
 * reused by every launch, so a killed launch leaves nothing behind.
 */
export function stageDirs(env: Record<string, string | undefined>, config: LaunchConfig, uid: number, rec?: FactRecorder): string[] {
  const out: string[] = [];
  const look = hostLookup(rec);
  const isDir = (p: string): boolean => look(p)?.kind === 'dir';
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && xdg.startsWith('/') && isDir(xdg)) {
    const d = path.join(xdg, 'hpcc');
    try {
      fs.mkdirSync(d, { mode: 0o700 });
    } catch {
      /* exists or not creatable: checked below */
    }
    if (isDir(d)) out.push(d);
  }
  for (const d of ['/mnt', '/media', '/srv']) if (isDir(d)) out.push(d);
  const base = userLaunchDir(env, config, uid);
  let problem: HpccIOError | null = null;
  try {
    fs.mkdirSync(base, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      problem = new HpccIOError('HPCC_E_IO_STAGE', `cannot create the launch directory ${base}: ${(e as Error).message}`, {
        cause: e,
        hint: 'Set HPCC_TMPDIR to a directory you can write to.',
      });
    }
  }
  if (!problem) {
    const st = fs.lstatSync(base);
    if (!st.isDirectory() || st.uid !== uid) {
      problem = new HpccIOError('HPCC_E_IO_STAGE', `${base} is not a directory owned by uid ${uid}`, {
        hint: `Remove ${base}, or set HPCC_TMPDIR to a directory of your own.`,
      });
    }
  }
  if (!problem) {
    rec?.own(base, uid);
    out.push(base);
  } else {
    rec?.spoil(problem.message);
    if (out.length === 0) throw problem;
  }
  return out;
}

/**
 * Warm mounts (builder/warm.ts): on unless HPCC_WARM_IDLE or `[launch] warm`
 * is 0 (idleSeconds 0: only --sharens uses one then); the rendezvous directory is `warm` in the per-user launch directory
 * (the last stage candidate, checked to be ours above), which the helper
 * creates 0700 and checks again. Off when that directory is not usable.
 */
export function warmFacts(env: Record<string, string | undefined>, config: LaunchConfig, uid: number, stage: string[]): WarmFacts | null {
  const idleSeconds = warmIdleSeconds(env, config);
  const base = userLaunchDir(env, config, uid);
  if (!stage.includes(base)) return null;
  return { dir: warmRendezvousDir(base), idleSeconds, node: os.hostname() };
}

/** The warm mounts' rendezvous directory in a launch directory (native/launch/warm.c checks and creates it). */
export function warmRendezvousDir(launchDir: string): string {
  return path.join(launchDir, 'warm');
}

/** The configured idle time of warm mounts (HPCC_WARM_IDLE, else `[launch] warm`, else the default); 0: off. */
export function warmIdleSeconds(env: Record<string, string | undefined>, config: LaunchConfig): number {
  return env.HPCC_WARM_IDLE !== undefined && env.HPCC_WARM_IDLE !== '' ? parseWarmIdle(env.HPCC_WARM_IDLE, 'HPCC_WARM_IDLE') : (config.warm ?? WARM_IDLE_DEFAULT);
}

/** The per-user launch directory, `hpcc-UID` in HPCC_TMPDIR, `[launch] tmpdir`, TMPDIR or /tmp. */
export function userLaunchDir(env: Record<string, string | undefined>, config: LaunchConfig, uid: number): string {
  return path.join(env.HPCC_TMPDIR || config.tmpdir || env.TMPDIR || '/tmp', `hpcc-${uid}`);
}

/** `rec` records every host fact the plan may rest on (a launch memo's facts; the cwd, env and ids are in its key). */
export function gatherHostFacts(config: LaunchConfig, env: Record<string, string | undefined> = process.env, rec?: FactRecorder): HostFacts {
  const uid = process.getuid!();
  const gid = process.getgid!();
  const user = lookupUser(uid, rec);
  const group = lookupGroup(gid, rec);
  let cwd: string;
  try {
    cwd = process.cwd();
  } catch {
    rec?.spoil('no working directory');
    cwd = '/';
  }
  const stages = stageDirs(env, config, uid, rec);
  const cleanEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) cleanEnv[k] = v;
  return {
    uid,
    gid,
    user,
    group,
    home: env.HOME || user?.home || '/',
    cwd,
    env: cleanEnv,
    lookup: hostLookup(rec),
    fuseHelper: findFuseHelper(env, config, rec),
    overlayInUserns: overlayInUserns(env, rec),
    fuseOverlayfs: findFuseOverlayfs(env, rec),
    stageDirs: stages,
    warm: warmFacts(env, config, uid, stages),
  };
}
