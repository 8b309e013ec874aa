/**
 * lzo (squashfs compressor 3): decode only. Blocks are bare lzo1x streams
 * (§2), decoded by our own bounded TypeScript decoder (lzo1x.ts); no npm
 * LZO package installs and works here (see docs/compression.md). The
 * options block (u32 algorithm, u32 level) does not change the format.
 */
import { SquashfsFormatError } from '../../../errors/index.js';
import { Compressor } from '../layout.js';
import { lzo1xDecode } from './lzo1x.js';
import type { Decoder } from './types.js';

export function lzoDecoder(): Decoder {
  return {
    id: Compressor.Lzo,
    name: 'lzo',
    decompress(src, maxOut) {
      try {
        return lzo1xDecode(src, maxOut);
      } catch (e) {
        throw new SquashfsFormatError('HPCC_E_SQFS_DECOMPRESS', `lzo block does not decompress (${(e as Error).message})`, {
          cause: e,
        });
      }
    },
  };
}
