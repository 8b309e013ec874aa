/**
 * finish() part 2: write the tables after the data area, back to back in
 * the order the kernel requires (squashfs-format.md §1, §9.1 item 4):
 * inode table, directory table, fragment table, export table, id table,
 * xattr kv + xattr id table. Each lookup table is its metadata blocks
 * followed by its u64 index array, and the superblock points at the array.
 */
import type { Encoder } from '../codecs/types.js';
import {
  encodeFragmentEntry,
  encodeXattrIdEntry,
  encodeXattrTableHeader,
  EXPORT_ENTRY_SIZE,
  FRAGMENT_ENTRY_SIZE,
  ID_ENTRY_SIZE,
  INVALID64,
  XATTR_ID_ENTRY_SIZE,
  type XattrIdEntry,
} from '../layout.js';
import { buildLookupTable, type MetadataWriter } from './metadata.js';
import type { ImageOutput } from './output.js';
import type { FragmentSlot } from './data.js';

export interface TableInput {
  enc: Encoder;
  inodes: MetadataWriter;
  dirs: MetadataWriter;
  fragments: readonly FragmentSlot[];
  /** Inode refs by number - 1, or null for no export table. */
  exportRefs: readonly number[] | null;
  ids: readonly number[];
  kv: MetadataWriter;
  xattrIds: readonly XattrIdEntry[];
}

export interface TablePositions {
  inodeTableStart: number;
  directoryTableStart: number;
  fragmentTableStart: number;
  exportTableStart: number;
  idTableStart: number;
  xattrTableStart: number;
  bytesUsed: number;
}

function records(count: number, size: number, put: (buf: Buffer, i: number) => void): Buffer {
  const buf = Buffer.alloc(count * size);
  for (let i = 0; i < count; i++) put(buf, i);
  return buf;
}

/** Write a lookup table at out.pos; returns the absolute offset of its index array. */
async function lookup(out: ImageOutput, enc: Encoder, recs: Buffer): Promise<number> {
  const t = await buildLookupTable(enc, recs, out.pos);
  await out.write(t.blocks);
  return out.write(t.index);
}

export async function writeTables(out: ImageOutput, t: TableInput): Promise<TablePositions> {
  await t.inodes.end();
  await t.dirs.end();
  const inodeTableStart = await out.write(Buffer.concat(t.inodes.blocks));
  const directoryTableStart = await out.write(Buffer.concat(t.dirs.blocks));

  // Fragment table (§4): 16-byte entries. With no fragments the field holds a position readers ignore (§8).
  let fragmentTableStart = out.pos;
  if (t.fragments.length > 0) {
    const recs = records(t.fragments.length, FRAGMENT_ENTRY_SIZE, (b, i) =>
      b.set(encodeFragmentEntry({ start: t.fragments[i]!.start, size: t.fragments[i]!.word }), i * FRAGMENT_ENTRY_SIZE),
    );
    fragmentTableStart = await lookup(out, t.enc, recs);
  }

  // Export table (§7): u64 inode ref for inode number i+1.
  let exportTableStart = INVALID64;
  if (t.exportRefs !== null) {
    const refs = t.exportRefs;
    const recs = records(refs.length, EXPORT_ENTRY_SIZE, (b, i) => b.writeBigUInt64LE(BigInt(refs[i]!), i * EXPORT_ENTRY_SIZE));
    exportTableStart = await lookup(out, t.enc, recs);
  }

  // Id table (§7): u32 uid/gid values, always ≥ 1 entry.
  const recs = records(t.ids.length, ID_ENTRY_SIZE, (b, i) => b.writeUInt32LE(t.ids[i]!, i * ID_ENTRY_SIZE));
  const idTableStart = await lookup(out, t.enc, recs);

  // Xattrs (§7): kv blocks, xattr id blocks, then the 16-byte header and the index.
  let xattrTableStart = INVALID64;
  if (t.xattrIds.length > 0) {
    await t.kv.end();
    const kvStart = await out.write(Buffer.concat(t.kv.blocks));
    const recs = records(t.xattrIds.length, XATTR_ID_ENTRY_SIZE, (b, i) => b.set(encodeXattrIdEntry(t.xattrIds[i]!), i * XATTR_ID_ENTRY_SIZE));
    const table = await buildLookupTable(t.enc, recs, out.pos);
    await out.write(table.blocks);
    xattrTableStart = await out.write(Buffer.concat([encodeXattrTableHeader({ kvStart, idCount: t.xattrIds.length }), table.index]));
  }
  return {
    inodeTableStart,
    directoryTableStart,
    fragmentTableStart,
    exportTableStart,
    idTableStart,
    xattrTableStart,
    bytesUsed: out.pos,
  };
}
