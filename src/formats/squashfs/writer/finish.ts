/**
 * finish(): with all data written, number the tree, (deterministic mode)
 * lay the data out in tree order, write the inode/directory tables and the
 * lookup tables, then the superblock (§2) and the compressor options block,
 * and pad the image to 4096 bytes (§8).
 */
import type { FileHandle } from 'node:fs/promises';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { addContext } from '../../../errors/index.js';
import type { Encoder } from '../codecs/types.js';
import { encodeSuperblock, Flag, METADATA_UNCOMPRESSED, type XattrIdEntry } from '../layout.js';
import type { DataWriter } from './data.js';
import { numberTree, writeInodes } from './inodes.js';
import { MetadataWriter } from './metadata.js';
import type { ImageOutput } from './output.js';
import { writeError } from './paths.js';
import { writeTables } from './tables.js';
import type { DirNode, FileData, Node } from './tree.js';
import type { XattrRegistry } from './xattrs.js';

export interface FinishInput {
  root: DirNode;
  xattrs: XattrRegistry;
  enc: Encoder;
  options: Uint8Array | null;
  out: ImageOutput;
  data: DataWriter;
  /** Deterministic mode: called once the spool has been copied into the image. */
  afterRelayout: (() => Promise<void>) | null;
  mkfsTime: number;
  blockSize: number;
  blockLog: number;
  exportTable: boolean;
  fragments: boolean;
  dedupe: boolean;
}

export interface SquashfsWriteResult {
  /** Image bytes up to the end of the last table (superblock bytes_used). */
  bytesUsed: number;
  /** Image size padded to 4096; the file ends at offset + size. */
  size: number;
  /** Distinct inodes. */
  inodes: number;
}

export async function finishImage(f: FinishInput): Promise<SquashfsWriteResult> {
  const { enc, out, data, options } = f;
  await data.drain();
  const order = numberTree(f.root);
  if (order.length > 0xfffffffe) throw writeError('HPCC_E_SQFS_TOO_MANY_INODES', `${order.length} inodes exceed the squashfs limit`);
  const files = distinctFileData(order.map((v) => v.node));
  if (f.afterRelayout !== null) {
    await data.relayout(files); // packs only live files' tails
    await f.afterRelayout();
  } else {
    data.compactFragments(files);
  }
  const ctx = {
    inodes: new MetadataWriter(enc),
    dirs: new MetadataWriter(enc),
    kv: new MetadataWriter(enc),
    xattrs: f.xattrs,
    xattrIds: [] as XattrIdEntry[],
    ids: [] as number[],
    blockSize: f.blockSize,
  };
  const refs = await writeInodes(order, ctx);
  const pos = await writeTables(out, {
    enc,
    inodes: ctx.inodes,
    dirs: ctx.dirs,
    fragments: data.fragments,
    exportRefs: f.exportTable ? refs : null,
    ids: ctx.ids,
    kv: ctx.kv,
    xattrIds: ctx.xattrIds,
  });
  // Flags (§2): informational, set truthfully. Tails of all files are packed when fragments are on.
  let flags = f.fragments ? Flag.ALWAYS_FRAG : Flag.NO_FRAG;
  if (f.dedupe) flags |= Flag.DUPLICATE;
  if (f.exportTable) flags |= Flag.EXPORT;
  if (ctx.xattrIds.length === 0) flags |= Flag.NO_XATTR;
  if (options !== null) flags |= Flag.COMP_OPT;
  const head: Uint8Array[] = [
    encodeSuperblock({
      inodeCount: order.length,
      mkfsTime: f.mkfsTime,
      blockSize: f.blockSize,
      fragmentCount: data.fragments.length,
      compressor: enc.id,
      blockLog: f.blockLog,
      flags,
      idCount: ctx.ids.length,
      versionMajor: 4,
      versionMinor: 0,
      rootInode: f.root.ref,
      ...pos,
    }),
  ];
  if (options !== null) {
    // Compressor options: one metadata block, always stored raw (§2).
    const h = Buffer.alloc(2);
    h.writeUInt16LE(options.length | METADATA_UNCOMPRESSED, 0);
    head.push(h, options);
  }
  await out.writeAt(Buffer.concat(head), 0);
  const size = Math.ceil(pos.bytesUsed / 4096) * 4096;
  if (size > pos.bytesUsed) await out.writeAt(Buffer.alloc(size - pos.bytesUsed), pos.bytesUsed);
  await out.truncateTo(size);
  return { bytesUsed: pos.bytesUsed, size, inodes: order.length };
}

/** Open an anonymous spool file (created then unlinked at once, so nothing is left behind). */
export async function openSpool(dir: string): Promise<FileHandle> {
  try {
    const d = await mkdtemp(join(dir, 'hpcc-sqfs-spool-'));
    try {
      return await open(join(d, 'spool'), 'w+');
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  } catch (e) {
    throw addContext('create the squashfs spool file', e);
  }
}

/** Each file's data once, in inode order (hard links and duplicates share one FileData). */
function distinctFileData(nodes: readonly Node[]): FileData[] {
  const seen = new Set<FileData>();
  const out: FileData[] = [];
  for (const n of nodes) {
    if (n.kind !== 'file' || seen.has(n.data)) continue;
    seen.add(n.data);
    out.push(n.data);
  }
  return out;
}
