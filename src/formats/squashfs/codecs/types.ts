/**
 * Block codecs for squashfs (§2 "Compressed stream format"). A codec compresses
 * one data/fragment/metadata block at a time; the caller stores the block raw
 * when the result is not smaller. Decoders are synchronous and bounded: they
 * never produce more than `maxOut` bytes and throw a typed error instead.
 */
import type { Compressor } from '../layout.js';

export type CodecName = 'gzip' | 'xz' | 'lz4' | 'zstd' | 'lzo' | 'lzma';

export interface EncoderOptions {
  /** Compression level; each codec has its own default and range. */
  level?: number;
  /** Image block size (xz dictionary and zstd window are capped to it). */
  blockSize: number;
  /** lz4 only: high-compression mode. */
  hc?: boolean;
}

export interface Encoder {
  readonly id: Compressor;
  readonly name: CodecName;
  /** Payload of the compressor options block (without its 2-byte header), or null when none is written. */
  optionsBlock(): Uint8Array | null;
  /** Compress one block (≤ block size bytes). Runs off the main thread where the codec allows. */
  compress(src: Uint8Array): Promise<Uint8Array>;
}

export interface Decoder {
  readonly id: Compressor;
  readonly name: CodecName;
  /** Decompress one block; throws HPCC_E_SQFS_DECOMPRESS if corrupt or larger than maxOut. */
  decompress(src: Uint8Array, maxOut: number): Uint8Array;
}
