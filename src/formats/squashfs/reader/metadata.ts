/**
 * Metadata blocks (spec §3): a u16 header (bit 15 = stored raw, bits 0..14 =
 * on-disk payload length) followed by a payload that inflates to at most 8192
 * bytes. Tables are streams of such blocks; records may straddle blocks.
 *
 * MetadataReader reads and caches decompressed blocks (bounded LRU);
 * MetaCursor is a ByteSource (layout.ts) over one table that continues into
 * the next block as needed, never past the table's end.
 */
import { HpccError, SquashfsFormatError } from '../../../errors/index.js';
import type { Decoder } from '../codecs/index.js';
import { type ByteSource, METADATA_SIZE, decodeMetaHeader, refBlock, refOffset } from '../layout.js';
import { type ImageSource, Lru } from './source.js';

export interface MetaBlock {
  /** Decompressed payload, 1..8192 bytes. */
  data: Uint8Array;
  /** Absolute position of the next block's header. */
  next: number;
}

/** A table's extent in the image: blocks must start at or after `start` and end at or before `end`. */
export interface TableBounds {
  name: string;
  start: number;
  end: number;
}

export function decodeError(what: string, e: unknown): HpccError {
  if (e instanceof HpccError) return e;
  return new SquashfsFormatError('HPCC_E_SQFS_DECOMPRESS', `${what} does not decompress (${(e as Error)?.message ?? e})`, {
    cause: e,
  });
}

export class MetadataReader {
  private readonly cache: Lru<number, MetaBlock>;

  constructor(
    private readonly src: ImageSource,
    private readonly decoder: Decoder,
    cacheBlocks = 512,
  ) {
    this.cache = new Lru(cacheBlocks);
  }

  /** Read the metadata block whose header is at absolute `pos`; it must end at or before `limit`. */
  readBlock(pos: number, limit: number, what: string): MetaBlock {
    const hit = this.cache.get(pos);
    if (hit !== undefined) {
      if (hit.next > limit) throw this.outside(pos, limit, what);
      return hit;
    }
    if (!Number.isSafeInteger(pos) || pos < 0 || pos + 2 > limit) throw this.outside(pos, limit, what);
    const hdr = this.src.read(pos, 2);
    const { length, compressed } = decodeMetaHeader(hdr[0]! | (hdr[1]! << 8));
    if (length === 0 || length > METADATA_SIZE) {
      throw new SquashfsFormatError(
        'HPCC_E_SQFS_BAD_METADATA',
        `${what}: metadata block at offset ${pos} has a payload of ${length} bytes (must be 1..${METADATA_SIZE})`,
      );
    }
    const next = pos + 2 + length;
    if (next > limit) throw this.outside(pos, limit, what);
    const payload = this.src.read(pos + 2, length);
    let data: Uint8Array;
    if (compressed) {
      try {
        data = this.decoder.decompress(payload, METADATA_SIZE);
      } catch (e) {
        throw decodeError(`${what}: metadata block at offset ${pos}`, e);
      }
      if (data.length === 0 || data.length > METADATA_SIZE) {
        throw new SquashfsFormatError(
          'HPCC_E_SQFS_BAD_METADATA',
          `${what}: metadata block at offset ${pos} inflates to ${data.length} bytes (must be 1..${METADATA_SIZE})`,
        );
      }
    } else {
      data = payload;
    }
    const blk = { data, next };
    this.cache.set(pos, blk);
    return blk;
  }

  clear(): void {
    this.cache.clear();
  }

  private outside(pos: number, limit: number, what: string): SquashfsFormatError {
    return new SquashfsFormatError(
      'HPCC_E_SQFS_OUT_OF_BOUNDS',
      `${what}: metadata block at offset ${pos} runs past the end of its table (offset ${limit})`,
    );
  }
}

/** Sequential reader over one metadata table, starting at a ref (block relative to the table, offset in block). */
export class MetaCursor implements ByteSource {
  private pos: number; // absolute position of the current block header
  private block: MetaBlock | null = null;
  private off: number;

  constructor(
    private readonly meta: MetadataReader,
    private readonly table: TableBounds,
    ref: number,
  ) {
    const blk = refBlock(ref);
    this.off = refOffset(ref);
    if (!Number.isSafeInteger(ref) || ref < 0 || this.off >= METADATA_SIZE || table.start + blk >= table.end) {
      throw new SquashfsFormatError(
        'HPCC_E_SQFS_BAD_REF',
        `${table.name}: reference 0x${ref.toString(16)} (block ${blk}, offset ${this.off}) is outside the table`,
      );
    }
    this.pos = table.start + blk;
  }

  static at(meta: MetadataReader, table: TableBounds, block: number, offset: number): MetaCursor {
    if (!Number.isSafeInteger(block) || block < 0 || !Number.isInteger(offset) || offset < 0 || offset >= 0x10000) {
      throw new SquashfsFormatError('HPCC_E_SQFS_BAD_REF', `${table.name}: position ${block}:${offset} is invalid`);
    }
    return new MetaCursor(meta, table, block * 0x10000 + offset);
  }

  private load(): MetaBlock {
    if (this.block === null) {
      this.block = this.meta.readBlock(this.pos, this.table.end, this.table.name);
      if (this.off > this.block.data.length) {
        throw new SquashfsFormatError(
          'HPCC_E_SQFS_BAD_REF',
          `${this.table.name}: offset ${this.off} is past the end of the ${this.block.data.length}-byte block at ${this.pos}`,
        );
      }
    }
    return this.block;
  }

  private advance(): MetaBlock {
    const cur = this.load();
    if (cur.next >= this.table.end) {
      throw new SquashfsFormatError('HPCC_E_SQFS_TRUNCATED', `${this.table.name}: record runs past the end of the table`);
    }
    this.pos = cur.next;
    this.block = null;
    this.off = 0;
    return this.load();
  }

  take(n: number): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new SquashfsFormatError('HPCC_E_SQFS_BAD_METADATA', `${this.table.name}: invalid record length ${n}`);
    }
    let blk = this.load();
    if (this.off + n <= blk.data.length) {
      const out = blk.data.subarray(this.off, this.off + n);
      this.off += n;
      return out;
    }
    // Straddles blocks: gather pieces first (each one real, bounded data), allocate the result last.
    const pieces: Uint8Array[] = [];
    let need = n;
    for (;;) {
      const avail = blk.data.length - this.off;
      const k = Math.min(avail, need);
      if (k > 0) pieces.push(blk.data.subarray(this.off, this.off + k));
      this.off += k;
      need -= k;
      if (need === 0) break;
      blk = this.advance();
    }
    const out = new Uint8Array(n);
    let p = 0;
    for (const piece of pieces) {
      out.set(piece, p);
      p += piece.length;
    }
    return out;
  }

  skip(n: number): void {
    let need = n;
    let blk = this.load();
    while (need > 0) {
      const k = Math.min(blk.data.length - this.off, need);
      this.off += k;
      need -= k;
      if (need > 0) blk = this.advance();
    }
  }
}
