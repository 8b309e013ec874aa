/**
 * Regular-file data (spec §4): contiguous data blocks described by size words
 * (bits 0..23 on-disk size, bit 24 stored raw, 0 = sparse block) and an
 * optional tail in a fragment block. Every block is checked against the image
 * and the block size; decompression is bounded by block_size.
 */
import { SquashfsFormatError } from '../../../errors/index.js';
import type { Decoder } from '../codecs/index.js';
import {
  DATA_SIZE_MASK,
  DATA_UNCOMPRESSED,
  type FileInode,
  INVALID32,
  decodeFragmentEntry,
} from '../layout.js';
import { decodeError } from './metadata.js';
import { type ImageSource, Lru } from './source.js';
import type { LookupTable } from './tables.js';

/** One chunk of file content: real bytes, or a hole of `length` zero bytes. */
export type Chunk = { data: Uint8Array; length: number } | { data: null; length: number };

export class FileDataReader {
  private readonly fragCache = new Lru<number, Uint8Array>(8);

  constructor(
    private readonly src: ImageSource,
    private readonly decoder: Decoder,
    private readonly blockSize: number,
    private readonly dataEnd: number,
    private readonly fragments: LookupTable | null,
  ) {}

  /** The file's content, one block (or hole, or tail) at a time, in order. */
  *chunks(ino: FileInode): Generator<Chunk> {
    const bs = this.blockSize;
    const size = ino.fileSize;
    const hasFrag = ino.fragment !== INVALID32 && size % bs !== 0;
    const blocks = ino.blockSizes.length;
    // decodeInode sized the list from file_size, so blocks*bs covers the file up to the tail.
    let pos = ino.blocksStart;
    for (let k = 0; k < blocks; k++) {
      const want = Math.min(bs, size - k * bs);
      if (want <= 0) break;
      const w = ino.blockSizes[k]!;
      const onDisk = w & DATA_SIZE_MASK;
      if (w === 0) {
        yield { data: null, length: want };
        continue;
      }
      const data = this.readBlock(pos, onDisk, (w & DATA_UNCOMPRESSED) !== 0, `block ${k} of inode ${ino.inodeNumber}`);
      pos += onDisk;
      yield { data: fit(data, want), length: want };
    }
    if (hasFrag) {
      const tail = size % bs;
      const frag = this.fragment(ino.fragment);
      if (ino.fragOffset > frag.length || ino.fragOffset + tail > frag.length) {
        throw new SquashfsFormatError(
          'HPCC_E_SQFS_BAD_FRAGMENT',
          `inode ${ino.inodeNumber}: tail of ${tail} bytes at offset ${ino.fragOffset} is outside fragment ${ino.fragment} (${frag.length} bytes)`,
        );
      }
      yield { data: frag.subarray(ino.fragOffset, ino.fragOffset + tail), length: tail };
    }
  }

  private readBlock(pos: number, onDisk: number, raw: boolean, what: string): Uint8Array {
    if (onDisk > this.blockSize || onDisk === 0) {
      throw new SquashfsFormatError('HPCC_E_SQFS_BAD_BLOCK', `${what}: on-disk size ${onDisk} is invalid`);
    }
    if (!Number.isSafeInteger(pos) || pos < 0 || pos + onDisk > this.dataEnd) {
      throw new SquashfsFormatError(
        'HPCC_E_SQFS_OUT_OF_BOUNDS',
        `${what}: ${onDisk} bytes at offset ${pos} lie outside the data area (ends at ${this.dataEnd})`,
      );
    }
    const bytes = this.src.read(pos, onDisk);
    if (raw) return bytes;
    let out: Uint8Array;
    try {
      out = this.decoder.decompress(bytes, this.blockSize);
    } catch (e) {
      throw decodeError(what, e);
    }
    if (out.length > this.blockSize) {
      throw new SquashfsFormatError('HPCC_E_SQFS_BAD_BLOCK', `${what}: inflates to ${out.length} bytes (> block size)`);
    }
    return out;
  }

  private fragment(index: number): Uint8Array {
    const hit = this.fragCache.get(index);
    if (hit) return hit;
    if (this.fragments === null) {
      throw new SquashfsFormatError('HPCC_E_SQFS_BAD_FRAGMENT', `fragment ${index} referenced but the image has no fragment table`);
    }
    const e = decodeFragmentEntry(this.fragments.entry(index));
    if (e.size & 0xfe000000) {
      throw new SquashfsFormatError('HPCC_E_SQFS_BAD_FRAGMENT', `fragment ${index} has an invalid size word 0x${e.size.toString(16)}`);
    }
    const data = this.readBlock(e.start, e.size & DATA_SIZE_MASK, (e.size & DATA_UNCOMPRESSED) !== 0, `fragment block ${index}`);
    this.fragCache.set(index, data);
    return data;
  }
}

/** A block's bytes trimmed or zero-padded to the length it stands for (§4: short blocks are padded). */
function fit(data: Uint8Array, want: number): Uint8Array {
  if (data.length === want) return data;
  if (data.length > want) return data.subarray(0, want);
  const out = new Uint8Array(want);
  out.set(data);
  return out;
}
