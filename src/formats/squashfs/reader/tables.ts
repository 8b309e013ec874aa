/**
 * Lookup tables (spec §3 "Lookup tables", §4 fragments, §7 ids/xattr ids):
 * fixed-size records in 8 KiB metadata blocks, located through a raw u64
 * index array of absolute block positions. The index array is checked
 * (inside the image, strictly increasing, blocks before the array) before
 * any record is read.
 */
import { SquashfsFormatError } from '../../../errors/index.js';
import { METADATA_SIZE, getU64 } from '../layout.js';
import type { MetadataReader } from './metadata.js';
import type { ImageSource } from './source.js';

export class LookupTable {
  private readonly index: number[];

  /**
   * @param indexStart absolute offset of the u64 index array
   * @param count number of records
   * @param entrySize record size (divides 8192)
   * @param lowerBound no block may start before this offset
   * @param limit the index array must end at or before this offset
   */
  constructor(
    src: ImageSource,
    private readonly meta: MetadataReader,
    readonly name: string,
    private readonly indexStart: number,
    readonly count: number,
    private readonly entrySize: number,
    lowerBound: number,
    limit: number,
  ) {
    const blocks = Math.ceil((count * entrySize) / METADATA_SIZE);
    if (!Number.isSafeInteger(indexStart) || indexStart < lowerBound || indexStart + 8 * blocks > limit) {
      throw new SquashfsFormatError(
        'HPCC_E_SQFS_BAD_TABLE',
        `${name} table: index of ${blocks} entries at offset ${indexStart} does not fit in the image`,
      );
    }
    const raw = src.read(indexStart, 8 * blocks);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    this.index = [];
    let prev = lowerBound - 1;
    for (let i = 0; i < blocks; i++) {
      const pos = getU64(view, 8 * i);
      if (pos <= prev || pos + 2 > indexStart) {
        throw new SquashfsFormatError(
          'HPCC_E_SQFS_BAD_TABLE',
          `${name} table: index entry ${i} (offset ${pos}) is out of order or outside the table`,
        );
      }
      this.index.push(pos);
      prev = pos;
    }
  }

  /** The absolute offset of the table's first metadata block (or the index itself when empty). */
  get firstBlock(): number {
    return this.index[0] ?? this.indexStart;
  }

  /** Record `i` (a view into a cached block; copy it to keep it). */
  entry(i: number): Uint8Array {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) {
      throw new SquashfsFormatError('HPCC_E_SQFS_BAD_INDEX', `${this.name} index ${i} is out of range (${this.count} entries)`);
    }
    const byte = i * this.entrySize;
    const b = Math.floor(byte / METADATA_SIZE);
    const off = byte % METADATA_SIZE;
    const limit = b + 1 < this.index.length ? this.index[b + 1]! : this.indexStart;
    const blk = this.meta.readBlock(this.index[b]!, limit, `${this.name} table`);
    if (off + this.entrySize > blk.data.length) {
      throw new SquashfsFormatError(
        'HPCC_E_SQFS_BAD_TABLE',
        `${this.name} table: block ${b} holds ${blk.data.length} bytes, too few for entry ${i}`,
      );
    }
    return blk.data.subarray(off, off + this.entrySize);
  }
}
