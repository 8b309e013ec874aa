/**
 * Compare two directory trees entry by entry (lstat, never following
 * symlinks): type, mode with special bits, owners, mtime seconds, size,
 * content sha256, symlink target, device numbers, xattrs (through hpcc's
 * xattr addon) and hard-link groups. Returns human-readable differences;
 * an empty list means the trees match for the chosen checks.
 *
 * Files that one side cannot read (mode 0000 seen by an unprivileged user;
 * FUSE mounts without default_permissions do not enforce modes, so the
 * other side may well read them) are compared by metadata only.
 */
import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getXattrs } from '../../src/util/xattr.js';
import { runUnprivileged, TEST_USER } from './env.js';

export interface CompareOptions {
  owners?: boolean;
  mtimes?: boolean;
  xattrs?: boolean;
  /** Also compare hard-link groups (default true). */
  hardLinks?: boolean;
  /** Permission bits to compare (default 0o7777). */
  modeMask?: number;
  /** Compare link counts (default true). */
  nlink?: boolean;
  /** Compare file contents by sha256 (default true). */
  contents?: boolean;
  /** Relative paths to leave out (with everything below them). */
  ignore?: string[];
  /** compareTreesAsUser only: kill the child after this long (default 170 s). */
  timeoutMs?: number;
  /** Stop collecting after this many differences (default 200). */
  maxDiffs?: number;
}

interface Side {
  stats: Map<string, BigIntStats>;
  order: string[];
}

async function scan(root: string, ignore: Set<string>): Promise<Side> {
  const stats = new Map<string, BigIntStats>();
  const order: string[] = [];
  const walk = async (rel: string, st: BigIntStats): Promise<void> => {
    stats.set(rel, st);
    order.push(rel);
    if (!st.isDirectory()) return;
    const abs = rel === '' ? root : path.join(root, rel);
    const names = (await fsp.readdir(abs)).sort();
    const rels = names.map((n) => (rel === '' ? n : `${rel}/${n}`)).filter((r) => !ignore.has(r));
    const sts: BigIntStats[] = [];
    for (let i = 0; i < rels.length; i += 64) {
      sts.push(...(await Promise.all(rels.slice(i, i + 64).map((r) => fsp.lstat(path.join(root, r), { bigint: true })))));
    }
    for (let i = 0; i < rels.length; i++) await walk(rels[i]!, sts[i]!);
  };
  await walk('', await fsp.lstat(root, { bigint: true }));
  return { stats, order };
}

function typeOf(st: BigIntStats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  return 'unknown';
}

function floorSec(ns: bigint): bigint {
  const s = ns / 1_000_000_000n;
  return ns < 0n && s * 1_000_000_000n !== ns ? s - 1n : s;
}

function devNumbers(rdev: bigint): string {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n);
  return `${major}:${minor}`;
}

/** sha256 of a file, or null when it cannot be opened for reading (EACCES). */
async function hashFile(p: string, size: bigint): Promise<string | null> {
  if (size <= 1n << 20n) {
    try {
      return createHash('sha256').update(await fsp.readFile(p)).digest('hex');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') return null;
      throw e;
    }
  }
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(p, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EACCES') return null;
    throw e;
  }
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
    return h.digest('hex');
  } finally {
    await fh.close();
  }
}

async function mapLimit<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Map each multiply-linked non-directory path to the sorted list of its group. */
function linkGroups(side: Side): Map<string, string> {
  const byIno = new Map<string, string[]>();
  for (const p of side.order) {
    const st = side.stats.get(p)!;
    if (st.isDirectory()) continue;
    const key = `${st.dev}:${st.ino}`;
    const g = byIno.get(key);
    if (g) g.push(p);
    else byIno.set(key, [p]);
  }
  const out = new Map<string, string>();
  for (const g of byIno.values()) {
    const desc = g.length > 1 ? g.slice().sort().join(' | ') : '(single)';
    for (const p of g) out.set(p, desc);
  }
  return out;
}

function xattrDesc(m: Map<string, Uint8Array> | undefined): string {
  if (!m) return '{}';
  return [...m.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${Buffer.from(v).toString('hex')}`)
    .join(', ');
}

export async function compareTrees(a: string, b: string, opts: CompareOptions = {}): Promise<string[]> {
  const ignore = new Set(opts.ignore ?? []);
  const max = opts.maxDiffs ?? 200;
  const diffs: string[] = [];
  const add = (d: string) => {
    if (diffs.length < max) diffs.push(d);
  };
  const [A, B] = await Promise.all([scan(a, ignore), scan(b, ignore)]);
  for (const p of A.order) if (!B.stats.has(p)) add(`${p || '/'}: only in ${a}`);
  for (const p of B.order) if (!A.stats.has(p)) add(`${p || '/'}: only in ${b}`);
  const common = A.order.filter((p) => B.stats.has(p));
  const toHash: string[] = [];
  for (const p of common) {
    const sa = A.stats.get(p)!;
    const sb = B.stats.get(p)!;
    const name = p || '/';
    const ta = typeOf(sa);
    if (ta !== typeOf(sb)) {
      add(`${name}: type ${ta} vs ${typeOf(sb)}`);
      continue;
    }
    const mask = BigInt(opts.modeMask ?? 0o7777);
    const ma = sa.mode & mask;
    const mb = sb.mode & mask;
    // Symlink permission bits are meaningless (always 0777 on Linux).
    if (ta !== 'symlink' && ma !== mb) add(`${name}: mode ${ma.toString(8)} vs ${mb.toString(8)}`);
    if (opts.nlink !== false && sa.nlink !== sb.nlink) add(`${name}: nlink ${sa.nlink} vs ${sb.nlink}`);
    if (opts.owners && (sa.uid !== sb.uid || sa.gid !== sb.gid)) add(`${name}: owner ${sa.uid}:${sa.gid} vs ${sb.uid}:${sb.gid}`);
    if (opts.mtimes && floorSec(sa.mtimeNs) !== floorSec(sb.mtimeNs)) {
      add(`${name}: mtime ${floorSec(sa.mtimeNs)} vs ${floorSec(sb.mtimeNs)}`);
    }
    if (ta === 'file') {
      if (sa.size !== sb.size) add(`${name}: size ${sa.size} vs ${sb.size}`);
      else if (opts.contents !== false) toHash.push(p);
    } else if (ta === 'symlink') {
      const [la, lb] = await Promise.all([fsp.readlink(path.join(a, p), 'buffer'), fsp.readlink(path.join(b, p), 'buffer')]);
      if (!la.equals(lb)) add(`${name}: symlink target ${JSON.stringify(la.toString())} vs ${JSON.stringify(lb.toString())}`);
    } else if (ta === 'char' || ta === 'block') {
      if (devNumbers(sa.rdev) !== devNumbers(sb.rdev)) add(`${name}: device ${devNumbers(sa.rdev)} vs ${devNumbers(sb.rdev)}`);
    }
  }
  await mapLimit(toHash, 16, async (p) => {
    const size = A.stats.get(p)!.size;
    const [ha, hb] = await Promise.all([hashFile(path.join(a, p), size), hashFile(path.join(b, p), size)]);
    if (ha !== null && hb !== null && ha !== hb) add(`${p}: content ${ha} vs ${hb}`);
  });
  if (opts.hardLinks !== false) {
    const ga = linkGroups(A);
    const gb = linkGroups(B);
    for (const p of common) {
      if (ga.has(p) && gb.has(p) && ga.get(p) !== gb.get(p)) add(`${p}: hard links [${ga.get(p)}] vs [${gb.get(p)}]`);
    }
  }
  if (opts.xattrs) {
    const [xa, xb] = await Promise.all([
      getXattrs(common.map((p) => path.join(a, p))),
      getXattrs(common.map((p) => path.join(b, p))),
    ]);
    for (const p of common) {
      const da = xattrDesc(xa.get(path.join(a, p)));
      const db = xattrDesc(xb.get(path.join(b, p)));
      if (da !== db) add(`${p || '/'}: xattrs {${da.slice(0, 300)}} vs {${db.slice(0, 300)}}`);
    }
  }
  return diffs;
}

/** Does this path exist (lstat)? Small helper for tests. */
export function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * compareTrees in a child process run as the unprivileged test user (when
 * root) — needed for FUSE mounts, which only their owner can enter.
 */
export function compareTreesAsUser(a: string, b: string, opts: CompareOptions = {}): string[] {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const cli = path.join(path.dirname(here), fromSource ? 'tree-compare-cli.ts' : 'tree-compare-cli.js');
  const repoRoot = path.resolve(path.dirname(here), fromSource ? '../..' : '../../..');
  const args = [...(fromSource ? ['--import', 'tsx'] : []), cli, a, b, JSON.stringify(opts)];
  const r = runUnprivileged(process.execPath, args, { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 170_000 });
  if (r.status !== 0) throw new Error(`tree-compare as ${TEST_USER} failed (${r.status ?? r.signal}): ${String(r.stderr).slice(0, 2000)}`);
  return JSON.parse(String(r.stdout)) as string[];
}
