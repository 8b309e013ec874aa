/**
 * SquashFS 4.0 on-disk structures: pure encode/decode on byte arrays, no I/O.
 *
 * Every integer is little-endian and every struct packed (linux
 * fs/squashfs/squashfs_fs.h; docs: shared squashfs-format.md §2–§7).
 * 64-bit fields are carried as JS numbers; offsets above 2^53 are rejected
 * by the decoders rather than silently rounded.
 */
import { SquashfsFormatError } from '../../errors/index.js';

export const SQUASHFS_MAGIC = 0x73717368; // "hsqs"
export const SUPERBLOCK_SIZE = 96;
export const METADATA_SIZE = 8192; // uncompressed bytes per metadata block (§3)
export const METADATA_UNCOMPRESSED = 0x8000; // bit 15 of a metadata block header
export const DATA_UNCOMPRESSED = 0x01000000; // bit 24 of a data block size word (§4)
export const DATA_SIZE_MASK = 0x00ffffff;
export const INVALID32 = 0xffffffff;
export const INVALID64 = -1; // decoded form of 0xFFFFFFFFFFFFFFFF
export const MIN_BLOCK_LOG = 12;
export const MAX_BLOCK_LOG = 20;
export const MAX_NAME = 256; // kernel rejects stored names longer than this
export const MAX_SYMLINK = 4096; // kernel refuses targets longer than PAGE_SIZE
export const DIR_RUN_MAX = 256; // entries per directory header
export const DIR_HEADER_SIZE = 12;
export const DIR_ENTRY_SIZE = 8; // plus the name
export const FRAGMENT_ENTRY_SIZE = 16;
export const ID_ENTRY_SIZE = 4;
export const EXPORT_ENTRY_SIZE = 8;
export const XATTR_ID_ENTRY_SIZE = 16;
export const XATTR_HEADER_SIZE = 16;

/** Compressor ids (§2). */
export enum Compressor {
  Gzip = 1,
  Lzma = 2,
  Lzo = 3,
  Xz = 4,
  Lz4 = 5,
  Zstd = 6,
}

/** Superblock flags (§2). */
export const Flag = {
  NOI: 0x0001,
  NOD: 0x0002,
  CHECK: 0x0004,
  NOF: 0x0008,
  NO_FRAG: 0x0010,
  ALWAYS_FRAG: 0x0020,
  DUPLICATE: 0x0040,
  EXPORT: 0x0080,
  NOX: 0x0100,
  NO_XATTR: 0x0200,
  COMP_OPT: 0x0400,
  NOID: 0x0800,
} as const;

/** Inode types (§5): basic 1..7, extended 8..14. */
export enum InodeType {
  Dir = 1,
  File = 2,
  Symlink = 3,
  BlockDev = 4,
  CharDev = 5,
  Fifo = 6,
  Socket = 7,
  LDir = 8,
  LFile = 9,
  LSymlink = 10,
  LBlockDev = 11,
  LCharDev = 12,
  LFifo = 13,
  LSocket = 14,
}

export function basicType(t: InodeType): InodeType {
  return t > 7 ? ((t - 7) as InodeType) : t;
}

export function isExtended(t: InodeType): boolean {
  return t > 7;
}

/** The S_IFMT bits for a squashfs inode type. */
export function typeToIfmt(t: InodeType): number {
  switch (basicType(t)) {
    case InodeType.Dir:
      return 0o040000;
    case InodeType.File:
      return 0o100000;
    case InodeType.Symlink:
      return 0o120000;
    case InodeType.BlockDev:
      return 0o060000;
    case InodeType.CharDev:
      return 0o020000;
    case InodeType.Fifo:
      return 0o010000;
    case InodeType.Socket:
      return 0o140000;
    default:
      return 0;
  }
}

// ---------------------------------------------------------------- helpers

function dv(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Read a u64 as a number; all-ones becomes INVALID64; above 2^53 is an error. */
export function getU64(view: DataView, off: number): number {
  const lo = view.getUint32(off, true);
  const hi = view.getUint32(off + 4, true);
  if (lo === 0xffffffff && hi === 0xffffffff) return INVALID64;
  if (hi >= 0x200000) {
    throw new SquashfsFormatError('HPCC_E_SQFS_OFFSET_RANGE', `64-bit field at byte ${off} is out of range`);
  }
  return hi * 0x100000000 + lo;
}

export function putU64(view: DataView, off: number, v: number): void {
  if (v === INVALID64) {
    view.setUint32(off, 0xffffffff, true);
    view.setUint32(off + 4, 0xffffffff, true);
    return;
  }
  view.setUint32(off, v % 0x100000000, true);
  view.setUint32(off + 4, Math.floor(v / 0x100000000), true);
}

/** A sequential byte source for decoding records that may straddle metadata blocks. */
export interface ByteSource {
  /** Return exactly n bytes (throws on end of data). */
  take(n: number): Uint8Array;
}

/** A ByteSource over one contiguous buffer. */
export class BufferSource implements ByteSource {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw new SquashfsFormatError('HPCC_E_SQFS_TRUNCATED', `record runs past the end of its table`);
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

// ---------------------------------------------------------------- superblock (§2)

export interface Superblock {
  inodeCount: number;
  mkfsTime: number;
  blockSize: number;
  fragmentCount: number;
  compressor: Compressor;
  blockLog: number;
  flags: number;
  idCount: number;
  versionMajor: number;
  versionMinor: number;
  rootInode: number; // metadata ref
  bytesUsed: number;
  idTableStart: number;
  xattrTableStart: number; // INVALID64 when absent
  inodeTableStart: number;
  directoryTableStart: number;
  fragmentTableStart: number;
  exportTableStart: number; // INVALID64 when absent
}

export function encodeSuperblock(sb: Superblock): Uint8Array {
  const buf = new Uint8Array(SUPERBLOCK_SIZE);
  const v = dv(buf);
  v.setUint32(0, SQUASHFS_MAGIC, true);
  v.setUint32(4, sb.inodeCount, true);
  v.setUint32(8, sb.mkfsTime >>> 0, true);
  v.setUint32(12, sb.blockSize, true);
  v.setUint32(16, sb.fragmentCount, true);
  v.setUint16(20, sb.compressor, true);
  v.setUint16(22, sb.blockLog, true);
  v.setUint16(24, sb.flags, true);
  v.setUint16(26, sb.idCount, true);
  v.setUint16(28, sb.versionMajor, true);
  v.setUint16(30, sb.versionMinor, true);
  putU64(v, 32, sb.rootInode);
  putU64(v, 40, sb.bytesUsed);
  putU64(v, 48, sb.idTableStart);
  putU64(v, 56, sb.xattrTableStart);
  putU64(v, 64, sb.inodeTableStart);
  putU64(v, 72, sb.directoryTableStart);
  putU64(v, 80, sb.fragmentTableStart);
  putU64(v, 88, sb.exportTableStart);
  return buf;
}

/** Decode a superblock; checks only magic and version (semantic checks live in the reader). */
export function decodeSuperblock(buf: Uint8Array): Superblock {
  if (buf.length < SUPERBLOCK_SIZE) {
    throw new SquashfsFormatError('HPCC_E_SQFS_TRUNCATED', `superblock needs ${SUPERBLOCK_SIZE} bytes, got ${buf.length}`);
  }
  const v = dv(buf);
  const magic = v.getUint32(0, true);
  if (magic !== SQUASHFS_MAGIC) {
    throw new SquashfsFormatError(
      'HPCC_E_SQFS_BAD_MAGIC',
      `not a squashfs image (magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x73717368 "hsqs")`,
    );
  }
  const sb: Superblock = {
    inodeCount: v.getUint32(4, true),
    mkfsTime: v.getUint32(8, true),
    blockSize: v.getUint32(12, true),
    fragmentCount: v.getUint32(16, true),
    compressor: v.getUint16(20, true),
    blockLog: v.getUint16(22, true),
    flags: v.getUint16(24, true),
    idCount: v.getUint16(26, true),
    versionMajor: v.getUint16(28, true),
    versionMinor: v.getUint16(30, true),
    rootInode: getU64(v, 32),
    bytesUsed: getU64(v, 40),
    idTableStart: getU64(v, 48),
    xattrTableStart: getU64(v, 56),
    inodeTableStart: getU64(v, 64),
    directoryTableStart: getU64(v, 72),
    fragmentTableStart: getU64(v, 80),
    exportTableStart: getU64(v, 88),
  };
  if (sb.versionMajor !== 4 || sb.versionMinor !== 0) {
    throw new SquashfsFormatError(
      'HPCC_E_SQFS_VERSION',
      `unsupported squashfs version ${sb.versionMajor}.${sb.versionMinor} (only 4.0 is supported)`,
    );
  }
  return sb;
}

// ---------------------------------------------------------------- metadata refs (§3)

/** ref = (block position relative to table start) << 16 | offset in uncompressed block. */
export function makeRef(block: number, offset: number): number {
  return block * 0x10000 + offset;
}

export function refBlock(ref: number): number {
  return Math.floor(ref / 0x10000);
}

export function refOffset(ref: number): number {
  return ref % 0x10000;
}

/** Metadata block header word: payload length, bit 15 when stored uncompressed. */
export function encodeMetaHeader(len: number, compressed: boolean): number {
  return compressed ? len : len | METADATA_UNCOMPRESSED;
}

export function decodeMetaHeader(word: number): { length: number; compressed: boolean } {
  return { length: word & 0x7fff, compressed: (word & METADATA_UNCOMPRESSED) === 0 };
}

// ---------------------------------------------------------------- inodes (§5)

export interface InodeBase {
  type: InodeType;
  mode: number; // permission bits only (& 0o7777)
  uidIdx: number;
  gidIdx: number;
  mtime: number;
  inodeNumber: number;
}

export interface DirIndexEntry {
  index: number; // byte offset of a header within this dir's listing
  start: number; // metadata block of that header, relative to directory_table_start
  name: Uint8Array;
}

export interface DirInode extends InodeBase {
  kind: 'dir';
  dirBlock: number;
  nlink: number;
  fileSize: number; // listing bytes + 3
  dirOffset: number;
  parentInode: number;
  xattr: number; // INVALID32 when none
  index: DirIndexEntry[];
}

export interface FileInode extends InodeBase {
  kind: 'file';
  blocksStart: number;
  fragment: number; // INVALID32 when none
  fragOffset: number;
  fileSize: number;
  sparse: number;
  nlink: number;
  xattr: number;
  blockSizes: number[]; // size words
}

export interface SymlinkInode extends InodeBase {
  kind: 'symlink';
  nlink: number;
  target: Uint8Array;
  xattr: number;
}

export interface DevInode extends InodeBase {
  kind: 'dev';
  nlink: number;
  rdev: number; // encoded (see encodeRdev)
  xattr: number;
}

export interface IpcInode extends InodeBase {
  kind: 'ipc';
  nlink: number;
  xattr: number;
}

export type Inode = DirInode | FileInode | SymlinkInode | DevInode | IpcInode;

/** Number of block size words a file inode carries (§4). */
export function fileBlockCount(fileSize: number, blockSize: number, fragment: number): number {
  return fragment === INVALID32 ? Math.ceil(fileSize / blockSize) : Math.floor(fileSize / blockSize);
}

export function encodeRdev(major: number, minor: number): number {
  return (((major & 0xfff) << 8) | (minor & 0xff) | ((minor & 0xfff00) << 12)) >>> 0;
}

export function decodeRdev(rdev: number): { major: number; minor: number } {
  return { major: (rdev >>> 8) & 0xfff, minor: (rdev & 0xff) | ((rdev >>> 12) & 0xfff00) };
}

function inodeSize(ino: Inode): number {
  const ext = isExtended(ino.type);
  switch (ino.kind) {
    case 'dir':
      return ext ? 40 + ino.index.reduce((n, e) => n + 12 + e.name.length, 0) : 32;
    case 'file':
      return (ext ? 56 : 32) + 4 * ino.blockSizes.length;
    case 'symlink':
      return 24 + ino.target.length + (ext ? 4 : 0);
    case 'dev':
      return ext ? 28 : 24;
    case 'ipc':
      return ext ? 24 : 20;
  }
}

export function encodeInode(ino: Inode): Uint8Array {
  const buf = new Uint8Array(inodeSize(ino));
  const v = dv(buf);
  const ext = isExtended(ino.type);
  v.setUint16(0, ino.type, true);
  v.setUint16(2, ino.mode & 0o7777, true);
  v.setUint16(4, ino.uidIdx, true);
  v.setUint16(6, ino.gidIdx, true);
  v.setUint32(8, ino.mtime >>> 0, true);
  v.setUint32(12, ino.inodeNumber, true);
  switch (ino.kind) {
    case 'dir':
      if (!ext) {
        v.setUint32(16, ino.dirBlock, true);
        v.setUint32(20, ino.nlink, true);
        v.setUint16(24, ino.fileSize, true);
        v.setUint16(26, ino.dirOffset, true);
        v.setUint32(28, ino.parentInode, true);
      } else {
        v.setUint32(16, ino.nlink, true);
        v.setUint32(20, ino.fileSize, true);
        v.setUint32(24, ino.dirBlock, true);
        v.setUint32(28, ino.parentInode, true);
        v.setUint16(32, ino.index.length, true);
        v.setUint16(34, ino.dirOffset, true);
        v.setUint32(36, ino.xattr, true);
        let p = 40;
        for (const e of ino.index) {
          v.setUint32(p, e.index, true);
          v.setUint32(p + 4, e.start, true);
          v.setUint32(p + 8, e.name.length - 1, true);
          buf.set(e.name, p + 12);
          p += 12 + e.name.length;
        }
      }
      break;
    case 'file': {
      let p: number;
      if (!ext) {
        v.setUint32(16, ino.blocksStart, true);
        v.setUint32(20, ino.fragment, true);
        v.setUint32(24, ino.fragOffset, true);
        v.setUint32(28, ino.fileSize, true);
        p = 32;
      } else {
        putU64(v, 16, ino.blocksStart);
        putU64(v, 24, ino.fileSize);
        putU64(v, 32, ino.sparse);
        v.setUint32(40, ino.nlink, true);
        v.setUint32(44, ino.fragment, true);
        v.setUint32(48, ino.fragOffset, true);
        v.setUint32(52, ino.xattr, true);
        p = 56;
      }
      for (const w of ino.blockSizes) {
        v.setUint32(p, w, true);
        p += 4;
      }
      break;
    }
    case 'symlink':
      v.setUint32(16, ino.nlink, true);
      v.setUint32(20, ino.target.length, true);
      buf.set(ino.target, 24);
      if (ext) v.setUint32(24 + ino.target.length, ino.xattr, true);
      break;
    case 'dev':
      v.setUint32(16, ino.nlink, true);
      v.setUint32(20, ino.rdev, true);
      if (ext) v.setUint32(24, ino.xattr, true);
      break;
    case 'ipc':
      v.setUint32(16, ino.nlink, true);
      if (ext) v.setUint32(20, ino.xattr, true);
      break;
  }
  return buf;
}

/** Limits a decoder enforces so hostile images cannot cause huge allocations. */
export interface DecodeLimits {
  blockSize: number;
  /** Largest plausible file size (bytes of the image × a factor, or a constant). */
  maxDirIndex?: number;
}

/**
 * Decode one inode from a byte source. The source may span metadata blocks.
 * Bounds: symlink targets ≤ 4096 bytes (kernel limit), names ≤ 256 bytes,
 * block lists bounded by file size / block size, directory index ≤ 65535 entries.
 */
export function decodeInode(src: ByteSource, limits: DecodeLimits): Inode {
  // Results list the base fields explicitly: `{ ...base, more }` hits a slow V8 path
  // (about 50 µs per object on Node 20), which dominated reading whole images.
  const h = dv(src.take(16));
  const type = h.getUint16(0, true) as InodeType;
  const base: InodeBase = {
    type,
    mode: h.getUint16(2, true) & 0o7777,
    uidIdx: h.getUint16(4, true),
    gidIdx: h.getUint16(6, true),
    mtime: h.getUint32(8, true),
    inodeNumber: h.getUint32(12, true),
  };
  switch (type) {
    case InodeType.Dir: {
      const b = dv(src.take(16));
      return {
        type: base.type, mode: base.mode, uidIdx: base.uidIdx, gidIdx: base.gidIdx, mtime: base.mtime, inodeNumber: base.inodeNumber,
        kind: 'dir',
        dirBlock: b.getUint32(0, true),
        nlink: b.getUint32(4, true),
        fileSize: b.getUint16(8, true),
        dirOffset: b.getUint16(10, true),
        parentInode: b.getUint32(12, true),
        xattr: INVALID32,
        index: [],
      };
    }
    case InodeType.LDir: {
      const b = dv(src.take(24));
      const count = b.getUint16(16, true);
      const index: DirIndexEntry[] = [];
      for (let i = 0; i < count; i++) {
        const e = dv(src.take(12));
        const nameLen = e.getUint32(8, true) + 1;
        if (nameLen > MAX_NAME) {
          throw new SquashfsFormatError('HPCC_E_SQFS_BAD_INODE', `directory index name of ${nameLen} bytes (max ${MAX_NAME})`);
        }
        index.push({ index: e.getUint32(0, true), start: e.getUint32(4, true), name: src.take(nameLen).slice() });
      }
      return {
        type: base.type, mode: base.mode, uidIdx: base.uidIdx, gidIdx: base.gidIdx, mtime: base.mtime, inodeNumber: base.inodeNumber,
        kind: 'dir',
        nlink: b.getUint32(0, true),
        fileSize: b.getUint32(4, true),
        dirBlock: b.getUint32(8, true),
        parentInode: b.getUint32(12, true),
        dirOffset: b.getUint16(18, true),
        xattr: b.getUint32(20, true),
        index,
      };
    }
    case InodeType.File:
    case InodeType.LFile: {
      let blocksStart: number, fragment: number, fragOffset: number, fileSize: number;
      let sparse = 0,
        nlink = 1,
        xattr = INVALID32;
      if (type === InodeType.File) {
        const b = dv(src.take(16));
        blocksStart = b.getUint32(0, true);
        fragment = b.getUint32(4, true);
        fragOffset = b.getUint32(8, true);
        fileSize = b.getUint32(12, true);
      } else {
        const b = dv(src.take(40));
        blocksStart = getU64(b, 0);
        fileSize = getU64(b, 8);
        sparse = getU64(b, 16);
        nlink = b.getUint32(24, true);
        fragment = b.getUint32(28, true);
        fragOffset = b.getUint32(32, true);
        xattr = b.getUint32(36, true);
        if (blocksStart === INVALID64 || fileSize === INVALID64) {
          throw new SquashfsFormatError('HPCC_E_SQFS_BAD_INODE', `file inode ${base.inodeNumber} has an invalid size or start`);
        }
      }
      const n = fileBlockCount(fileSize, limits.blockSize, fragment);
      // Each block word is 4 bytes of metadata; the source itself bounds how many can exist,
      // but check cheaply first so a hostile size cannot request a giant read.
      if (n > 0x4000000) {
        throw new SquashfsFormatError('HPCC_E_SQFS_BAD_INODE', `file inode ${base.inodeNumber} claims ${fileSize} bytes`);
      }
      const words = dv(src.take(4 * n));
      const blockSizes = new Array<number>(n);
      for (let i = 0; i < n; i++) blockSizes[i] = words.getUint32(4 * i, true);
      return { type: base.type, mode: base.mode, uidIdx: base.uidIdx, gidIdx: base.gidIdx, mtime: base.mtime, inodeNumber: base.inodeNumber, kind: 'file', blocksStart, fragment, fragOffset, fileSize, sparse, nlink, xattr, blockSizes };
    }
    case InodeType.Symlink:
    case InodeType.LSymlink: {
      const b = dv(src.take(8));
      const nlink = b.getUint32(0, true);
      const len = b.getUint32(4, true);
      if (len > MAX_SYMLINK) {
        throw new SquashfsFormatError('HPCC_E_SQFS_BAD_INODE', `symlink target of ${len} bytes (max ${MAX_SYMLINK})`);
      }
      const target = src.take(len).slice();
      const xattr = type === InodeType.LSymlink ? dv(src.take(4)).getUint32(0, true) : INVALID32;
      return { type: base.type, mode: base.mode, uidIdx: base.uidIdx, gidIdx: base.gidIdx, mtime: base.mtime, inodeNumber: base.inodeNumber, kind: 'symlink', nlink, target, xattr };
    }
    case InodeType.BlockDev:
    case InodeType.CharDev:
    case InodeType.LBlockDev:
    case InodeType.LCharDev: {
      const ext = isExtended(type);
      const b = dv(src.take(ext ? 12 : 8));
      return {
        type: base.type, mode: base.mode, uidIdx: base.uidIdx, gidIdx: base.gidIdx, mtime: base.mtime, inodeNumber: base.inodeNumber,
        kind: 'dev',
        nlink: b.getUint32(0, true),
        rdev: b.getUint32(4, true),
        xattr: ext ? b.getUint32(8, true) : INVALID32,
      };
    }
    case InodeType.Fifo:
    case InodeType.Socket:
    case InodeType.LFifo:
    case InodeType.LSocket: {
      const ext = isExtended(type);
      const b = dv(src.take(ext ? 8 : 4));
      return { type: base.type, mode: base.mode, uidIdx: base.uidIdx, gidIdx: base.gidIdx, mtime: base.mtime, inodeNumber: base.inodeNumber, kind: 'ipc', nlink: b.getUint32(0, true), xattr: ext ? b.getUint32(4, true) : INVALID32 };
    }
    default:
      throw new SquashfsFormatError('HPCC_E_SQFS_BAD_INODE', `unknown inode type ${type as number}`);
  }
}

// ---------------------------------------------------------------- directories (§6)

export interface DirHeader {
  count: number; // number of entries (stored as count-1)
  start: number; // inode metadata block, relative to inode_table_start
  inodeNumber: number; // base
}

export interface DirEntry {
  offset: number; // offset of the inode in its uncompressed block
  inodeDelta: number; // s16
  type: InodeType; // basic type 1..7
  name: Uint8Array;
}

export function encodeDirHeader(h: DirHeader): Uint8Array {
  const buf = new Uint8Array(DIR_HEADER_SIZE);
  const v = dv(buf);
  v.setUint32(0, h.count - 1, true);
  v.setUint32(4, h.start, true);
  v.setUint32(8, h.inodeNumber, true);
  return buf;
}

export function decodeDirHeader(src: ByteSource): DirHeader {
  const v = dv(src.take(DIR_HEADER_SIZE));
  const count = v.getUint32(0, true) + 1;
  if (count > DIR_RUN_MAX) {
    throw new SquashfsFormatError('HPCC_E_SQFS_BAD_DIR', `directory header claims ${count} entries (max ${DIR_RUN_MAX})`);
  }
  return { count, start: v.getUint32(4, true), inodeNumber: v.getUint32(8, true) };
}

export function encodeDirEntry(e: DirEntry): Uint8Array {
  const buf = new Uint8Array(DIR_ENTRY_SIZE + e.name.length);
  const v = dv(buf);
  v.setUint16(0, e.offset, true);
  v.setInt16(2, e.inodeDelta, true);
  v.setUint16(4, e.type, true);
  v.setUint16(6, e.name.length - 1, true);
  buf.set(e.name, DIR_ENTRY_SIZE);
  return buf;
}

export function decodeDirEntry(src: ByteSource): DirEntry {
  const v = dv(src.take(DIR_ENTRY_SIZE));
  const type = v.getUint16(4, true);
  const nameLen = v.getUint16(6, true) + 1;
  if (type < 1 || type > 7) {
    throw new SquashfsFormatError('HPCC_E_SQFS_BAD_DIR', `directory entry has inode type ${type} (must be 1..7)`);
  }
  if (nameLen > MAX_NAME) {
    throw new SquashfsFormatError('HPCC_E_SQFS_BAD_DIR', `directory entry name of ${nameLen} bytes (max ${MAX_NAME})`);
  }
  const name = src.take(nameLen).slice();
  return { offset: v.getUint16(0, true), inodeDelta: v.getInt16(2, true), type, name };
}

/** Byte-wise comparison (memcmp order, shorter prefix first), as the kernel requires (§6). */
export function compareNames(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

// ---------------------------------------------------------------- lookup tables (§4, §7)

export interface FragmentEntry {
  start: number;
  size: number; // size word, bit 24 = uncompressed
}

export function encodeFragmentEntry(e: FragmentEntry): Uint8Array {
  const buf = new Uint8Array(FRAGMENT_ENTRY_SIZE);
  const v = dv(buf);
  putU64(v, 0, e.start);
  v.setUint32(8, e.size, true);
  return buf;
}

export function decodeFragmentEntry(buf: Uint8Array): FragmentEntry {
  const v = dv(buf);
  return { start: getU64(v, 0), size: v.getUint32(8, true) };
}

export interface XattrIdEntry {
  ref: number; // ref of the first pair, relative to kv_start
  count: number;
  size: number;
}

export function encodeXattrIdEntry(e: XattrIdEntry): Uint8Array {
  const buf = new Uint8Array(XATTR_ID_ENTRY_SIZE);
  const v = dv(buf);
  putU64(v, 0, e.ref);
  v.setUint32(8, e.count, true);
  v.setUint32(12, e.size, true);
  return buf;
}

export function decodeXattrIdEntry(buf: Uint8Array): XattrIdEntry {
  const v = dv(buf);
  return { ref: getU64(v, 0), count: v.getUint32(8, true), size: v.getUint32(12, true) };
}

export interface XattrTableHeader {
  kvStart: number;
  idCount: number;
}

export function encodeXattrTableHeader(h: XattrTableHeader): Uint8Array {
  const buf = new Uint8Array(XATTR_HEADER_SIZE);
  const v = dv(buf);
  putU64(v, 0, h.kvStart);
  v.setUint32(8, h.idCount, true);
  return buf;
}

export function decodeXattrTableHeader(buf: Uint8Array): XattrTableHeader {
  const v = dv(buf);
  return { kvStart: getU64(v, 0), idCount: v.getUint32(8, true) };
}

/** Xattr name prefixes (§7): only these three namespaces can be stored. */
export const XATTR_PREFIXES = ['user.', 'trusted.', 'security.'] as const;
export const XATTR_VALUE_OOL = 0x0100;

/** Split "user.foo" into its prefix id and suffix, or null for namespaces squashfs cannot hold. */
export function splitXattrName(name: string): { prefix: number; suffix: string } | null {
  for (let i = 0; i < XATTR_PREFIXES.length; i++) {
    const p = XATTR_PREFIXES[i]!;
    if (name.startsWith(p) && name.length > p.length) return { prefix: i, suffix: name.slice(p.length) };
  }
  return null;
}

/** Number of metadata blocks (and index entries) a lookup table of count×size bytes needs. */
export function lookupBlocks(count: number, entrySize: number): number {
  return Math.ceil((count * entrySize) / METADATA_SIZE);
}
