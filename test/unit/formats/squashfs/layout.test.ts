import { expect } from 'chai';
import {
  BufferSource,
  decodeDirEntry,
  decodeDirHeader,
  decodeInode,
  decodeRdev,
  decodeSuperblock,
  encodeDirEntry,
  encodeDirHeader,
  encodeInode,
  encodeRdev,
  encodeSuperblock,
  compareNames,
  INVALID32,
  INVALID64,
  InodeType,
  type Inode,
  type Superblock,
} from '../../../../src/formats/squashfs/layout.js';
import { SquashfsFormatError } from '../../../../src/errors/index.js';

const enc = new TextEncoder();

describe('squashfs layout', () => {
  const sb: Superblock = {
    inodeCount: 12,
    mkfsTime: 0x6553f101,
    blockSize: 4096,
    fragmentCount: 1,
    compressor: 1,
    blockLog: 12,
    flags: 0xc0,
    idCount: 3,
    versionMajor: 4,
    versionMinor: 0,
    rootInode: 0x12340056,
    bytesUsed: 5_000_000_123,
    idTableStart: 4_999_999_000,
    xattrTableStart: INVALID64,
    inodeTableStart: 96,
    directoryTableStart: 1000,
    fragmentTableStart: 2000,
    exportTableStart: INVALID64,
  };

  it('encodes the superblock as in the spec example and round-trips', () => {
    const b = encodeSuperblock(sb);
    expect(Buffer.from(b.subarray(0, 28)).toString('hex')).to.equal(
      '687371730c00000001f15365001000000100000001000c00c0000300',
    );
    expect(b.subarray(56, 64).every((x) => x === 0xff)).to.equal(true);
    expect(decodeSuperblock(b)).to.deep.equal(sb);
  });

  it('rejects a bad magic and a wrong version with typed errors', () => {
    const b = encodeSuperblock(sb);
    b[0] = 0;
    expect(() => decodeSuperblock(b)).to.throw(SquashfsFormatError).with.property('code', 'HPCC_E_SQFS_BAD_MAGIC');
    const c = encodeSuperblock({ ...sb, versionMajor: 3 });
    expect(() => decodeSuperblock(c)).to.throw(SquashfsFormatError).with.property('code', 'HPCC_E_SQFS_VERSION');
    expect(() => decodeSuperblock(c.subarray(0, 50))).to.throw(SquashfsFormatError).with.property('code', 'HPCC_E_SQFS_TRUNCATED');
  });

  it('matches the spec example of a basic file inode', () => {
    const ino: Inode = {
      kind: 'file',
      type: InodeType.File,
      mode: 0o644,
      uidIdx: 0,
      gidIdx: 1,
      mtime: 0x6553f100,
      inodeNumber: 2,
      blocksStart: 0x60,
      fragment: INVALID32,
      fragOffset: 0,
      fileSize: 8292,
      sparse: 0,
      nlink: 1,
      xattr: INVALID32,
      blockSizes: [0x01001000, 0x01001000, 0x01000064],
    };
    const hex = Buffer.from(encodeInode(ino)).toString('hex');
    expect(hex).to.equal(
      '0200a4010000010000f1536502000000' + '60000000ffffffff0000000064200000' + '001000010010000164000001',
    );
    expect(decodeInode(new BufferSource(encodeInode(ino)), { blockSize: 4096 })).to.deep.equal(ino);
  });

  it('round-trips every inode kind, basic and extended', () => {
    const base = { mode: 0o4755, uidIdx: 1, gidIdx: 2, mtime: 7, inodeNumber: 9 };
    const inodes: Inode[] = [
      { ...base, kind: 'dir', type: InodeType.Dir, dirBlock: 10, nlink: 3, fileSize: 50, dirOffset: 8, parentInode: 1, xattr: INVALID32, index: [] },
      {
        ...base, kind: 'dir', type: InodeType.LDir, dirBlock: 10, nlink: 3, fileSize: 70000, dirOffset: 8, parentInode: 1, xattr: 4,
        index: [{ index: 0, start: 0, name: enc.encode('a') }, { index: 8200, start: 1234, name: enc.encode('zzz') }],
      },
      {
        ...base, kind: 'file', type: InodeType.LFile, blocksStart: 2 ** 33, fragment: 5, fragOffset: 17, fileSize: 5 * 2 ** 30 + 3,
        sparse: 4096, nlink: 2, xattr: INVALID32, blockSizes: new Array(5 * 2 ** 18).fill(0),
      },
      { ...base, kind: 'symlink', type: InodeType.Symlink, nlink: 1, target: enc.encode('../x/y'), xattr: INVALID32 },
      { ...base, kind: 'symlink', type: InodeType.LSymlink, nlink: 1, target: new Uint8Array(4096).fill(97), xattr: 0 },
      { ...base, kind: 'dev', type: InodeType.CharDev, nlink: 1, rdev: encodeRdev(1, 3), xattr: INVALID32 },
      { ...base, kind: 'dev', type: InodeType.LBlockDev, nlink: 1, rdev: encodeRdev(8, 257), xattr: 1 },
      { ...base, kind: 'ipc', type: InodeType.Fifo, nlink: 1, xattr: INVALID32 },
      { ...base, kind: 'ipc', type: InodeType.LSocket, nlink: 1, xattr: 2 },
    ];
    for (const ino of inodes) {
      const dec = decodeInode(new BufferSource(encodeInode(ino)), { blockSize: 4096 });
      expect(dec).to.deep.equal({ ...ino, mode: ino.mode & 0o7777 });
    }
  });

  it('encodes device numbers as the kernel does (8:257 → 0x00100801)', () => {
    expect(encodeRdev(8, 257)).to.equal(0x00100801);
    expect(decodeRdev(0x00100801)).to.deep.equal({ major: 8, minor: 257 });
    expect(decodeRdev(encodeRdev(0xfff, 0xfffff))).to.deep.equal({ major: 0xfff, minor: 0xfffff });
  });

  it('rejects hostile inode fields', () => {
    const sym = encodeInode({ kind: 'symlink', type: InodeType.Symlink, mode: 0, uidIdx: 0, gidIdx: 0, mtime: 0, inodeNumber: 1, nlink: 1, target: enc.encode('x'), xattr: INVALID32 });
    new DataView(sym.buffer).setUint32(20, 1 << 30, true);
    expect(() => decodeInode(new BufferSource(sym), { blockSize: 4096 })).to.throw(SquashfsFormatError);
    const bad = new Uint8Array(32);
    bad[0] = 15;
    expect(() => decodeInode(new BufferSource(bad), { blockSize: 4096 })).to.throw(SquashfsFormatError).with.property('code', 'HPCC_E_SQFS_BAD_INODE');
    expect(() => decodeInode(new BufferSource(bad.subarray(0, 10)), { blockSize: 4096 })).to.throw(SquashfsFormatError).with.property('code', 'HPCC_E_SQFS_TRUNCATED');
  });

  it('round-trips directory headers and entries', () => {
    const h = { count: 256, start: 8194, inodeNumber: 100 };
    expect(decodeDirHeader(new BufferSource(encodeDirHeader(h)))).to.deep.equal(h);
    const e = { offset: 8000, inodeDelta: -5, type: InodeType.File, name: enc.encode('é'.repeat(128)) };
    expect(decodeDirEntry(new BufferSource(encodeDirEntry(e)))).to.deep.equal(e);
    const over = encodeDirHeader({ count: 257, start: 0, inodeNumber: 1 });
    expect(() => decodeDirHeader(new BufferSource(over))).to.throw(SquashfsFormatError);
  });

  it('sorts names as raw bytes, shorter prefix first', () => {
    const names = ['b', 'a', 'ab', 'B', 'é', 'z'].map((s) => enc.encode(s));
    names.sort(compareNames);
    expect(names.map((n) => new TextDecoder().decode(n))).to.deep.equal(['B', 'a', 'ab', 'b', 'z', 'é']);
  });
});
