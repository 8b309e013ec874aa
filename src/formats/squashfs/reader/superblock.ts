/**
 * Strict superblock validation (spec §2, §8, §9.1) before any field is trusted:
 * block size/log, table order, every start inside bytes_used, bytes_used inside
 * the image, id_count ≥ 1, counts that cannot fit the image.
 */
import { SquashfsFormatError } from '../../../errors/index.js';
import {
  Flag,
  INVALID64,
  MAX_BLOCK_LOG,
  METADATA_SIZE,
  MIN_BLOCK_LOG,
  SUPERBLOCK_SIZE,
  type Superblock,
  refBlock,
  refOffset,
} from '../layout.js';

function bad(msg: string): SquashfsFormatError {
  return new SquashfsFormatError('HPCC_E_SQFS_BAD_SUPERBLOCK', `bad superblock: ${msg}`);
}

export function validateSuperblock(sb: Superblock, imageSize: number): void {
  if (sb.blockLog < MIN_BLOCK_LOG || sb.blockLog > MAX_BLOCK_LOG || sb.blockSize !== 2 ** sb.blockLog) {
    throw bad(`block_size ${sb.blockSize} / block_log ${sb.blockLog} (must be a power of two 4 KiB..1 MiB and match)`);
  }
  if (sb.bytesUsed === INVALID64 || sb.bytesUsed < SUPERBLOCK_SIZE || sb.bytesUsed > imageSize) {
    throw new SquashfsFormatError(
      'HPCC_E_SQFS_TRUNCATED',
      `bad superblock: bytes_used ${sb.bytesUsed} does not fit the image (${imageSize} bytes)`,
      { hint: 'The image is truncated or the partition offset/size is wrong.' },
    );
  }
  if (sb.inodeCount < 1) throw bad('inode_count is 0');
  if (sb.idCount < 1) throw bad('id_count is 0');
  const end = sb.bytesUsed;
  const dataStart = SUPERBLOCK_SIZE + (sb.flags & Flag.COMP_OPT ? 2 : 0);
  for (const [name, v] of [
    ['inode_table_start', sb.inodeTableStart],
    ['directory_table_start', sb.directoryTableStart],
    ['id_table_start', sb.idTableStart],
  ] as const) {
    if (v === INVALID64 || v < dataStart || v >= end) throw bad(`${name} ${v} is outside ${dataStart}..${end}`);
  }
  if (sb.inodeTableStart >= sb.directoryTableStart) throw bad('inode table does not precede the directory table');
  if (sb.directoryTableStart >= sb.idTableStart) throw bad('directory table does not precede the id table');
  if (sb.fragmentCount > 0) {
    const f = sb.fragmentTableStart;
    if (f === INVALID64 || f <= sb.directoryTableStart || f >= end) throw bad(`fragment_table_start ${f} is out of place`);
    // Each fragment is a data block of at least 1 byte (16-byte entries, 512 per block).
    if (sb.fragmentCount > end) throw bad(`fragment_count ${sb.fragmentCount} cannot fit in ${end} bytes`);
  }
  if (sb.exportTableStart !== INVALID64) {
    const x = sb.exportTableStart;
    if (x <= sb.directoryTableStart || x >= end) throw bad(`export_table_start ${x} is out of place`);
  }
  if (sb.xattrTableStart !== INVALID64) {
    const x = sb.xattrTableStart;
    if (x <= sb.directoryTableStart || x + 16 > end) throw bad(`xattr_table_start ${x} is out of place`);
  }
  // Every inode takes at least 20 bytes of inode table; 8192 decompressed bytes per ≥3 on-disk bytes.
  const inodeTableBytes = sb.directoryTableStart - sb.inodeTableStart;
  if (sb.inodeCount > Math.ceil(inodeTableBytes / 3) * Math.ceil(METADATA_SIZE / 20)) {
    throw bad(`inode_count ${sb.inodeCount} cannot fit in an inode table of ${inodeTableBytes} bytes`);
  }
  if (refOffset(sb.rootInode) >= METADATA_SIZE || sb.rootInode === INVALID64 || refBlock(sb.rootInode) >= inodeTableBytes) {
    throw bad(`root inode reference 0x${sb.rootInode.toString(16)} is outside the inode table`);
  }
}
