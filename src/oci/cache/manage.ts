/**
 * `hpcc cache list|clean`: the entries of the blob and SIF caches, of the
 * launcher's extraction cache (extract.ts) and of its launch memos
 * (src/runtime/memo.ts: launch/*.memo, mtime bumped by the native front on
 * each use), with size and last use (mtime,
 * bumped on every use), and their removal. An entry in use (its lock held by
 * a live process; an extraction mounted by a running container) is skipped,
 * never removed from under a pull or a launch; temp files and trees of dead
 * processes are removed by any clean. Warm mounts (mounts.ts) are listed
 * with their keeper's status; clean stops them.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { HpccError } from '../../errors/index.js';
import { extractDir, isMounted, listExtractions, removeExtraction } from './extract.js';
import { acquireLock, processStartTime } from './lock.js';
import { BlobCache } from './store.js';
import { MEMO_TEMP_STALE_MS } from '../../runtime/memo.js';
import { ensureCacheDir } from '../../util/cache-root.js';
import { listMounts, stopMount, type MountEntry } from './mounts.js';

export type CacheType = 'blob' | 'sif' | 'extract' | 'launch' | 'mounts' | 'all';
export const CACHE_TYPES: readonly CacheType[] = ['blob', 'sif', 'extract', 'launch', 'mounts', 'all'];

export type CacheEntry = FileEntry | MountEntry;

export interface FileEntry {
  /** 'temp': a download, conversion or extraction left by a dead process */
  type: 'blob' | 'sif' | 'extract' | 'launch' | 'temp';
  /** digest for blobs, file name for SIFs and launch memos, key (directory name) for extractions */
  name: string;
  path: string;
  size: number;
  lastUsed: string; // ISO time
}

async function entriesIn(dir: string, type: 'blob' | 'sif' | 'launch'): Promise<FileEntry[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const out: FileEntry[] = [];
  for (const n of names.sort()) {
    const p = path.join(dir, n);
    const st = await fsp.lstat(p).catch(() => null);
    if (!st?.isFile()) continue;
    // a memo's staging file (memo.ts MEMO_TEMP_RE; `.memo.<pid>.tmp` from older versions)
    const memoTemp = type === 'launch' ? /\.memo\.(\d+)(?:-[a-f0-9]+)?\.tmp$/.exec(n) : null;
    if (n.startsWith('.tmp-') || memoTemp) {
      const pid = Number(memoTemp ? memoTemp[1] : /-(\d+)-[a-f0-9]+$/.exec(n)?.[1]);
      const stale = memoTemp !== null && Date.now() - st.mtimeMs > MEMO_TEMP_STALE_MS;
      if ((Number.isFinite(pid) && processStartTime(pid) === null) || stale) {
        out.push({ type: 'temp', name: n, path: p, size: st.size, lastUsed: st.mtime.toISOString() });
      }
      continue;
    }
    if (type === 'blob' && !/^[a-f0-9]{64}$/.test(n)) continue;
    if (type === 'sif' && !n.endsWith('.sif')) continue;
    if (type === 'launch' && !/^[a-f0-9]{16}\.memo$/.test(n)) continue;
    out.push({ type, name: type === 'blob' ? `sha256:${n}` : n, path: p, size: st.size, lastUsed: st.mtime.toISOString() });
  }
  return out;
}

/** Cached entries of the chosen type (temps of dead processes included as type 'temp'). */
export async function listCache(cache: BlobCache, type: CacheType = 'all'): Promise<CacheEntry[]> {
  const out: CacheEntry[] = [];
  if (type === 'blob' || type === 'all') out.push(...(await entriesIn(cache.blobDir, 'blob')));
  if (type === 'sif' || type === 'all') out.push(...(await entriesIn(cache.sifDir, 'sif')));
  if (type === 'extract' || type === 'all') out.push(...listExtractions(cache.root));
  if (type === 'launch' || type === 'all') out.push(...(await entriesIn(path.join(cache.root, 'launch'), 'launch')));
  if (type === 'mounts' || type === 'all') out.push(...(await listMounts()));
  return out;
}

export interface CleanOptions {
  type?: CacheType;
  /** only entries not used for at least this many days */
  days?: number;
  dryRun?: boolean;
  now?: number;
}

export interface CleanResult {
  removed: CacheEntry[];
  /** entries in use by a running pull */
  busy: CacheEntry[];
  bytes: number;
  dryRun: boolean;
}

export async function cleanCache(cache: BlobCache, o: CleanOptions = {}): Promise<CleanResult> {
  const now = o.now ?? Date.now();
  const cutoff = o.days !== undefined ? now - o.days * 86_400_000 : Infinity;
  const res: CleanResult = { removed: [], busy: [], bytes: 0, dryRun: o.dryRun ?? false };
  for (const e of await listCache(cache, o.type ?? 'all')) {
    if (e.type !== 'temp' && Date.parse(e.lastUsed) > cutoff) continue;
    if (e.type === 'mount') {
      // a keeper is stopped, not removed: it takes no new launch and ends when its running ones have
      if (res.dryRun || (await stopMount(e)) !== 'busy') res.removed.push(e);
      else res.busy.push(e);
      continue;
    }
    const extractionTemp = e.type === 'temp' && path.dirname(e.path) === extractDir(cache.root);
    if ((e.type === 'extract' || extractionTemp) && res.dryRun && isMounted(e.path)) {
      res.busy.push(e);
      continue;
    }
    if (res.dryRun) {
      res.removed.push(e);
      res.bytes += e.size;
      continue;
    }
    if (e.type === 'extract' || extractionTemp) {
      if (removeExtraction(e) === 'busy') res.busy.push(e);
      else {
        res.removed.push(e);
        res.bytes += e.size;
      }
      continue;
    }
    if (e.type === 'temp' || e.type === 'launch') {
      // a memo is read whole by the front: removing it under a launch is harmless
      await fsp.rm(e.path, { force: true });
      res.removed.push(e);
      res.bytes += e.size;
      continue;
    }
    const key = e.type === 'blob' ? e.name.slice(7) : path.basename(e.name, '.sif');
    let lock;
    try {
      ensureCacheDir(cache.root, 'locks');
      lock = await acquireLock(cache.lockPath(e.type, key), { timeoutMs: 0 });
    } catch (err) {
      if (err instanceof HpccError && err.code === 'HPCC_E_CACHE_LOCK_TIMEOUT') {
        res.busy.push(e);
        continue;
      }
      throw err;
    }
    try {
      await fsp.rm(e.path, { force: true });
      res.removed.push(e);
      res.bytes += e.size;
    } finally {
      await lock?.release();
    }
  }
  return res;
}
