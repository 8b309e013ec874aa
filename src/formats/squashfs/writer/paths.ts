/**
 * Path and metadata validation for the squashfs writer.
 *
 * Paths are '/'-separated, relative or absolute; '' and '/' name the root.
 * Empty and '.' components are dropped; '..', NUL, malformed UTF-16 and
 * names over 256 bytes are refused (squashfs-format.md §6: names are
 * 1..256 bytes, no '/' or NUL; '.' and '..' are never stored).
 */
import { SquashfsWriteError } from '../../../errors/index.js';
import { MAX_NAME, MAX_SYMLINK } from '../layout.js';

/** Throw a SquashfsWriteError with a stable code. */
export function writeError(code: string, message: string, hint?: string): SquashfsWriteError {
  return new SquashfsWriteError(code, message, hint === undefined ? {} : { hint });
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Split a path into validated components (empty array = root). */
export function splitPath(path: string): string[] {
  if (typeof path !== 'string') throw writeError('HPCC_E_SQFS_BAD_PATH', `path must be a string`);
  if (path.includes('\0')) throw writeError('HPCC_E_SQFS_BAD_PATH', `path ${JSON.stringify(path)} contains NUL`);
  if (LONE_SURROGATE.test(path)) {
    throw writeError('HPCC_E_SQFS_BAD_PATH', `path ${JSON.stringify(path)} is not valid Unicode (lone surrogate)`);
  }
  const out: string[] = [];
  for (const c of path.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      throw writeError('HPCC_E_SQFS_BAD_PATH', `path ${JSON.stringify(path)} has a '..' component`, 'Give paths inside the image, without "..".');
    }
    if (Buffer.byteLength(c, 'utf8') > MAX_NAME) {
      throw writeError('HPCC_E_SQFS_NAME_TOO_LONG', `name ${JSON.stringify(c.slice(0, 40))}… is longer than ${MAX_NAME} bytes`, 'squashfs stores names of at most 256 bytes.');
    }
    out.push(c);
  }
  return out;
}

/** Encode and check a symlink target (1..4096 bytes, no NUL; §5 symlink). */
export function symlinkTarget(target: string): Uint8Array {
  if (typeof target !== 'string' || target.length === 0) {
    throw writeError('HPCC_E_SQFS_BAD_SYMLINK', `symlink target must be a non-empty string`);
  }
  if (target.includes('\0')) throw writeError('HPCC_E_SQFS_BAD_SYMLINK', `symlink target contains NUL`);
  const bytes = Buffer.from(target, 'utf8');
  if (bytes.length > MAX_SYMLINK) {
    throw writeError('HPCC_E_SQFS_SYMLINK_TOO_LONG', `symlink target of ${bytes.length} bytes (max ${MAX_SYMLINK})`, 'The kernel refuses symlink targets longer than 4096 bytes.');
  }
  return bytes;
}

/** Inode metadata as stored (after validation). */
export interface StoredMeta {
  mode: number; // & 0o7777
  uid: number;
  gid: number;
  mtime: number; // u32 seconds
}

function u32(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw writeError('HPCC_E_SQFS_BAD_META', `${what} must be an integer 0..4294967295, got ${String(v)}`);
  }
  return v;
}

/** Validate EntryMeta fields; mtime is clamped into u32 seconds (squashfs has no earlier/later times). */
export function storedMeta(meta: { mode: number; uid: number; gid: number; mtime: number }): StoredMeta {
  if (meta === null || typeof meta !== 'object') throw writeError('HPCC_E_SQFS_BAD_META', 'entry metadata is missing');
  if (typeof meta.mode !== 'number' || !Number.isInteger(meta.mode) || meta.mode < 0) {
    throw writeError('HPCC_E_SQFS_BAD_META', `mode must be a non-negative integer, got ${String(meta.mode)}`);
  }
  if (typeof meta.mtime !== 'number' || Number.isNaN(meta.mtime)) {
    throw writeError('HPCC_E_SQFS_BAD_META', `mtime must be a number of seconds, got ${String(meta.mtime)}`);
  }
  const mtime = Math.min(0xffffffff, Math.max(0, Math.floor(meta.mtime)));
  const mode = meta.mode & 0o7777;
  const uid = u32(meta.uid, 'uid');
  const gid = u32(meta.gid, 'gid');
  // Consecutive entries usually share their metadata (same package, same owner): reuse the object.
  const l = last;
  if (l !== null && l.mode === mode && l.uid === uid && l.gid === gid && l.mtime === mtime) return l;
  last = Object.freeze({ mode, uid, gid, mtime });
  return last;
}

let last: StoredMeta | null = null;
