/**
 * Inode reading (spec §5) on top of layout.decodeInode, plus the checks the
 * decoder leaves to the reader: id indexes, inode numbers, block words, and
 * conversion to the public stat shape.
 */
import { SquashfsFormatError } from '../../../errors/index.js';
import {
  DATA_SIZE_MASK,
  INVALID32,
  type Inode,
  InodeType,
  basicType,
  decodeInode,
  decodeRdev,
  typeToIfmt,
} from '../layout.js';
import { MetaCursor, type MetadataReader, type TableBounds } from './metadata.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

export interface SqfsStat {
  type: EntryType;
  /** Full st_mode including the S_IFMT bits. */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  nlink: number;
  inodeNumber: number;
  rdevMajor: number;
  rdevMinor: number;
}

export function entryType(t: InodeType): EntryType {
  switch (basicType(t)) {
    case InodeType.Dir:
      return 'dir';
    case InodeType.File:
      return 'file';
    case InodeType.Symlink:
      return 'symlink';
    case InodeType.BlockDev:
      return 'block';
    case InodeType.CharDev:
      return 'char';
    case InodeType.Fifo:
      return 'fifo';
    default:
      return 'socket';
  }
}

export class InodeReader {
  constructor(
    private readonly meta: MetadataReader,
    private readonly table: TableBounds,
    private readonly blockSize: number,
    private readonly inodeCount: number,
    private readonly ids: readonly number[],
    private readonly fragmentCount: number,
  ) {}

  read(ref: number): Inode {
    const cur = new MetaCursor(this.meta, this.table, ref);
    const ino = decodeInode(cur, { blockSize: this.blockSize });
    this.check(ino, ref);
    return ino;
  }

  private check(ino: Inode, ref: number): void {
    const fail = (msg: string) =>
      new SquashfsFormatError('HPCC_E_SQFS_BAD_INODE', `inode at 0x${ref.toString(16)} (number ${ino.inodeNumber}): ${msg}`);
    if (ino.uidIdx >= this.ids.length || ino.gidIdx >= this.ids.length) {
      throw fail(`uid/gid index ${ino.uidIdx}/${ino.gidIdx} is outside the id table (${this.ids.length} entries)`);
    }
    if (ino.inodeNumber < 1 || ino.inodeNumber > this.inodeCount) {
      throw fail(`inode number is outside 1..${this.inodeCount}`);
    }
    if (ino.kind === 'file') {
      for (const w of ino.blockSizes) {
        if (w & 0xfe000000 || (w & DATA_SIZE_MASK) > this.blockSize) {
          throw fail(`block size word 0x${w.toString(16)} is invalid (block size ${this.blockSize})`);
        }
      }
      if (ino.fragment !== INVALID32 && ino.fileSize % this.blockSize !== 0 && ino.fragment >= this.fragmentCount) {
        throw fail(`fragment index ${ino.fragment} is outside the fragment table (${this.fragmentCount} entries)`);
      }
    }
  }

  uid(ino: Inode): number {
    return this.ids[ino.uidIdx]!;
  }

  gid(ino: Inode): number {
    return this.ids[ino.gidIdx]!;
  }

  stat(ino: Inode): SqfsStat {
    const rdev = ino.kind === 'dev' ? decodeRdev(ino.rdev) : { major: 0, minor: 0 };
    let size = 0;
    if (ino.kind === 'file' || ino.kind === 'dir') size = ino.fileSize;
    else if (ino.kind === 'symlink') size = ino.target.length;
    return {
      type: entryType(ino.type),
      mode: typeToIfmt(ino.type) | (ino.mode & 0o7777),
      uid: this.uid(ino),
      gid: this.gid(ino),
      mtime: ino.mtime,
      size,
      nlink: ino.nlink,
      inodeNumber: ino.inodeNumber,
      rdevMajor: rdev.major,
      rdevMinor: rdev.minor,
    };
  }
}
