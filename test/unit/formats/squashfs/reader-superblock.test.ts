/** Strict superblock validation (spec §2, §8, §9.1) before the reader trusts any field. */
import { expect } from 'chai';
import { HpccError } from '../../../../src/errors/index.js';
import { Compressor, INVALID64, type Superblock } from '../../../../src/formats/squashfs/layout.js';
import { validateSuperblock } from '../../../../src/formats/squashfs/reader/superblock.js';

const good: Superblock = {
  inodeCount: 12,
  mkfsTime: 0,
  blockSize: 131072,
  fragmentCount: 1,
  compressor: Compressor.Gzip,
  blockLog: 17,
  flags: 0xc0,
  idCount: 1,
  versionMajor: 4,
  versionMinor: 0,
  rootInode: 0x1a0,
  bytesUsed: 5000,
  idTableStart: 4900,
  xattrTableStart: INVALID64,
  inodeTableStart: 1000,
  directoryTableStart: 2000,
  fragmentTableStart: 4000,
  exportTableStart: 4500,
};

function codeOf(sb: Partial<Superblock>, size = 8192): string | null {
  try {
    validateSuperblock({ ...good, ...sb }, size);
    return null;
  } catch (e) {
    expect(e).to.be.instanceOf(HpccError);
    return (e as HpccError).code;
  }
}

describe('squashfs reader: superblock validation', () => {
  it('accepts a consistent superblock, with or without optional tables', () => {
    expect(codeOf({})).to.equal(null);
    expect(codeOf({ fragmentCount: 0, fragmentTableStart: 12345678, exportTableStart: INVALID64 })).to.equal(null);
    expect(codeOf({ xattrTableStart: 4950 })).to.equal(null);
    expect(codeOf({ blockSize: 4096, blockLog: 12 })).to.equal(null);
    expect(codeOf({ blockSize: 1 << 20, blockLog: 20 })).to.equal(null);
    // Flags are informational (§2): the kernel ignores them, so must we.
    expect(codeOf({ flags: 0xffff & ~0x0400 })).to.equal(null);
  });

  const bad: Array<[string, Partial<Superblock>, string, number?]> = [
    ['block_log not matching block_size', { blockLog: 16 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['block size 2 MiB', { blockSize: 1 << 21, blockLog: 21 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['block size 2 KiB', { blockSize: 2048, blockLog: 11 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['bytes_used past the image', { bytesUsed: 9000 }, 'HPCC_E_SQFS_TRUNCATED'],
    ['bytes_used below a superblock', { bytesUsed: 50 }, 'HPCC_E_SQFS_TRUNCATED'],
    ['id_count 0', { idCount: 0 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['inode_count 0', { inodeCount: 0 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['inode table after directory table', { inodeTableStart: 2500 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['directory table after id table', { directoryTableStart: 4950 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['inode table inside the superblock', { inodeTableStart: 20 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['id table past bytes_used', { idTableStart: 5000 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['fragment table before the directory table', { fragmentTableStart: 1500 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['fragment table missing', { fragmentTableStart: INVALID64 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['export table past the end', { exportTableStart: 6000 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['xattr header past the end', { xattrTableStart: 4990 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['root ref offset ≥ 8192', { rootInode: 0x2000 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['root ref block outside the inode table', { rootInode: 1000 * 65536 }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['inode_count that cannot fit', { inodeCount: 0xffffffff }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
    ['fragment_count that cannot fit', { fragmentCount: 0xffffffff }, 'HPCC_E_SQFS_BAD_SUPERBLOCK'],
  ];
  for (const [what, patch, code] of bad) {
    it(`rejects ${what}`, () => expect(codeOf(patch)).to.equal(code));
  }
});
