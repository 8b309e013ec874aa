/**
 * Where hpcc's cache lives: the layout's names, the root's rule and the trust
 * rule for what lies in it, defined once. Pure (node:path only), so bin/run.js can load it before anything else
 * for Node's compile cache; util/cache-root.ts adds the trust checks, and the
 * launch contract's generated C header carries the names to the native front
 * (cli/contract-header.ts).
 *
 * Root: $HPCC_CACHEDIR, else $XDG_CACHE_HOME/hpcc, else HOME/.cache/hpcc, HOME
 * being $HOME when it is absolute and otherwise the password database's entry
 * (never a shared directory such as /tmp). A relative HPCC_CACHEDIR or
 * XDG_CACHE_HOME gives no root.
 */
import * as path from 'node:path';

export const CACHE_LAYOUT = Object.freeze({
  /** variable naming the cache root itself */
  rootVar: 'HPCC_CACHEDIR',
  /** XDG base directory variable, and hpcc's directory below it */
  xdgVar: 'XDG_CACHE_HOME',
  xdgSub: 'hpcc',
  /** below the home directory when neither variable is set */
  homeSub: '.cache/hpcc',
  /** launch memos, below the root */
  launch: 'launch',
  /** which manifest each docker:// reference resolved to last (core/pull.ts; read by the shell completions) */
  refs: 'refs',
  /** Node's compile cache of hpcc's own code (bin/run.js), below the root */
  compileCache: 'node-compile-cache',
});

export type Env = Record<string, string | undefined>;

/**
 * The cache root for `env`, or the variable that makes it unusable: `relative`
 * names a relative variable, `home` says HOME is unset and `passwdHome` gave
 * no absolute path.
 */
export function cacheRootOf(env: Env, passwdHome: () => string): { root: string } | { relative: string } | { home: false } {
  const L = CACHE_LAYOUT;
  const dir = env[L.rootVar];
  if (dir) return path.isAbsolute(dir) ? { root: path.resolve(dir) } : { relative: L.rootVar };
  const xdg = env[L.xdgVar];
  if (xdg) return path.isAbsolute(xdg) ? { root: path.join(path.resolve(xdg), L.xdgSub) } : { relative: L.xdgVar };
  const home = homeOf(env, passwdHome);
  return home ? { root: path.join(home, L.homeSub) } : { home: false };
}

/** $HOME when it is absolute, else the password database's entry when that is absolute, else null. */
export function homeOf(env: Env, passwdHome: () => string): string | null {
  if (env.HOME && path.isAbsolute(env.HOME)) return env.HOME;
  let home = '';
  try {
    home = passwdHome();
  } catch {
    /* no entry for this uid */
  }
  return home && path.isAbsolute(home) ? home : null;
}

/** What untrusted() needs of an lstat result (node:fs Stats). */
export interface EntryStat {
  isSymbolicLink(): boolean;
  isDirectory(): boolean;
  isFile(): boolean;
  uid: number;
  mode: number;
}

/**
 * Why an lstat result may not be trusted as a cache directory or file; null
 * when it may: not a symbolic link, of the expected kind, owned by `uid`, not
 * writable by group or others.
 */
export function untrusted(st: EntryStat, kind: 'dir' | 'file', uid = process.geteuid?.() ?? 0): string | null {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (kind === 'dir' ? !st.isDirectory() : !st.isFile()) return kind === 'dir' ? 'not a directory' : 'not a regular file';
  if (st.uid !== uid) return `owned by uid ${st.uid}, not ${uid}`;
  if (st.mode & 0o022) return 'writable by group or others';
  return null;
}
