/**
 * Codec registry: maps names and squashfs compressor ids to encoders/decoders.
 * Optional codec libraries are loaded lazily so `hpcc` starts fast and a
 * missing library gives a typed error naming the fix.
 */
import { CodecError, SquashfsFormatError } from '../../../errors/index.js';
import { Compressor } from '../layout.js';
import { gzipDecoder, gzipEncoder } from './gzip.js';
import type { CodecName, Decoder, Encoder, EncoderOptions } from './types.js';

export type { CodecName, Decoder, Encoder, EncoderOptions } from './types.js';

export const CODEC_IDS: Record<CodecName, Compressor> = {
  gzip: Compressor.Gzip,
  lzma: Compressor.Lzma,
  lzo: Compressor.Lzo,
  xz: Compressor.Xz,
  lz4: Compressor.Lz4,
  zstd: Compressor.Zstd,
};

export function codecName(id: number): CodecName | undefined {
  return (Object.keys(CODEC_IDS) as CodecName[]).find((k) => CODEC_IDS[k] === id);
}

/** Codecs hpcc can write. */
export const ENCODABLE: readonly CodecName[] = ['gzip', 'zstd', 'xz', 'lz4'];
/** Codecs hpcc can read. */
export const DECODABLE: readonly CodecName[] = ['gzip', 'zstd', 'xz', 'lz4', 'lzo', 'lzma'];

/**
 * An encoder for `name`. The codec modules are small; the npm libraries
 * behind them (lzma-native, @bokuweb/zstd-wasm, lz4-napi) are required only
 * when an encoder or decoder is created (load.ts); compress() runs on the libuv threadpool (gzip, xz, lz4) or in
 * worker threads (zstd, lz4 HC).
 */
// gzip (the default, Node's zlib) is imported eagerly; the other codec modules
// are imported on first use, so commands that only read gzip images (the
// launcher's start-up path) do not pay for worker pools and wasm loaders.
export async function createEncoder(name: CodecName, opts: EncoderOptions): Promise<Encoder> {
  switch (name) {
    case 'gzip':
      return gzipEncoder(opts);
    case 'zstd':
      return (await import('./zstd.js')).zstdEncoder(opts);
    case 'xz':
      return (await import('./xz.js')).xzEncoder(opts);
    case 'lz4':
      return (await import('./lz4.js')).lz4Encoder(opts);
    default:
      throw new CodecError('HPCC_E_CODEC_UNSUPPORTED', `hpcc cannot write ${name}-compressed squashfs images`, {
        hint: 'Use --comp gzip (the most widely supported codec).',
      });
  }
}

/**
 * A decoder for an image's compressor. `options` is the payload of the image's
 * compressor options block, or null when absent.
 */
export async function createDecoder(id: number, options: Uint8Array | null, blockSize: number): Promise<Decoder> {
  switch (id) {
    case Compressor.Gzip:
      return gzipDecoder();
    case Compressor.Zstd:
      return (await import('./zstd.js')).zstdDecoder();
    case Compressor.Xz:
      return (await import('./xz.js')).xzDecoder(options, blockSize);
    case Compressor.Lzma:
      return (await import('./xz.js')).lzmaDecoder();
    case Compressor.Lz4:
      return (await import('./lz4.js')).lz4Decoder(options);
    case Compressor.Lzo:
      return (await import('./lzo.js')).lzoDecoder();
    default: {
      const name = codecName(id);
      if (name === undefined) {
        throw new SquashfsFormatError('HPCC_E_SQFS_BAD_COMPRESSOR', `unknown squashfs compressor id ${id}`);
      }
      throw new CodecError('HPCC_E_CODEC_UNSUPPORTED', `hpcc cannot read ${name}-compressed squashfs images`);
    }
  }
}

/**
 * Stop the worker threads used by the zstd and lz4 HC encoders, if any were
 * started. Idle workers never keep the process alive, so calling this is
 * optional; it frees their memory early.
 */
export async function closeCodecWorkers(): Promise<void> {
  const { codecPool } = await import('./pool.js');
  await codecPool().close();
}
