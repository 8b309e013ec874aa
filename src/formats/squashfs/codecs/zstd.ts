/**
 * zstd (squashfs compressor 6). Each block is one zstd frame (§2). The
 * encoder compresses a whole block in one shot (ZSTD_compress), so the frame
 * declares its content size and its window is the block itself, within the
 * kernel's max(block_size, 8192) limit (§9.2). Options block: u32 level.
 */
import { SquashfsFormatError, UsageError } from '../../../errors/index.js';
import { Compressor } from '../layout.js';
import { codecPool } from './pool.js';
import type { Decoder, Encoder, EncoderOptions } from './types.js';
import { zstdWasm } from './zstdwasm.js';

/** hpcc's default zstd level (mksquashfs: 15). See docs/compression.md. */
export const ZSTD_DEFAULT_LEVEL = 3;
/** mksquashfs's default, assumed when an image has no options block. */
export const ZSTD_SQUASHFS_DEFAULT_LEVEL = 15;

export async function zstdEncoder(opts: EncoderOptions): Promise<Encoder> {
  const level = opts.level ?? ZSTD_DEFAULT_LEVEL;
  if (!Number.isInteger(level) || level < 1 || level > 22) {
    throw new UsageError(`zstd level must be 1..22, got ${level}`);
  }
  await zstdWasm(); // fail early (typed) if the library is missing
  const pool = codecPool();
  return {
    id: Compressor.Zstd,
    name: 'zstd',
    optionsBlock() {
      const buf = new Uint8Array(4);
      new DataView(buf.buffer).setUint32(0, level, true);
      return buf;
    },
    compress(src) {
      return pool.run('zstd', level, src);
    },
  };
}

export async function zstdDecoder(): Promise<Decoder> {
  const wasm = await zstdWasm();
  return {
    id: Compressor.Zstd,
    name: 'zstd',
    decompress(src, maxOut) {
      const out = wasm.decompress(src, maxOut);
      if (out === null) {
        throw new SquashfsFormatError(
          'HPCC_E_SQFS_DECOMPRESS',
          `zstd block of ${src.length} bytes is corrupt or decodes to more than ${maxOut} bytes`,
        );
      }
      return out;
    },
  };
}
