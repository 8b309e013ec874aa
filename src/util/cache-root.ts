/**
 * The one cache root of every hpcc cache (blobs, SIFs, reference records,
 * extracted image roots, launch memos, locks), and the trust rule for what
 * lies in it. native/front/front.c computes the same root for launch memos
 * (cache_root(); test/e2e/cache-trust.test.ts fails when the two drift).
 *
 * Root: $HPCC_CACHEDIR, else $XDG_CACHE_HOME/hpcc, else HOME/.cache/hpcc,
 * where HOME is $HOME when it is an absolute path and otherwise the password
 * database's entry for the caller (never a shared directory such as /tmp).
 * A relative HPCC_CACHEDIR or XDG_CACHE_HOME is refused (HPCC_E_USAGE).
 *
 * Trust: every cache directory and entry is checked with lstat before use:
 * not a symbolic link, of the expected kind, owned by the caller, not
 * writable by group or others. The root is created 0700 (an older root of
 * ours is tightened to 0700); a root failing the check is refused
 * (HPCC_E_CACHE_UNTRUSTED: hpcc cannot rebuild a directory it does not own).
 * A directory or entry inside it failing the check is never used: it is
 * moved aside and made again (directories; moveAside) or treated as missing
 * and rebuilt (entries; the callers). So a cache is private to one user:
 * HPCC_CACHEDIR cannot point at a cache shared by a group.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HpccIOError, UsageError, addContext } from '../errors/index.js';
import { removeTree } from './remove-tree.js';

import { CACHE_LAYOUT, cacheRootOf, homeOf, untrusted, type Env } from './cache-path.js';

export { CACHE_LAYOUT, untrusted, type Env };

/** The password database's home directory of this process's user. */
export const passwdHome = (): string => os.userInfo().homedir;

const NO_HOME_HINT = 'Set HPCC_CACHEDIR to an absolute path of a directory only you can write.';

/** $HOME when it is absolute, else the password database's entry (`lookup`). */
export function homeDir(env: Env = process.env, lookup: () => string = passwdHome): string {
  const home = homeOf(env, lookup);
  if (!home) throw new UsageError('HOME is unset and the password database has no home directory for this user', { hint: NO_HOME_HINT });
  return home;
}

/** $XDG_CONFIG_HOME when it is absolute, else HOME/.config with homeDir()'s HOME (hpcc.conf, auth.json). */
export function configHome(env: Env = process.env, lookup: () => string = passwdHome): string {
  const xdg = env.XDG_CONFIG_HOME;
  return xdg && path.isAbsolute(xdg) ? xdg : path.join(homeDir(env, lookup), '.config');
}

/** The cache root's path for this environment (nothing is created; cache-path.ts has the rule). */
export function cacheRoot(env: Env = process.env, lookup: () => string = passwdHome): string {
  const r = cacheRootOf(env, lookup);
  if ('root' in r) return r.root;
  if ('home' in r) return homeDir(env, lookup); // throws
  const name = r.relative;
  throw new UsageError(`${name}=${env[name]} is a relative path: hpcc refuses a cache directory that depends on the working directory`, {
    hint: `Set ${name} to an absolute path (or unset it).`,
  });
}

/** lstat `p`: 'missing', 'ok' when trusted as `kind`, else why not. */
export function entryState(p: string, kind: 'dir' | 'file'): 'missing' | 'ok' | string {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return 'missing';
  }
  return untrusted(st, kind) ?? 'ok';
}

function refuse(dir: string, why: string): HpccIOError {
  return new HpccIOError('HPCC_E_CACHE_UNTRUSTED', `cache directory ${dir} is ${why}: hpcc does not use it`, {
    hint: 'The cache must be a directory you own that only you can write: remove it, or set HPCC_CACHEDIR to another absolute path.',
  });
}

/**
 * Create the cache root (0700; missing parents 0700 too) or check an
 * existing one, tightening an older root of ours to 0700. Returns its path.
 */
export function ensureCacheRoot(root: string = cacheRoot()): string {
  try {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  } catch (e) {
    const state = entryState(root, 'dir');
    if (state !== 'ok' && state !== 'missing') throw refuse(root, state);
    throw addContext(`create cache directory ${root}`, e);
  }
  let fd: number;
  try {
    fd = fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') throw refuse(root, code === 'ELOOP' ? 'a symbolic link' : 'not a directory');
    throw addContext(`open cache directory ${root}`, e);
  }
  try {
    const st = fs.fstatSync(fd);
    const why = untrusted(st, 'dir');
    if (why) throw refuse(root, why);
    if (st.mode & 0o077) fs.fchmodSync(fd, 0o700);
  } finally {
    fs.closeSync(fd);
  }
  return root;
}

/**
 * Move an untrusted entry out of the way (renamed to .untrusted-<name>-<rand>
 * beside it, then removed where we can); false when it cannot be moved.
 */
export function moveAside(p: string): boolean {
  const aside = path.join(path.dirname(p), `.untrusted-${path.basename(p)}-${randomBytes(4).toString('hex')}`);
  try {
    fs.renameSync(p, aside);
  } catch {
    return false;
  }
  try {
    if (fs.lstatSync(aside).isDirectory()) removeTree(aside);
    else fs.unlinkSync(aside);
  } catch {
    /* another user's tree: left aside, never used */
  }
  return true;
}

/**
 * The cache directory root/...parts, each level created 0700 and checked;
 * a level that fails the check is moved aside and made again.
 */
export function ensureCacheDir(root: string, ...parts: string[]): string {
  ensureCacheRoot(root);
  let dir = root;
  for (const part of parts) {
    dir = path.join(dir, part);
    for (let attempt = 0; ; attempt++) {
      try {
        fs.mkdirSync(dir, { mode: 0o700 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw addContext(`create cache directory ${dir}`, e);
      }
      const state = entryState(dir, 'dir');
      if (state === 'ok') break;
      if (attempt > 0 || !moveAside(dir)) throw refuse(dir, state);
    }
  }
  return dir;
}
