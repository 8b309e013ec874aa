/**
 * Metadata streams (squashfs-format.md §3): a byte stream cut into chunks of
 * exactly 8192 uncompressed bytes (only the last may be shorter), each stored
 * as a u16 header + payload, compressed unless that does not shrink it.
 *
 * A ref to the next byte is `(on-disk bytes flushed so far << 16) | bytes
 * pending in the current chunk`; write() flushes full chunks before it
 * returns so ref() is always exact.
 */
import type { Encoder } from '../codecs/types.js';
import { encodeMetaHeader, makeRef, METADATA_SIZE } from '../layout.js';

/** Compress one metadata chunk and frame it with its header (§3). */
export async function frameMetadataBlock(enc: Encoder, chunk: Uint8Array): Promise<Buffer> {
  const packed = await enc.compress(chunk);
  const compressed = packed.length < chunk.length;
  const payload = compressed ? packed : chunk;
  const out = Buffer.allocUnsafe(2 + payload.length);
  out.writeUInt16LE(encodeMetaHeader(payload.length, compressed), 0);
  out.set(payload, 2);
  return out;
}

export class MetadataWriter {
  private chunk = Buffer.allocUnsafe(METADATA_SIZE);
  private fill = 0;
  /** Framed blocks written so far, in order. */
  readonly blocks: Buffer[] = [];
  /** On-disk bytes of the framed blocks. */
  flushed = 0;
  /** Uncompressed bytes written to the stream (including pending). */
  total = 0;

  constructor(private readonly enc: Encoder) {}

  /** Ref of the next byte written (§3). */
  ref(): number {
    return makeRef(this.flushed, this.fill);
  }

  /**
   * Append bytes. Returns undefined when they fit in the current chunk, else
   * a promise that resolves once the full chunks are compressed; ref() is
   * exact only after that.
   */
  write(bytes: Uint8Array): Promise<void> | undefined {
    if (this.fill + bytes.length < METADATA_SIZE) {
      this.chunk.set(bytes, this.fill);
      this.fill += bytes.length;
      this.total += bytes.length;
      return undefined;
    }
    return this.writeSlow(bytes);
  }

  private async writeSlow(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) {
      const n = Math.min(METADATA_SIZE - this.fill, bytes.length - off);
      this.chunk.set(bytes.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      this.total += n;
      if (this.fill === METADATA_SIZE) await this.flushChunk();
    }
  }

  /** Flush the final partial chunk (call once, at the end of the table). */
  async end(): Promise<void> {
    if (this.fill > 0) await this.flushChunk();
  }

  /** Total on-disk size once ended. */
  get size(): number {
    return this.flushed;
  }

  private async flushChunk(): Promise<void> {
    const block = await frameMetadataBlock(this.enc, this.chunk.subarray(0, this.fill));
    this.blocks.push(block);
    this.flushed += block.length;
    this.fill = 0;
    this.chunk = Buffer.allocUnsafe(METADATA_SIZE);
  }
}

/**
 * A lookup table (fragment, export, id, xattr id; §1, §3): the records cut
 * into 8 KiB metadata blocks, and the u64 index of the blocks' absolute
 * offsets given that the first block is written at `start`.
 */
export async function buildLookupTable(enc: Encoder, records: Uint8Array, start: number): Promise<{ blocks: Buffer; index: Buffer }> {
  const chunks: Promise<Buffer>[] = [];
  for (let off = 0; off < records.length; off += METADATA_SIZE) {
    chunks.push(frameMetadataBlock(enc, records.subarray(off, Math.min(records.length, off + METADATA_SIZE))));
  }
  const blocks = await Promise.all(chunks);
  const index = Buffer.alloc(8 * blocks.length);
  let pos = start;
  blocks.forEach((b, i) => {
    index.writeBigUInt64LE(BigInt(pos), 8 * i);
    pos += b.length;
  });
  return { blocks: Buffer.concat(blocks), index };
}
