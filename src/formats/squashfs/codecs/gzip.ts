/**
 * gzip (squashfs compressor 1): each block is a zlib (RFC 1950) stream,
 * compressed with Node's bundled zlib on the libuv threadpool.
 * Options block (§2): u32 level, u16 window_bits, u16 strategies; written
 * only when not the defaults (level 9, window 15), as mksquashfs does.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { SquashfsFormatError, UsageError } from '../../../errors/index.js';
import { Compressor } from '../layout.js';
import type { Decoder, Encoder, EncoderOptions } from './types.js';

const deflate = promisify(zlib.deflate) as (buf: Uint8Array, opts: zlib.ZlibOptions) => Promise<Buffer>;

/**
 * zlib memory level for compression. Node bundles Chromium's zlib, which at
 * the default memLevel 8 produces ~1.3-1.6 % larger 128 KiB blocks than the
 * system zlib mksquashfs uses (same level); memLevel 7 narrows that to
 * ~0.8-1.1 % and is no slower (docs/compression.md). It does not affect the
 * stream format or decoders.
 */
export const GZIP_MEM_LEVEL = 7;

export const GZIP_DEFAULT_LEVEL = 6;

export function gzipEncoder(opts: EncoderOptions): Encoder {
  const level = opts.level ?? GZIP_DEFAULT_LEVEL;
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw new UsageError(`gzip level must be 1..9, got ${level}`);
  }
  const windowBits = 15;
  return {
    id: Compressor.Gzip,
    name: 'gzip',
    optionsBlock() {
      if (level === 9) return null;
      const buf = new Uint8Array(8);
      const v = new DataView(buf.buffer);
      v.setUint32(0, level, true);
      v.setUint16(4, windowBits, true);
      v.setUint16(6, 0x1, true); // strategy: default
      return buf;
    },
    compress(src) {
      return deflate(src, { level, windowBits, memLevel: GZIP_MEM_LEVEL });
    },
  };
}

export function gzipDecoder(): Decoder {
  return {
    id: Compressor.Gzip,
    name: 'gzip',
    decompress(src, maxOut) {
      let out: Buffer;
      try {
        out = zlib.inflateSync(src, { maxOutputLength: Math.max(1, maxOut) });
      } catch (e) {
        throw new SquashfsFormatError('HPCC_E_SQFS_DECOMPRESS', `gzip block does not decompress (${(e as Error).message})`, {
          cause: e,
        });
      }
      // zlib checks maxOutputLength per output chunk, so enforce the exact bound here
      if (out.length > maxOut) {
        throw new SquashfsFormatError('HPCC_E_SQFS_DECOMPRESS', `gzip block decodes to more than ${maxOut} bytes`);
      }
      return out;
    },
  };
}
