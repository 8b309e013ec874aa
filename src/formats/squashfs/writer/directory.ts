/**
 * Directory listings (squashfs-format.md §6) and their index (§5 extended dir).
 *
 * A listing is runs of a 12-byte header + entries. A new run starts when the
 * current one has 256 entries, when the next inode lives in another inode
 * metadata block, when the inode-number delta would leave ±32767, or, as
 * mksquashfs does, when the next entry would end more than 8192 listing
 * bytes after the last index point; such a run gets an index entry (its
 * offset in the listing, the directory-table block its header starts in,
 * its first name). The kernel resumes at block `start`, offset
 * `(dir_offset + index) % 8192`, which holds because every metadata chunk
 * but the last is exactly 8192 bytes.
 */
import {
  DIR_ENTRY_SIZE,
  DIR_HEADER_SIZE,
  DIR_RUN_MAX,
  encodeDirEntry,
  encodeDirHeader,
  METADATA_SIZE,
  refBlock,
  refOffset,
  type DirIndexEntry,
} from '../layout.js';
import type { MetadataWriter } from './metadata.js';

export interface ListingEntry {
  name: Buffer; // raw bytes, entries sorted by compareNames order
  ref: number; // inode ref
  ino: number;
  type: number; // basic inode type 1..7
}

export interface Run {
  /** Offset of the header from the start of the listing. */
  at: number;
  inodeBlock: number;
  base: number;
  first: number;
  count: number;
  /** This run starts an index point. */
  indexed: boolean;
}

/** Cut sorted entries into runs. */
export function planRuns(entries: readonly ListingEntry[]): Run[] {
  const runs: Run[] = [];
  let cur: Run | null = null;
  let at = 0;
  let indexAt = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const iblk = refBlock(e.ref);
    const size = DIR_ENTRY_SIZE + e.name.length;
    const pastIndex = at + size - indexAt > METADATA_SIZE;
    if (cur === null || cur.count === DIR_RUN_MAX || iblk !== cur.inodeBlock || Math.abs(e.ino - cur.base) > 32767 || pastIndex) {
      const indexed: boolean = cur !== null && pastIndex;
      if (indexed) indexAt = at;
      cur = { at, inodeBlock: iblk, base: e.ino, first: i, count: 0, indexed };
      runs.push(cur);
      at += DIR_HEADER_SIZE;
    }
    cur.count++;
    at += size;
  }
  return runs;
}

export interface Listing {
  /** Ref (relative to directory_table_start) where the listing starts. */
  ref: number;
  /** Listing bytes (the inode's file_size is this + 3). */
  size: number;
  index: DirIndexEntry[];
}

/** Append a directory's listing to the directory table stream. */
export async function writeListing(dirs: MetadataWriter, entries: readonly ListingEntry[]): Promise<Listing> {
  const ref = dirs.ref();
  const startAt = dirs.total;
  const index: DirIndexEntry[] = [];
  for (const run of planRuns(entries)) {
    if (run.indexed) index.push({ index: run.at, start: refBlock(dirs.ref()), name: entries[run.first]!.name });
    const parts: Uint8Array[] = [encodeDirHeader({ count: run.count, start: run.inodeBlock, inodeNumber: run.base })];
    for (let i = run.first; i < run.first + run.count; i++) {
      const e = entries[i]!;
      parts.push(encodeDirEntry({ offset: refOffset(e.ref), inodeDelta: e.ino - run.base, type: e.type, name: e.name }));
    }
    await dirs.write(Buffer.concat(parts));
  }
  return { ref, size: dirs.total - startAt, index };
}
