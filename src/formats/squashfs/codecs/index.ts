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

export async function createEncoder(name: CodecName, opts: EncoderOptions): Promise<Encoder> {
  switch (name) {
    case 'gzip':
      return gzipEncoder(opts);
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
export async function createDecoder(id: number, _options: Uint8Array | null, _blockSize: number): Promise<Decoder> {
  switch (id) {
    case Compressor.Gzip:
      return gzipDecoder();
    default: {
      const name = codecName(id);
      if (name === undefined) {
        throw new SquashfsFormatError('HPCC_E_SQFS_BAD_COMPRESSOR', `unknown squashfs compressor id ${id}`);
      }
      throw new CodecError('HPCC_E_CODEC_UNSUPPORTED', `hpcc cannot read ${name}-compressed squashfs images`);
    }
  }
}
