/**
 * lz4 (squashfs compressor 5): raw LZ4 blocks, never the frame format (§2).
 * The options block is always written (the kernel refuses lz4 images
 * without it): u32 version 1, u32 flags (0x1 = HC).
 * - fast mode: lz4-napi (lz4_flex, Rust) on the libuv threadpool; its output
 *   is a u32 LE size prefix followed by the raw block, so the prefix is cut.
 * - HC mode: our TypeScript encoder with a deep hash-chain search, run in
 *   the worker pool.
 * Decoding is our bounded TypeScript decoder (lz4block.ts).
 */
import { SquashfsFormatError, UsageError } from '../../../errors/index.js';
import { Compressor } from '../layout.js';
import { loadCodecLibrary } from './load.js';
import { Lz4BlockError, lz4DecodeBlock } from './lz4block.js';
import { codecPool } from './pool.js';
import type { Decoder, Encoder, EncoderOptions } from './types.js';

export const LZ4_VERSION_LEGACY = 1;
export const LZ4_FLAG_HC = 0x1;

interface Lz4Napi {
  compress(data: Uint8Array): Promise<Uint8Array>;
}

export function lz4Encoder(opts: EncoderOptions): Encoder {
  const hc = opts.hc ?? false;
  if (opts.level !== undefined) {
    throw new UsageError('lz4 takes no compression level; use the hc option for high compression');
  }
  const lib = hc ? null : loadCodecLibrary<Lz4Napi>('lz4-napi', 'lz4');
  const pool = hc ? codecPool() : null;
  return {
    id: Compressor.Lz4,
    name: 'lz4',
    optionsBlock() {
      const buf = new Uint8Array(8);
      const v = new DataView(buf.buffer);
      v.setUint32(0, LZ4_VERSION_LEGACY, true);
      v.setUint32(4, hc ? LZ4_FLAG_HC : 0, true);
      return buf;
    },
    async compress(src) {
      if (pool) return pool.run('lz4hc', 0, src);
      const out = await lib!.compress(src);
      return out.subarray(4); // drop lz4_flex's u32 size prefix: the rest is the raw block
    },
  };
}

/** Checks the options block: version must be 1 (the kernel refuses others). */
export function lz4Decoder(options: Uint8Array | null): Decoder {
  if (options !== null) {
    if (options.length < 8) {
      throw new SquashfsFormatError('HPCC_E_SQFS_BAD_COMPRESSOR', `lz4 options block is ${options.length} bytes, expected 8`);
    }
    const version = new DataView(options.buffer, options.byteOffset, options.length).getUint32(0, true);
    if (version !== LZ4_VERSION_LEGACY) {
      throw new SquashfsFormatError('HPCC_E_SQFS_BAD_COMPRESSOR', `unsupported lz4 stream version ${version}`);
    }
  }
  return {
    id: Compressor.Lz4,
    name: 'lz4',
    decompress(src, maxOut) {
      try {
        return lz4DecodeBlock(src, maxOut);
      } catch (e) {
        if (!(e instanceof Lz4BlockError)) throw e;
        throw new SquashfsFormatError('HPCC_E_SQFS_DECOMPRESS', `lz4 block does not decompress (${e.message})`, { cause: e });
      }
    },
  };
}
