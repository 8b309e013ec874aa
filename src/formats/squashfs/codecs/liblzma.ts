/**
 * Thin synchronous/asynchronous drivers over lzma-native's native stream
 * (liblzma 5.x). lzma-native's own JS API is stream based; its native Stream
 * object codes a buffer either on the calling thread (sync) or on the libuv
 * threadpool (async), reporting output through `bufferHandler`.
 *
 * Bounding: the native sync call keeps all output of one call in memory, so
 * the decoder feeds input in small slices and stops as soon as the output
 * passes maxOut. One slice can expand at most ~7000× (LZMA's best case), so
 * memory stays below FEED_SLICE × 7000 ≈ 14 MiB even for a bomb.
 */
import { loadCodecLibrary } from './load.js';

export interface LzmaFilter {
  id: unknown;
  options?: Record<string, number>;
}

interface NativeStream {
  bufferHandler?: (buf: Buffer | null, processed: number | undefined, err: Error | null | undefined) => void;
  streamEncoder_(filters: LzmaFilter[], check: number): void;
  streamDecoder_(memlimit: number | null, flags: number): void;
  aloneDecoder_(memlimit: number | null): void;
  rawDecoder_(filters: LzmaFilter[]): void;
  setBufsize(n: number): number;
  code(buf: Buffer | null, async: boolean): void;
}

export interface LzmaNative {
  Stream: new () => NativeStream;
  FILTER_LZMA1: unknown;
  FILTER_LZMA2: unknown;
  FILTER_X86: unknown;
  FILTER_POWERPC: unknown;
  FILTER_IA64: unknown;
  FILTER_ARM: unknown;
  FILTER_ARMTHUMB: unknown;
  FILTER_SPARC: unknown;
  CHECK_CRC32: number;
  MODE_FAST: number;
  MODE_NORMAL: number;
  MF_HC3: number;
  MF_HC4: number;
  MF_BT4: number;
}

export function lzmaNative(codec: string): LzmaNative {
  return loadCodecLibrary<LzmaNative>('lzma-native', codec);
}

const FEED_SLICE = 2048;

export type DecodeResult = { ok: true; data: Uint8Array } | { ok: false; reason: string };

/**
 * Decode src with a fresh stream set up by `init` (xz stream or lzma-alone
 * decoder), synchronously, producing at most maxOut bytes.
 */
export function liblzmaDecodeSync(
  lib: LzmaNative,
  init: (s: NativeStream) => void,
  src: Uint8Array,
  maxOut: number,
  /** A raw decoder may not see an end marker: accept input exhaustion once this many bytes came out. */
  expectedSize = -1,
): DecodeResult {
  const s = new lib.Stream();
  try {
    init(s);
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
  s.setBufsize(65536);
  const out = new Uint8Array(maxOut);
  let n = 0;
  let ended = false;
  let error: string | null = null;
  s.bufferHandler = (buf, processed, err) => {
    if (err) error ??= err.message;
    else if (buf) {
      if (buf.length > maxOut - n) error ??= `decodes to more than ${maxOut} bytes`;
      else {
        out.set(buf, n);
        n += buf.length;
      }
    } else if (buf === null && processed === undefined) ended = true;
  };
  const input = Buffer.from(src.buffer, src.byteOffset, src.length);
  for (let off = 0; off < input.length && !ended && error === null; off += FEED_SLICE) {
    s.code(input.subarray(off, Math.min(input.length, off + FEED_SLICE)), false);
  }
  if (!ended && error === null) s.code(null, false);
  if (error !== null && !(expectedSize >= 0 && n === expectedSize)) return { ok: false, reason: error };
  if (!ended && !(expectedSize >= 0 && n === expectedSize)) return { ok: false, reason: 'truncated stream' };
  return { ok: true, data: out.subarray(0, n) };
}

/** Encode src with a fresh stream set up by `init`, on the libuv threadpool. */
export function liblzmaEncodeAsync(lib: LzmaNative, init: (s: NativeStream) => void, src: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = new lib.Stream();
    init(s);
    const parts: Buffer[] = [];
    s.bufferHandler = (buf, processed, err) => {
      if (err) reject(err);
      else if (buf) parts.push(buf);
      else if (buf === null && processed === undefined) resolve(Buffer.concat(parts));
    };
    s.code(Buffer.from(src.buffer, src.byteOffset, src.length), true);
    s.code(null, true);
  });
}
