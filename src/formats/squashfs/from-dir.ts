/**
 * Feed a directory tree on disk into a squashfs writer: a depth-first walk
 * in byte-sorted name order (same input → same calls in the same order),
 * lstat only (symlinks are stored, never followed), with ownership, mode
 * (including setuid/setgid/sticky), mtime in seconds, xattrs (batched
 * through the native helper), hard links (same st_dev + st_ino → one inode),
 * devices, fifos, sockets and symlinks. Metadata and small files are read
 * with synchronous calls (cheapest for the main thread, which feeds the
 * compression threads); large files stream in bounded 1 MiB reads
 * (from-dir-read.ts), so memory stays bounded.
 *
 * Limitation: names and symlink targets that are not valid UTF-8 cannot be
 * represented by the writer's string API; they are refused (or skipped with
 * a warning under skipUnreadable).
 */
import type { BigIntStats } from 'node:fs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HpccError, HpccIOError, addContext, ioHint } from '../../errors/index.js';
import { getXattrs } from '../../util/xattr.js';
import { FileReader, type PreparedFile } from './from-dir-read.js';

/** Metadata for one entry, as the squashfs writer takes it. */
export interface TreeEntryMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  xattrs?: ReadonlyMap<string, Uint8Array>;
}

/** The part of SquashfsWriter that addDirectoryTree drives (structural). */
export interface TreeSink {
  addDirectory(path: string, meta: TreeEntryMeta): unknown;
  addFile(path: string, meta: TreeEntryMeta, data: AsyncIterable<Uint8Array> | Uint8Array): Promise<unknown>;
  addSymlink(path: string, target: string, meta: TreeEntryMeta): unknown;
  addHardLink(path: string, existingPath: string): unknown;
  addDevice(path: string, kind: 'char' | 'block', major: number, minor: number, meta: TreeEntryMeta): unknown;
  addFifo(path: string, meta: TreeEntryMeta): unknown;
  addSocket(path: string, meta: TreeEntryMeta): unknown;
}

export interface AddTreeOptions {
  /** Store extended attributes (default true). system.* names are never stored. */
  xattrs?: boolean;
  /** Non-fatal problems: skipped xattrs, skipped entries, files that changed while read. */
  onWarning?: (message: string) => void;
  /** Skip unreadable files/directories and non-UTF-8 names with a warning instead of failing. */
  skipUnreadable?: boolean;
  /**
   * Accepted for symmetry with the writer: the walk is always in sorted
   * order and the writer calls never depend on timing, so the same tree
   * always gives the same sequence of calls.
   */
  deterministic?: boolean;
  /** Store this mtime (seconds) on every entry instead of the files' own. */
  mtime?: number;
  /** Where the tree lands in the image ('' = the image root, default). */
  prefix?: string;
  /** Read chunk size; use the image's block size (default 131072). */
  blockSize?: number;
  /** Read-ahead limits (default 64 files, 16 MiB). */
  readAheadFiles?: number;
  readAheadBytes?: number;
}

export interface AddTreeResult {
  /** Entries added (directories, files, links, ... — the root included). */
  entries: number;
  /** Bytes of regular-file data read. */
  bytes: number;
}

/** One walked entry: path inside the tree ('' = root) and its lstat. */
export interface WalkEntry {
  rel: string;
  abs: string;
  st: BigIntStats;
}

const XATTR_BATCH = 4096;
const S_IFMT = 0o170000n;

function ioError(what: string, p: string, e: unknown): HpccIOError {
  const code = (e as { code?: unknown })?.code;
  const errno = typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : 'EIO';
  return new HpccIOError(`HPCC_E_IO_${errno}`, `${what} ${p}: ${(e as Error)?.message ?? String(e)}`, {
    cause: e,
    hint: ioHint(errno) ?? 'Check that the file is readable, or pass the option to skip unreadable files.',
    details: { path: p },
  });
}

/** Glibc's 64-bit dev_t split (gnu_dev_major/gnu_dev_minor). */
export function splitRdev(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n);
  return { major: Number(major), minor: Number(minor) };
}

function isUtf8RoundTrip(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    if (b[i]! >= 0x80) return Buffer.from(b.toString('utf8'), 'utf8').equals(b); // ASCII needs no check
  }
  return true;
}

/**
 * Depth-first pre-order walk, children in byte order of their UTF-8 names.
 * Memory: the sorted child lists of the directories on the current path.
 *
 * Metadata calls (stat, readdir, lstat) are synchronous: each is a few
 * microseconds from the dentry/inode cache, where a promise round trip
 * through the threadpool costs ~8x more main-thread CPU (and the main thread
 * is what the writer waits on; compression runs on the threadpool).
 */
export async function* walkTree(
  root: string,
  opts: Pick<AddTreeOptions, 'skipUnreadable' | 'onWarning'> = {},
): AsyncGenerator<WalkEntry> {
  const warn = opts.onWarning ?? (() => undefined);
  let rootSt: BigIntStats;
  try {
    // The root itself may be given through a symlink (like mksquashfs); nothing below it is followed.
    rootSt = fs.statSync(root, { bigint: true });
  } catch (e) {
    throw ioError('read source directory', root, e);
  }
  if (!rootSt.isDirectory()) throw ioError('read source directory', root, Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }));
  yield { rel: '', abs: root, st: rootSt };
  const stack: Array<{ items: WalkEntry[]; i: number }> = [];
  const enter = (rel: string, abs: string): void => {
    let names: Buffer[];
    try {
      names = fs.readdirSync(abs, { encoding: 'buffer' });
    } catch (e) {
      if (!opts.skipUnreadable) throw ioError('read directory', abs, e);
      warn(`skipped the contents of unreadable directory ${abs}: ${(e as Error).message}`);
      return;
    }
    names.sort(Buffer.compare);
    const good: string[] = [];
    for (const n of names) {
      if (isUtf8RoundTrip(n)) good.push(n.toString('utf8'));
      else if (opts.skipUnreadable) warn(`skipped ${abs}/${n.toString('latin1')}: name is not valid UTF-8`);
      else {
        throw new HpccIOError('HPCC_E_NON_UTF8_NAME', `${path.join(abs, n.toString('latin1'))}: name is not valid UTF-8`, {
          hint: 'Rename the file to a UTF-8 name, or skip such entries.',
          details: { path: abs },
        });
      }
    }
    const items: WalkEntry[] = [];
    for (const n of good) {
      const p = path.join(abs, n);
      let st: BigIntStats;
      try {
        st = fs.lstatSync(p, { bigint: true });
      } catch (e) {
        if (!opts.skipUnreadable) throw ioError('stat', p, e);
        warn(`skipped ${p}: ${(e as Error).message}`);
        continue;
      }
      items.push({ rel: rel === '' ? n : `${rel}/${n}`, abs: p, st });
    }
    stack.push({ items, i: 0 });
  };
  enter('', root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.i >= top.items.length) {
      stack.pop();
      continue;
    }
    const e = top.items[top.i++]!;
    yield e;
    if (e.st.isDirectory()) enter(e.rel, e.abs);
  }
}

/** Groups walked entries and fetches their xattrs one batch ahead. */
async function* withXattrs(
  entries: AsyncIterable<WalkEntry>,
  enabled: boolean,
  warn: (m: string) => void,
): AsyncGenerator<WalkEntry & { xattrs?: Map<string, Uint8Array> }> {
  const it = entries[Symbol.asyncIterator]();
  const nextBatch = async () => {
    const batch: WalkEntry[] = [];
    while (batch.length < XATTR_BATCH) {
      const r = await it.next();
      if (r.done) break;
      batch.push(r.value);
    }
    const attrs = enabled && batch.length > 0 ? await getXattrs(batch.map((b) => b.abs)) : new Map<string, Map<string, Uint8Array>>();
    return { batch, attrs };
  };
  let pending = nextBatch();
  for (;;) {
    const { batch, attrs } = await pending;
    if (batch.length === 0) return;
    pending = nextBatch();
    pending.catch(() => undefined); // surfaced when awaited
    for (const e of batch) {
      const a = attrs.get(e.abs);
      if (a) {
        for (const name of [...a.keys()]) {
          if (name.startsWith('system.')) {
            warn(`${e.abs}: extended attribute ${name} is not stored (squashfs has no system.* namespace)`);
            a.delete(name);
          }
        }
      }
      yield a && a.size > 0 ? { ...e, xattrs: a } : e;
    }
  }
}

function floorSeconds(ns: bigint): number {
  const s = ns / 1_000_000_000n;
  return Number(ns < 0n && s * 1_000_000_000n !== ns ? s - 1n : s);
}

/**
 * Add every entry under `rootDir` to `writer`; the root directory's own
 * metadata becomes the image root's (or `prefix`'s).
 */
export async function addDirectoryTree(writer: TreeSink, rootDir: string, opts: AddTreeOptions = {}): Promise<AddTreeResult> {
  const warn = opts.onWarning ?? (() => undefined);
  const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const reader = new FileReader({
    blockSize: opts.blockSize ?? 131072,
    maxFiles: opts.readAheadFiles ?? 64,
    maxBytes: opts.readAheadBytes ?? 16 * 1024 * 1024,
    skipUnreadable: opts.skipUnreadable ?? false,
    warn,
  });
  const links = new Map<string, string | null>(); // "dev:ino" → first image path (null: skipped)
  const seen = new Set<string>(); // "dev:ino" of multiply-linked files already in the window
  let entries = 0;
  const walked = withXattrs(walkTree(rootDir, opts), opts.xattrs ?? true, warn);
  // A window of upcoming entries so files ahead can be read while the writer compresses.
  const window: Array<{ e: WalkEntry & { xattrs?: Map<string, Uint8Array> }; file?: PreparedFile }> = [];
  const it = walked[Symbol.asyncIterator]();
  let done = false;
  const fill = async () => {
    while (!done && window.length < reader.maxFiles) {
      const r = await it.next();
      if (r.done) {
        done = true;
        break;
      }
      const e = r.value;
      let twin = false;
      if (e.st.isFile() && e.st.nlink > 1n) {
        const key = `${e.st.dev}:${e.st.ino}`;
        twin = seen.has(key);
        seen.add(key);
      }
      window.push({ e, ...(e.st.isFile() && !twin ? { file: reader.prepare(e.abs, Number(e.st.size)) } : {}) });
    }
  };
  try {
    for (;;) {
      await fill();
      const next = window.shift();
      if (next === undefined) break;
      const { e, file } = next;
      const rel = prefix === '' ? e.rel : e.rel === '' ? prefix : `${prefix}/${e.rel}`;
      const meta: TreeEntryMeta = {
        mode: Number(e.st.mode & 0o7777n),
        uid: Number(e.st.uid),
        gid: Number(e.st.gid),
        mtime: opts.mtime ?? floorSeconds(e.st.mtimeNs),
        ...(e.xattrs ? { xattrs: e.xattrs } : {}),
      };
      const key = `${e.st.dev}:${e.st.ino}`;
      if (!e.st.isDirectory() && e.st.nlink > 1n && links.has(key)) {
        file?.cancel();
        const first = links.get(key);
        if (first === null || first === undefined) continue; // its first link was skipped
        await writer.addHardLink(rel, first);
        entries++;
        continue;
      }
      let added: boolean;
      try {
        added = await addOne(writer, e, rel, meta, file, warn, opts.skipUnreadable ?? false);
      } catch (err) {
        // Name the source path unless the error already does (read failures).
        throw err instanceof HpccError && err.details?.path !== undefined ? err : addContext(`add ${e.abs}`, err);
      }
      if (!e.st.isDirectory() && e.st.nlink > 1n) links.set(key, added ? rel : null);
      if (added) entries++;
    }
  } catch (err) {
    for (const w of window) w.file?.cancel();
    await it.return?.(undefined).catch(() => undefined);
    throw err;
  } finally {
    reader.closeAll();
  }
  return { entries, bytes: reader.bytesRead };
}

async function addOne(
  writer: TreeSink,
  e: WalkEntry,
  rel: string,
  meta: TreeEntryMeta,
  file: PreparedFile | undefined,
  warn: (m: string) => void,
  skipUnreadable: boolean,
): Promise<boolean> {
  const type = e.st.mode & S_IFMT;
  if (e.st.isDirectory()) {
    await writer.addDirectory(rel, meta);
  } else if (e.st.isFile()) {
    const data = await file!.open();
    if (data === null) return false; // unreadable, skipped with a warning
    await writer.addFile(rel, meta, data);
  } else if (e.st.isSymbolicLink()) {
    let target: Buffer;
    try {
      target = fs.readlinkSync(e.abs, { encoding: 'buffer' });
    } catch (err) {
      if (!skipUnreadable) throw ioError('read symlink', e.abs, err);
      warn(`skipped symlink ${e.abs}: ${(err as Error).message}`);
      return false;
    }
    if (!isUtf8RoundTrip(target)) {
      if (!skipUnreadable) {
        throw new HpccIOError('HPCC_E_NON_UTF8_NAME', `symlink ${e.abs} has a target that is not valid UTF-8`, {
          hint: 'Point the link at a UTF-8 path, or skip such entries.',
          details: { path: e.abs },
        });
      }
      warn(`skipped symlink ${e.abs}: target is not valid UTF-8`);
      return false;
    }
    await writer.addSymlink(rel, target.toString('utf8'), meta);
  } else if (e.st.isCharacterDevice() || e.st.isBlockDevice()) {
    const { major, minor } = splitRdev(e.st.rdev);
    await writer.addDevice(rel, e.st.isCharacterDevice() ? 'char' : 'block', major, minor, meta);
  } else if (e.st.isFIFO()) {
    await writer.addFifo(rel, meta);
  } else if (e.st.isSocket()) {
    await writer.addSocket(rel, meta);
  } else {
    warn(`skipped ${e.abs}: unknown file type 0o${type.toString(8)}`);
    return false;
  }
  return true;
}
