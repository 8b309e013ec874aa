/**
 * gzip (squashfs compressor 1): each block is a zlib (RFC 1950) stream,
 * compressed on the libuv threadpool by libdeflate (native addon, see
 * libdeflate.ts) when it is built, else by Node's bundled zlib. Env
 * HPCC_GZIP_ENGINE=zlib|libdeflate forces one engine (libdeflate then fails
 * with HPCC_E_CODEC_MISSING when the addon does not load).
 * Options block (§2): u32 level, u16 window_bits, u16 strategies; written
 * only when not the defaults (level 9, window 15), as mksquashfs does.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { CodecError, SquashfsFormatError, UsageError } from '../../../errors/index.js';
import { Compressor } from '../layout.js';
import { libdeflateLoadError, loadLibdeflate } from './libdeflate.js';
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

export type GzipEngine = 'zlib' | 'libdeflate';

export interface GzipEncoder extends Encoder {
  /** The engine that compresses this encoder's blocks. */
  readonly engine: GzipEngine;
}

/** The engine asked for by HPCC_GZIP_ENGINE, or undefined for automatic (libdeflate when it loads). */
export function requestedGzipEngine(env: NodeJS.ProcessEnv = process.env): GzipEngine | undefined {
  const v = env.HPCC_GZIP_ENGINE;
  if (v === undefined || v === '' || v === 'auto') return undefined;
  if (v === 'zlib' || v === 'libdeflate') return v;
  throw new UsageError(`HPCC_GZIP_ENGINE must be zlib, libdeflate or auto, got ${JSON.stringify(v)}`);
}

/**
 * @param engine forces an engine (tests, golden images); default: HPCC_GZIP_ENGINE,
 *   else libdeflate when its addon loads, else Node's zlib.
 */
export function gzipEncoder(opts: EncoderOptions, engine?: GzipEngine): GzipEncoder {
  const level = opts.level ?? GZIP_DEFAULT_LEVEL;
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw new UsageError(`gzip level must be 1..9, got ${level}`);
  }
  const windowBits = 15;
  const want = engine ?? requestedGzipEngine();
  const addon = want === 'zlib' ? null : loadLibdeflate();
  if (want === 'libdeflate' && !addon) {
    throw new CodecError('HPCC_E_CODEC_MISSING', 'the libdeflate gzip engine (dist/native/deflate.node) did not load', {
      hint: 'Install libdeflate-dev and run `npm run build`, or unset HPCC_GZIP_ENGINE to use Node\'s zlib.',
      cause: libdeflateLoadError(),
    });
  }
  const compress = addon
    ? (src: Uint8Array) => addon.compress(src, level)
    : (src: Uint8Array) => deflate(src, { level, windowBits, memLevel: GZIP_MEM_LEVEL });
  return {
    id: Compressor.Gzip,
    name: 'gzip',
    engine: addon ? 'libdeflate' : 'zlib',
    optionsBlock() {
      if (level === 9) return null;
      const buf = new Uint8Array(8);
      const v = new DataView(buf.buffer);
      v.setUint32(0, level, true);
      v.setUint16(4, windowBits, true);
      v.setUint16(6, 0x1, true); // strategy: default
      return buf;
    },
    compress,
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
