/** Shared helpers for the squashfs writer unit tests: write an image to a temp file and parse it back. */
import { expect } from 'chai';
import * as fs from 'node:fs';
import { open } from 'node:fs/promises';
import * as path from 'node:path';
import { inflateSync } from 'node:zlib';
import { SquashfsWriter, type SquashfsWriterOptions } from '../../../../src/formats/squashfs/writer/writer.js';
import {
  BufferSource,
  decodeInode,
  decodeMetaHeader,
  decodeSuperblock,
  INVALID64,
  refBlock,
  refOffset,
  type Inode,
  type Superblock,
} from '../../../../src/formats/squashfs/layout.js';
import { makeTempDir, removeTree } from '../../../helpers/env.js';

export type Build = (w: SquashfsWriter) => Promise<void> | void;

let tmp: string | null = null;
let seq = 0;
export function tempFile(): string {
  tmp ??= makeTempDir('hpcc-sqw-');
  return path.join(tmp, `img-${process.pid}-${seq++}.sqfs`);
}
export function cleanupTemp(): void {
  if (tmp !== null) removeTree(tmp);
  tmp = null;
}

/** Write an image with the given options and builder; returns the whole file. */
export async function writeImage(build: Build, opts: Partial<SquashfsWriterOptions> = {}): Promise<{ file: string; bytes: Buffer; result: Awaited<ReturnType<SquashfsWriter['finish']>> }> {
  const file = tempFile();
  const fh = await open(file, 'w+');
  try {
    const w = new SquashfsWriter({ handle: fh, deterministic: true, ...opts });
    await build(w);
    const result = await w.finish();
    await fh.close();
    return { file, bytes: fs.readFileSync(file), result };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

/** Read one metadata block at an absolute offset: its uncompressed bytes and on-disk size. */
export function metaBlock(img: Uint8Array, at: number): { data: Buffer; onDisk: number } {
  const b = Buffer.from(img.buffer, img.byteOffset, img.byteLength);
  const h = decodeMetaHeader(b.readUInt16LE(at));
  const payload = b.subarray(at + 2, at + 2 + h.length);
  return { data: h.compressed ? inflateSync(payload) : Buffer.from(payload), onDisk: 2 + h.length };
}

/** The u64 index array of a lookup table (count entries of size bytes). */
export function lookupIndex(img: Buffer, start: number, count: number, size: number): number[] {
  const n = Math.ceil((count * size) / 8192);
  return Array.from({ length: n }, (_, i) => Number(img.readBigUInt64LE(start + 8 * i)));
}

/** Decode the inode at a ref (reads up to two metadata blocks, enough for small inodes). */
export function inodeAt(img: Buffer, sb: Superblock, ref: number): Inode {
  const at = sb.inodeTableStart + refBlock(ref);
  const first = metaBlock(img, at);
  let data = first.data;
  if (at + first.onDisk < sb.directoryTableStart) data = Buffer.concat([data, metaBlock(img, at + first.onDisk).data]);
  return decodeInode(new BufferSource(data.subarray(refOffset(ref))), { blockSize: sb.blockSize });
}

/**
 * Check the table layout rules of §1 and §9.1 on a finished image and return
 * the superblock: exact adjacency, index arrays, padding.
 */
export function checkLayout(img: Buffer): Superblock {
  const sb = decodeSuperblock(img);
  expect(sb.blockSize).to.equal(1 << sb.blockLog);
  expect(img.length % 4096).to.equal(0);
  expect(img.length - sb.bytesUsed).to.be.lessThan(4096);
  expect(img.subarray(sb.bytesUsed).every((x) => x === 0)).to.equal(true);
  expect(sb.inodeTableStart).to.be.lessThan(sb.directoryTableStart);
  expect(sb.idCount).to.be.greaterThan(0);
  // walk the tables back from the end: each index array ends where the next table's blocks start
  const idIndex = lookupIndex(img, sb.idTableStart, sb.idCount, 4);
  const idEnd = sb.idTableStart + 8 * idIndex.length;
  let afterDirs: number; // first block after the directory table
  if (sb.xattrTableStart !== INVALID64) {
    const kvStart = Number(img.readBigUInt64LE(sb.xattrTableStart));
    const xcount = img.readUInt32LE(sb.xattrTableStart + 8);
    expect(xcount).to.be.greaterThan(0);
    const xIndex = lookupIndex(img, sb.xattrTableStart + 16, xcount, 16);
    expect(sb.xattrTableStart + 16 + 8 * xIndex.length).to.equal(sb.bytesUsed);
    expect(kvStart).to.equal(idEnd);
    expect(kvStart).to.be.lessThan(xIndex[0]!);
  } else {
    expect(idEnd).to.equal(sb.bytesUsed);
  }
  afterDirs = idIndex[0]!;
  if (sb.exportTableStart !== INVALID64) {
    const exIndex = lookupIndex(img, sb.exportTableStart, sb.inodeCount, 8);
    expect(sb.exportTableStart + 8 * exIndex.length).to.equal(idIndex[0]);
    afterDirs = exIndex[0]!;
  }
  if (sb.fragmentCount > 0) {
    const frIndex = lookupIndex(img, sb.fragmentTableStart, sb.fragmentCount, 16);
    expect(sb.fragmentTableStart + 8 * frIndex.length).to.equal(afterDirs);
    afterDirs = frIndex[0]!;
  }
  expect(sb.directoryTableStart).to.be.at.most(afterDirs);
  // metadata blocks of the inode and directory tables tile their regions exactly
  for (const [from, to] of [
    [sb.inodeTableStart, sb.directoryTableStart],
    [sb.directoryTableStart, afterDirs],
  ] as const) {
    let p = from;
    while (p < to) {
      const m = metaBlock(img, p);
      p += m.onDisk;
      if (p < to) expect(m.data.length).to.equal(8192);
    }
    expect(p).to.equal(to);
  }
  return sb;
}
