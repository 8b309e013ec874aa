/**
 * A directory listing read front to back, one entry at a time, and
 * resumable: the entries read so far stay (in listing order, which must be
 * strictly increasing), so later look-ups in the same directory continue
 * where the last one stopped instead of starting over. Names are compared
 * as raw bytes and decoded only for the entry returned. Used by
 * DirectoryReader.lookup (directory.ts), from the listing's start or from an
 * index point; anything unexpected (a listing out of order, bytes that do
 * not decode, an index point whose header does not start with the index
 * name) makes advance() answer FALLBACK: the caller then parses the whole
 * listing, which reports real damage.
 */
import { HpccError, SquashfsFormatError } from '../../../errors/index.js';
import { DIR_ENTRY_SIZE, DIR_HEADER_SIZE, METADATA_SIZE, compareNames, decodeDirEntry, decodeDirHeader } from '../layout.js';
import type { MetaCursor } from './metadata.js';

export const FALLBACK = Symbol('fallback');

const utf8 = new TextDecoder('utf-8');

/** Reject names that could not be a single path component (§6: no '/', no NUL, never '.' or '..'). */
export function checkName(name: Uint8Array): void {
  const bad =
    name.length === 0 ||
    name.includes(0x2f) ||
    name.includes(0) ||
    (name.length === 1 && name[0] === 0x2e) ||
    (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e);
  if (bad) {
    throw new SquashfsFormatError('HPCC_E_SQFS_BAD_NAME', `directory entry name ${JSON.stringify(utf8.decode(name))} is not allowed`);
  }
}


export interface ScannedEntry {
  name: Uint8Array;
  type: number;
  ref: number;
  inodeNumber: number;
}

export interface ScanLimits {
  /** inode table length: header inode blocks must lie before it */
  inodeTableLength: number;
  inodeCount: number;
}

export class ListingScan {
  /** entries read so far, strictly increasing */
  readonly seen: ScannedEntry[] = [];
  private runLeft = 0;
  private runStart = 0;
  private runInode = 0;
  private failed = false;
  /** the listing's size in bytes (the scan cache's weight) */
  readonly weight: number;

  /** `first`: the name the first entry must have (an index point's name), or null at the listing start. */
  constructor(
    private readonly cur: MetaCursor,
    private remaining: number,
    private readonly first: Uint8Array | null,
    private readonly limits: ScanLimits,
  ) {
    this.weight = remaining;
  }

  get done(): boolean {
    return this.remaining <= 0 && this.runLeft === 0;
  }

  /** Read until an entry not before `name` has been read, or the listing ends. */
  advance(name: Uint8Array): typeof FALLBACK | void {
    if (this.failed) return FALLBACK;
    try {
      const r = this.read(name);
      if (r === FALLBACK) this.failed = true;
      return r;
    } catch (e) {
      if (e instanceof HpccError) {
        this.failed = true;
        return FALLBACK;
      }
      throw e;
    }
  }

  private read(name: Uint8Array): typeof FALLBACK | void {
    const seen = this.seen;
    while (seen.length === 0 || compareNames(seen[seen.length - 1]!.name, name) < 0) {
      if (this.runLeft === 0) {
        if (this.remaining <= 0) return;
        if (this.remaining < DIR_HEADER_SIZE) return FALLBACK;
        const h = decodeDirHeader(this.cur);
        this.remaining -= DIR_HEADER_SIZE;
        if (h.start >= this.limits.inodeTableLength) return FALLBACK;
        this.runLeft = h.count;
        this.runStart = h.start;
        this.runInode = h.inodeNumber;
      }
      if (this.remaining < DIR_ENTRY_SIZE + 1) return FALLBACK;
      const e = decodeDirEntry(this.cur);
      this.runLeft--;
      this.remaining -= DIR_ENTRY_SIZE + e.name.length;
      if (this.remaining < 0) return FALLBACK;
      checkName(e.name);
      const num = this.runInode + e.inodeDelta;
      if (e.offset >= METADATA_SIZE || num < 1 || num > this.limits.inodeCount) return FALLBACK;
      const prev = seen.length > 0 ? seen[seen.length - 1]!.name : null;
      if (prev === null && this.first !== null && compareNames(e.name, this.first) !== 0) return FALLBACK; // the index points elsewhere
      if (prev !== null && compareNames(prev, e.name) >= 0) return FALLBACK; // out of order: only the full listing is sure
      seen.push({ name: e.name, type: e.type, ref: this.runStart * 0x10000 + e.offset, inodeNumber: num });
    }
  }

  /** The entry called `name` among those read (call advance(name) first). */
  find(name: Uint8Array): ScannedEntry | undefined {
    return findByName(this.seen, name);
  }
}

/** Binary search of entries sorted by name (compareNames order). */
export function findByName<T extends { name: Uint8Array }>(sorted: readonly T[], name: Uint8Array): T | undefined {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = compareNames(sorted[mid]!.name, name);
    if (c === 0) return sorted[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}
