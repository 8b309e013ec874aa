/**
 * Directory listings (spec §6): runs of a 12-byte header plus entries, read
 * until file_size − 3 bytes are consumed. Entries are validated (names,
 * types, inode numbers, refs) and kept sorted by raw bytes so lookups can
 * binary-search; parsed listings are cached (bounded LRU).
 */
import { SquashfsFormatError } from '../../../errors/index.js';
import {
  DIR_ENTRY_SIZE,
  DIR_HEADER_SIZE,
  type DirInode,
  InodeType,
  METADATA_SIZE,
  compareNames,
  decodeDirEntry,
  decodeDirHeader,
} from '../layout.js';
import { MetaCursor, type MetadataReader, type TableBounds } from './metadata.js';
import { Lru } from './source.js';

export interface RawDirent {
  name: Uint8Array;
  nameStr: string;
  type: InodeType; // basic type 1..7
  ref: number; // inode ref
  inodeNumber: number;
}

const utf8 = new TextDecoder('utf-8');

/** Entries kept in parsed form across all cached listings. */
const CACHE_ENTRIES = 256 * 1024;
/** Largest directory accepted (entries); far above real trees, bounds memory on hostile ones. */
export const MAX_DIR_ENTRIES = 4 * 1024 * 1024;

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

export class DirectoryReader {
  /** Parsed listings, bounded by their total number of entries (not by directories). */
  private readonly cache = new Lru<number, RawDirent[]>(CACHE_ENTRIES, (l) => l.length + 1);

  constructor(
    private readonly meta: MetadataReader,
    private readonly dirTable: TableBounds,
    private readonly inodeTableLength: number,
    private readonly inodeCount: number,
  ) {}

  /** The sorted entries of a directory inode (`ref` is its own ref, used as the cache key). */
  list(ref: number, dir: DirInode): RawDirent[] {
    const hit = this.cache.get(ref);
    if (hit) return hit;
    const out = this.parse(dir);
    this.cache.set(ref, out);
    return out;
  }

  private parse(dir: DirInode): RawDirent[] {
    const fail = (msg: string) =>
      new SquashfsFormatError('HPCC_E_SQFS_BAD_DIR', `directory inode ${dir.inodeNumber}: ${msg}`);
    if (dir.fileSize <= 3) return [];
    let remaining = dir.fileSize - 3;
    const cur = MetaCursor.at(this.meta, this.dirTable, dir.dirBlock, dir.dirOffset);
    const out: RawDirent[] = [];
    while (remaining > 0) {
      if (remaining < DIR_HEADER_SIZE) throw fail('listing ends inside a header');
      const h = decodeDirHeader(cur);
      remaining -= DIR_HEADER_SIZE;
      if (h.start >= this.inodeTableLength) throw fail(`header points at inode block ${h.start}, outside the inode table`);
      if (out.length + h.count > MAX_DIR_ENTRIES) throw fail(`more than ${MAX_DIR_ENTRIES} entries`);
      for (let i = 0; i < h.count; i++) {
        if (remaining < DIR_ENTRY_SIZE + 1) throw fail('listing ends inside an entry');
        const e = decodeDirEntry(cur);
        remaining -= DIR_ENTRY_SIZE + e.name.length;
        if (remaining < 0) throw fail('entry runs past the listing size');
        checkName(e.name);
        if (e.offset >= METADATA_SIZE) throw fail(`entry offset ${e.offset} is outside a metadata block`);
        const num = h.inodeNumber + e.inodeDelta;
        if (num < 1 || num > this.inodeCount) throw fail(`entry inode number ${num} is outside 1..${this.inodeCount}`);
        out.push({
          name: e.name,
          nameStr: utf8.decode(e.name),
          type: e.type,
          ref: h.start * 0x10000 + e.offset,
          inodeNumber: num,
        });
      }
    }
    // Stored sorted (§6); sort anyway (cheap when sorted) so lookups and walks are deterministic.
    out.sort((a, b) => compareNames(a.name, b.name));
    for (let i = 1; i < out.length; i++) {
      if (compareNames(out[i - 1]!.name, out[i]!.name) === 0) throw fail(`duplicate entry ${JSON.stringify(out[i]!.nameStr)}`);
    }
    return out;
  }

  /** Binary search a sorted listing for a name. */
  static find(list: RawDirent[], name: Uint8Array): RawDirent | undefined {
    let lo = 0;
    let hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = compareNames(list[mid]!.name, name);
      if (c === 0) return list[mid];
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  clear(): void {
    this.cache.clear();
  }
}
