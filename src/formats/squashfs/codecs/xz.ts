/**
 * xz (squashfs compressor 4) and lzma (compressor 2, decode only), through
 * liblzma (lzma-native).
 * - xz block = a complete .xz stream with a CRC32 check (§2). The LZMA2
 *   dictionary is max(block_size, 8192): the kernel sizes its decoder from
 *   the options block and fails on a larger dictionary (§9.2).
 *   Options block: u32 dictionary_size, u32 BCJ filter bitmask (we write 0).
 * - Decoding accepts any filter chain liblzma knows, so the BCJ filters of
 *   `mksquashfs -Xbcj x86,arm,…` work.
 * - lzma block = "lzma alone": props byte, u32 dict size, u64 uncompressed
 *   size (the real size), raw stream (§2, §9.2).
 */
import { CodecError, SquashfsFormatError, UsageError } from '../../../errors/index.js';
import { Compressor } from '../layout.js';
import { liblzmaDecodeSync, liblzmaEncodeAsync, lzmaNative, type LzmaNative } from './liblzma.js';
import type { Decoder, Encoder, EncoderOptions } from './types.js';

/** hpcc's default xz preset level (the same as xz and mksquashfs: 6). */
export const XZ_DEFAULT_LEVEL = 6;
const MIN_DICT = 8192;
/** Memory allowed for a decoder beyond its dictionary (liblzma needs ~30 KiB). */
const DECODER_SLACK = 1 << 20;
/** Largest dictionary we agree to allocate for a hostile stream. */
const MAX_DECODER_DICT = 64 << 20;

export function xzDictSize(blockSize: number): number {
  return Math.max(blockSize, MIN_DICT);
}

/**
 * liblzma's preset parameters (lzma_lzma_preset) with our dictionary:
 * lzma-native applies a preset after the explicit dictSize, so we spell the
 * preset out instead of passing it.
 */
function lzma2Options(lib: LzmaNative, level: number, dictSize: number): Record<string, number> {
  const fast = level <= 3;
  const depths = [4, 8, 24, 48];
  return {
    dictSize,
    lc: 3,
    lp: 0,
    pb: 2,
    mode: fast ? lib.MODE_FAST : lib.MODE_NORMAL,
    mf: fast ? (level === 0 ? lib.MF_HC3 : lib.MF_HC4) : lib.MF_BT4,
    niceLen: fast ? (level <= 1 ? 128 : 273) : level === 4 ? 16 : level === 5 ? 32 : 64,
    depth: fast ? depths[level]! : 0,
  };
}

export function xzEncoder(opts: EncoderOptions): Encoder {
  const level = opts.level ?? XZ_DEFAULT_LEVEL;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new UsageError(`xz level must be 0..9, got ${level}`);
  const lib = lzmaNative('xz');
  const dictSize = xzDictSize(opts.blockSize);
  const filters = [{ id: lib.FILTER_LZMA2, options: lzma2Options(lib, level, dictSize) }];
  return {
    id: Compressor.Xz,
    name: 'xz',
    optionsBlock() {
      const buf = new Uint8Array(8);
      const v = new DataView(buf.buffer);
      v.setUint32(0, dictSize, true);
      v.setUint32(4, 0, true); // no BCJ filters
      return buf;
    },
    async compress(src) {
      try {
        return await liblzmaEncodeAsync(lib, (s) => s.streamEncoder_(filters, lib.CHECK_CRC32), src);
      } catch (e) {
        throw new CodecError('HPCC_E_CODEC_FAILED', `xz compression failed: ${(e as Error).message}`, { cause: e });
      }
    },
  };
}

function memlimitFor(options: Uint8Array | null, blockSize: number): number {
  let dict = xzDictSize(blockSize);
  if (options !== null && options.length >= 4) {
    dict = Math.max(dict, new DataView(options.buffer, options.byteOffset, options.length).getUint32(0, true));
  }
  return Math.min(dict, MAX_DECODER_DICT) * 1.05 + DECODER_SLACK;
}

function decodeError(codec: string, src: Uint8Array, reason: string): SquashfsFormatError {
  return new SquashfsFormatError('HPCC_E_SQFS_DECOMPRESS', `${codec} block of ${src.length} bytes does not decompress (${reason})`);
}

export function xzDecoder(options: Uint8Array | null, blockSize: number): Decoder {
  if (options !== null && options.length < 8) {
    throw new SquashfsFormatError('HPCC_E_SQFS_BAD_COMPRESSOR', `xz options block is ${options.length} bytes, expected 8`);
  }
  const lib = lzmaNative('xz');
  const memlimit = Math.floor(memlimitFor(options, blockSize));
  return {
    id: Compressor.Xz,
    name: 'xz',
    decompress(src, maxOut) {
      const r = liblzmaDecodeSync(lib, (s) => s.streamDecoder_(memlimit, 0), src, maxOut);
      if (!r.ok) throw decodeError('xz', src, r.reason);
      return r.data;
    },
  };
}

export function lzmaDecoder(): Decoder {
  const lib = lzmaNative('lzma');
  return {
    id: Compressor.Lzma,
    name: 'lzma',
    decompress(src, maxOut) {
      if (src.length < 13) throw decodeError('lzma', src, 'shorter than the 13-byte header');
      const v = new DataView(src.buffer, src.byteOffset, src.length);
      const lo = v.getUint32(5, true);
      const hi = v.getUint32(9, true);
      const known = !(lo === 0xffffffff && hi === 0xffffffff);
      if (known && (hi !== 0 || lo > maxOut)) throw decodeError('lzma', src, `header declares more than ${maxOut} bytes`);
      // liblzma 5.2's "alone" decoder refuses mksquashfs's headers ("Data is corrupt") although xz 5.4
      // reads them, so decode the raw LZMA1 payload with the header's parameters ourselves.
      const props = src[0]!;
      if (props >= 9 * 5 * 5) throw decodeError('lzma', src, `invalid properties byte ${props}`);
      const dict = v.getUint32(1, true);
      if (dict > MAX_DECODER_DICT) throw decodeError('lzma', src, `dictionary of ${dict} bytes is too large`);
      const options = { dictSize: Math.max(dict, 4096), lc: props % 9, lp: Math.floor(props / 9) % 5, pb: Math.floor(props / 45) };
      const r = liblzmaDecodeSync(lib, (s) => s.rawDecoder_([{ id: lib.FILTER_LZMA1, options }]), src.subarray(13), maxOut, known ? lo : -1);
      if (!r.ok) throw decodeError('lzma', src, r.reason);
      if (known && r.data.length !== lo) throw decodeError('lzma', src, `decoded ${r.data.length} bytes, header says ${lo}`);
      return r.data;
    },
  };
}
