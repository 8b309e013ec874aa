/**
 * Directory listings (spec §6): runs of a 12-byte header plus entries, read
 * until file_size − 3 bytes are consumed. Entries are validated (names,
 * types, inode numbers, refs) and kept sorted by raw bytes so lookups can
 * binary-search; parsed listings are cached (bounded LRU).
 *
 * One name in a directory not listed yet is looked up through the extended
 * directory inode's index (§5) when it has one: the last index entry whose
 * name is not after the wanted one says where to start, and the scan stops
 * at the first larger name, so a large directory costs one metadata block or
 * two instead of the whole listing. Without an index (listings under 8 KiB,
 * such as a Debian /usr/bin) the scan starts at the listing's start and is
 * kept, so the next look-up in that directory resumes where it stopped; no
 * names are decoded and nothing is sorted (dir-scan.ts). An index that does not
 * fit the listing (offsets outside it or not increasing, names unsorted or
 * not matching the header they point at) or a listing read that fails falls
 * back to the full listing, which reports any real damage.
 */
import { HpccError, SquashfsFormatError } from '../../../errors/index.js';

export { checkName } from './dir-scan.js';
import {
  type DirIndexEntry,
  DIR_ENTRY_SIZE,
  DIR_HEADER_SIZE,
  type DirInode,
  InodeType,
  METADATA_SIZE,
  compareNames,
  decodeDirEntry,
  decodeDirHeader,
} from '../layout.js';
import { FALLBACK, ListingScan, checkName, findByName } from './dir-scan.js';
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
/** Listings of directories without an index being scanned, bounded by their listing bytes. */
const SCAN_BYTES = 4 * 1024 * 1024;

/** Entries kept in parsed form across all cached listings. */
const CACHE_ENTRIES = 256 * 1024;
/** Largest directory accepted (entries); far above real trees, bounds memory on hostile ones. */
export const MAX_DIR_ENTRIES = 4 * 1024 * 1024;

export class DirectoryReader {
  /** Parsed listings, bounded by their total number of entries (not by directories). */
  private readonly cache = new Lru<number, RawDirent[]>(CACHE_ENTRIES, (l) => l.length + 1);

  /** Look-up scans kept per directory ref (see dir-scan.ts). */
  private readonly scans = new Lru<number, ListingScan>(SCAN_BYTES, (x) => x.weight);

  constructor(
    private readonly meta: MetadataReader,
    private readonly dirTable: TableBounds,
    readonly inodeTableLength: number,
    readonly inodeCount: number,
  ) {}

  /**
   * @internal How the last lookup() was answered (tests): a cached listing,
   * the index, a scan from the listing's start, or the full listing.
   */
  lastLookup: 'cache' | 'index' | 'scan' | 'list' = 'list';

  /** The entry called `name` in a directory inode, or undefined (`ref` is the directory's own ref). */
  lookup(ref: number, dir: DirInode, name: Uint8Array): RawDirent | undefined {
    const hit = this.cache.get(ref);
    if (hit) {
      this.lastLookup = 'cache';
      return DirectoryReader.find(hit, name);
    }
    if (dir.fileSize > 3 && this.indexFits(dir)) {
      const scan = dir.index.length > 0 ? this.fromIndex(dir, name) : this.fromStart(ref, dir);
      if (scan !== FALLBACK && scan.advance(name) !== FALLBACK) {
        this.lastLookup = dir.index.length > 0 ? 'index' : 'scan';
        const e = scan.find(name);
        return e && { ...e, nameStr: utf8.decode(e.name), type: e.type as InodeType };
      }
      this.scans.delete(ref);
    }
    this.lastLookup = 'list';
    return DirectoryReader.find(this.list(ref, dir), name);
  }

  /** The index is usable: offsets inside the listing and increasing, names valid and increasing. */
  private indexFits(dir: DirInode): boolean {
    const size = dir.fileSize - 3;
    let prev: DirIndexEntry | null = null;
    for (const e of dir.index) {
      if (e.index >= size || e.name.length === 0 || e.name.length > 256) return false;
      if (prev && (e.index <= prev.index || compareNames(prev.name, e.name) >= 0)) return false;
      prev = e;
    }
    return true;
  }

  /** The scan of a directory without an index, kept between look-ups (resumed where the last stopped). */
  private fromStart(ref: number, dir: DirInode): ListingScan | typeof FALLBACK {
    let scan = this.scans.get(ref);
    if (!scan) {
      try {
        scan = new ListingScan(MetaCursor.at(this.meta, this.dirTable, dir.dirBlock, dir.dirOffset), dir.fileSize - 3, null, this);
      } catch (e) {
        if (e instanceof HpccError) return FALLBACK;
        throw e;
      }
      this.scans.set(ref, scan);
    }
    return scan;
  }

  /** A scan from the last index point whose name is not after `name` (the listing start when none is). */
  private fromIndex(dir: DirInode, name: Uint8Array): ListingScan | typeof FALLBACK {
    let lo = 0;
    let hi = dir.index.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (compareNames(dir.index[mid]!.name, name) <= 0) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const point = at >= 0 ? dir.index[at]! : null;
    try {
      // §5: the header sits at block `start`, offset (dir_offset + index) % 8192
      const cur = point
        ? MetaCursor.at(this.meta, this.dirTable, point.start, (dir.dirOffset + point.index) % METADATA_SIZE)
        : MetaCursor.at(this.meta, this.dirTable, dir.dirBlock, dir.dirOffset);
      return new ListingScan(cur, dir.fileSize - 3 - (point?.index ?? 0), point?.name ?? null, this);
    } catch (e) {
      if (e instanceof HpccError) return FALLBACK;
      throw e;
    }
  }

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
    return findByName(list, name);
  }

  clear(): void {
    this.cache.clear();
    this.scans.clear();
  }
}
