/**
 * Directory listings (squashfs-format.md §6) and their index (§5 extended dir).
 *
 * A listing is runs of a 12-byte header + entries. A new run starts when the
 * current one has 256 entries, when the next inode lives in another inode
 * metadata block, when the inode-number delta would leave ±32767, or when
 * the listing has crossed into another directory metadata block (as
 * mksquashfs does, so the index can point at it). Each run that starts in a
 * new directory block (after the first) gets an index entry; the kernel then
 * resumes at block `start`, offset `(dir_offset + index) % 8192`, which
 * holds because every metadata chunk but the last is exactly 8192 bytes.
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
  /** Uncompressed stream position of the header. */
  at: number;
  inodeBlock: number;
  base: number;
  first: number;
  count: number;
}

/** Cut sorted entries into runs, given the stream position where the listing starts. */
export function planRuns(entries: readonly ListingEntry[], startAt: number): Run[] {
  const runs: Run[] = [];
  let cur: Run | null = null;
  let at = startAt;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const iblk = refBlock(e.ref);
    if (
      cur === null ||
      cur.count === DIR_RUN_MAX ||
      iblk !== cur.inodeBlock ||
      Math.abs(e.ino - cur.base) > 32767 ||
      Math.floor(at / METADATA_SIZE) !== Math.floor(cur.at / METADATA_SIZE)
    ) {
      cur = { at, inodeBlock: iblk, base: e.ino, first: i, count: 0 };
      runs.push(cur);
      at += DIR_HEADER_SIZE;
    }
    cur.count++;
    at += DIR_ENTRY_SIZE + e.name.length;
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
  const runs = planRuns(entries, startAt);
  const index: DirIndexEntry[] = [];
  let lastIndexed = Math.floor(startAt / METADATA_SIZE);
  for (const run of runs) {
    const headerRef = dirs.ref();
    const block = Math.floor(run.at / METADATA_SIZE);
    if (block !== lastIndexed) {
      index.push({ index: run.at - startAt, start: refBlock(headerRef), name: entries[run.first]!.name });
      lastIndexed = block;
    }
    const parts: Uint8Array[] = [encodeDirHeader({ count: run.count, start: run.inodeBlock, inodeNumber: run.base })];
    for (let i = run.first; i < run.first + run.count; i++) {
      const e = entries[i]!;
      parts.push(encodeDirEntry({ offset: refOffset(e.ref), inodeDelta: e.ino - run.base, type: e.type, name: e.name }));
    }
    await dirs.write(Buffer.concat(parts));
  }
  return { ref, size: dirs.total - startAt, index };
}
