/**
 * The launcher's extraction cache (src/core/extract-cache.ts) as seen by
 * `hpcc cache list|clean --type extract`:
 *   <cache root>/rootfs/<key>                    an extracted image root (a directory tree)
 *   <cache root>/rootfs/.tmp-<key>-<pid>-<rand>  an extraction in progress (renamed into place)
 * The launcher takes no lock on an entry: it bind-mounts the directory as the
 * container's root. So an entry is "in use" while any process (in any mount
 * namespace this user can inspect) has a mount whose source is the entry or a
 * directory inside it; /proc/PID/mountinfo shows that as the mount's root path
 * on the entry's file system. Removal first renames the entry to a temp name
 * (a launch starting later extracts afresh), checks again that nothing mounted
 * it meanwhile (renaming it back if something did), then removes the tree.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HpccIOError } from '../../errors/index.js';
import { removeTree } from '../../util/remove-tree.js';
import { processStartTime } from './lock.js';

export interface ExtractEntry {
  type: 'extract' | 'temp';
  name: string;
  path: string;
  size: number;
  lastUsed: string;
}

const KEY_RE = /^[a-f0-9]{16,64}$/;
const TEMP_RE = /^\.tmp-([a-f0-9]{16,64})-(\d+)-[a-f0-9]+$/;

export function extractDir(cacheRoot: string): string {
  return path.join(cacheRoot, 'rootfs');
}

/** Bytes of the regular files in a tree (lstat, links not followed); unreadable parts count 0. */
export function treeBytes(dir: string): number {
  let total = 0;
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    let ents: fs.Dirent[];
    try {
      ents = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of ents) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        try {
          total += fs.lstatSync(p).size;
        } catch {
          /* vanished */
        }
      }
    }
  }
  return total;
}

/** Entries of the extraction cache: finished trees, and temp trees of dead processes (type 'temp'). */
export function listExtractions(cacheRoot: string): ExtractEntry[] {
  const dir = extractDir(cacheRoot);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: ExtractEntry[] = [];
  for (const n of names.sort()) {
    const p = path.join(dir, n);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      continue;
    }
    if (!st.isDirectory()) continue;
    const t = TEMP_RE.exec(n);
    if (t) {
      if (processStartTime(Number(t[2])) === null) out.push({ type: 'temp', name: n, path: p, size: treeBytes(p), lastUsed: st.mtime.toISOString() });
      continue;
    }
    if (!KEY_RE.test(n)) continue;
    // Last use: the launcher bumps the times on every use (markUsed); the ctime also covers
    // a fresh extraction whose mtime came from the image.
    out.push({ type: 'extract', name: n, path: p, size: treeBytes(p), lastUsed: new Date(Math.max(st.mtimeMs, st.ctimeMs)).toISOString() });
  }
  return out;
}

/** Undo mountinfo's octal escapes (\040 for a space, \011, \012, \134). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

interface MountLine {
  dev: string;
  root: string;
  mountPoint: string;
}

function parseMountinfo(text: string): MountLine[] {
  const out: MountLine[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    out.push({ dev: f[2]!, root: unescapeMount(f[3]!), mountPoint: unescapeMount(f[4]!) });
  }
  return out;
}

const within = (p: string, dir: string) => p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);

/**
 * Where `p` (absolute, symlinks resolved) lives: its file system (major:minor)
 * and its path inside that file system, from this process's mount table.
 */
function fsLocation(p: string, mounts: MountLine[]): { dev: string; rel: string } | null {
  let best: MountLine | undefined;
  for (const m of mounts) if (within(p, m.mountPoint) && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  if (!best) return null;
  const rest = best.mountPoint === '/' ? p : p.slice(best.mountPoint.length);
  return { dev: best.dev, rel: path.posix.join(best.root, rest) };
}

/**
 * The mounts of every mount namespace whose /proc/PID/mountinfo this process
 * may read (each namespace read once), as "dev root" pairs.
 */
export function mountedSources(): Array<{ dev: string; root: string }> {
  const seen = new Set<string>();
  const out: Array<{ dev: string; root: string }> = [];
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const pid of pids) {
    let ns: string;
    try {
      ns = fs.readlinkSync(`/proc/${pid}/ns/mnt`);
    } catch {
      continue; // gone, or not ours to inspect
    }
    if (seen.has(ns)) continue;
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
    } catch {
      continue;
    }
    seen.add(ns);
    for (const m of parseMountinfo(text)) out.push({ dev: m.dev, root: m.root });
  }
  return out;
}

/** True when some process has the directory (or a directory inside it) mounted. */
export function isMounted(dir: string, sources: Array<{ dev: string; root: string }> = mountedSources()): boolean {
  let real: string;
  let own: MountLine[];
  try {
    real = fs.realpathSync(dir);
    own = parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return false;
  }
  const loc = fsLocation(real, own);
  if (!loc) return false;
  return sources.some((s) => s.dev === loc.dev && within(s.root, loc.rel));
}

/**
 * Remove one finished extraction unless it is mounted: 'removed' or 'busy'.
 * The tree is renamed aside first and checked again, so a launch that mounted
 * it meanwhile keeps it (renamed back) and a later launch extracts afresh.
 */
export function removeExtraction(e: Pick<ExtractEntry, 'name' | 'path'> & { type: string }): 'removed' | 'busy' {
  if (isMounted(e.path)) return 'busy'; // a temp too: an entry renamed aside by a clean that died
  if (e.type === 'temp') {
    removeGone(e.path);
    return 'removed';
  }
  const aside = path.join(path.dirname(e.path), `.tmp-${e.name}-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    fs.renameSync(e.path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'removed'; // someone else removed it
    throw err;
  }
  if (isMounted(aside)) {
    try {
      fs.renameSync(aside, e.path);
    } catch {
      /* a new extraction took the name; ours stays aside and in use, and is cleaned as a temp later */
    }
    return 'busy';
  }
  removeGone(aside);
  return 'removed';
}

function removeGone(dir: string): void {
  removeTree(dir);
  if (fs.existsSync(dir)) {
    throw new HpccIOError('HPCC_E_CACHE_REMOVE', `cannot remove the extracted tree ${dir}`, {
      hint: 'Check its ownership and permissions; trees extracted by another user must be removed by that user.',
    });
  }
}
