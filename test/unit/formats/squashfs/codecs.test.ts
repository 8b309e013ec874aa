import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { HpccError } from '../../../../src/errors/index.js';
import {
  CODEC_IDS,
  createDecoder,
  createEncoder,
  DECODABLE,
  ENCODABLE,
  type CodecName,
  type EncoderOptions,
} from '../../../../src/formats/squashfs/codecs/index.js';
import { lz4DecodeBlock, lz4EncodeBlock } from '../../../../src/formats/squashfs/codecs/lz4block.js';
import { lzo1xDecode } from '../../../../src/formats/squashfs/codecs/lzo1x.js';
import { loadCodecLibrary } from '../../../../src/formats/squashfs/codecs/load.js';
import { xzDictSize } from '../../../../src/formats/squashfs/codecs/xz.js';

/** Deterministic test inputs: text-like, binary, zeros, random, tiny. */
function sampleInputs(size: number): Record<string, Uint8Array> {
  let x = 0x12345678;
  const rnd = new Uint8Array(size).map(() => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x & 0xff;
  });
  const text = new TextEncoder().encode(
    Array.from({ length: Math.ceil(size / 20) + 1 }, (_, i) => `line ${i % 97} of some squashfs test data\n`).join(''),
  ).subarray(0, size);
  const bin = readFileSync(process.execPath).subarray(65536, 65536 + size);
  return { text, bin, zeros: new Uint8Array(size), random: rnd, tiny: text.subarray(0, 7) };
}

const u32 = (b: Uint8Array, off: number): number => new DataView(b.buffer, b.byteOffset, b.length).getUint32(off, true);

const variants: Array<[CodecName, Partial<EncoderOptions>]> = [
  ['gzip', {}],
  ['gzip', { level: 1 }],
  ['zstd', {}],
  ['zstd', { level: 19 }],
  ['xz', {}],
  ['xz', { level: 1 }],
  ['lz4', {}],
  ['lz4', { hc: true }],
];

describe('squashfs codecs', function () {
  this.timeout(60_000);

  it('lists every kernel codec as decodable and the four writable ones as encodable', () => {
    expect([...ENCODABLE].sort()).to.deep.equal(['gzip', 'lz4', 'xz', 'zstd']);
    expect([...DECODABLE].sort()).to.deep.equal(['gzip', 'lz4', 'lzma', 'lzo', 'xz', 'zstd']);
  });

  for (const blockSize of [4096, 131072, 1048576]) {
    for (const [name, opts] of variants) {
      if (blockSize === 1048576 && Object.keys(opts).length > 0) continue; // keep the suite fast
      it(`${name} ${JSON.stringify(opts)} round-trips ${blockSize}-byte blocks`, async () => {
        const enc = await createEncoder(name, { blockSize, ...opts });
        const dec = await createDecoder(CODEC_IDS[name], enc.optionsBlock(), blockSize);
        for (const [kind, input] of Object.entries(sampleInputs(blockSize))) {
          const packed = await enc.compress(input);
          const back = dec.decompress(packed, blockSize);
          expect(Buffer.from(back).equals(Buffer.from(input)), `${kind}`).to.equal(true);
          if (kind !== 'tiny') expect(input.length).to.equal(blockSize);
          if (kind === 'zeros') expect(packed.length).to.be.below(blockSize / 20);
        }
      });
    }
  }

  it('zstd frames declare their content size and a window within the block (§9.2)', async () => {
    for (const blockSize of [4096, 65536, 131072]) {
      const enc = await createEncoder('zstd', { blockSize, level: 19 });
      const f = await enc.compress(sampleInputs(blockSize).text);
      expect(u32(f, 0)).to.equal(0xfd2fb528);
      const fhd = f[4]!;
      expect(fhd & 0x20, 'single segment: window = content size').to.equal(0x20);
      expect(fhd >> 6, 'content size field present').to.not.equal(0);
      expect(enc.optionsBlock()).to.deep.equal(new Uint8Array([19, 0, 0, 0]));
    }
  });

  it('xz streams carry a CRC32 check and an LZMA2 dictionary of max(block, 8 KiB)', async () => {
    expect(xzDictSize(4096)).to.equal(8192);
    for (const blockSize of [4096, 131072]) {
      const enc = await createEncoder('xz', { blockSize });
      const s = await enc.compress(sampleInputs(blockSize).bin);
      expect(Buffer.from(s.subarray(0, 6)).toString('hex')).to.equal('fd377a585a00');
      expect(s[7], 'stream flags: check type 1 = CRC32').to.equal(1);
      // block header: size byte, flags (1 filter, no sizes), filter id 0x21 LZMA2, props size 1, dict props
      const bh = s.subarray(12);
      expect(bh[1]! & 0x03).to.equal(0);
      expect(bh[2]).to.equal(0x21);
      const p = bh[4]!;
      const dict = (2 | (p & 1)) << (p / 2 + 11);
      expect(dict).to.be.at.most(Math.max(blockSize, 8192));
      const opt = enc.optionsBlock()!;
      expect(u32(opt, 0)).to.equal(Math.max(blockSize, 8192));
      expect(u32(opt, 4)).to.equal(0);
    }
  });

  it('lz4 writes raw blocks (no frame magic) and always an options block', async () => {
    for (const hc of [false, true]) {
      const enc = await createEncoder('lz4', { blockSize: 131072, hc });
      const b = await enc.compress(sampleInputs(131072).text);
      expect(u32(b, 0)).to.not.equal(0x184d2204);
      expect(Buffer.from(lz4DecodeBlock(b, 131072)).equals(Buffer.from(sampleInputs(131072).text))).to.equal(true);
      expect(enc.optionsBlock()).to.deep.equal(new Uint8Array([1, 0, 0, 0, hc ? 1 : 0, 0, 0, 0]));
    }
  });

  it('lz4 HC output is smaller than fast mode', async () => {
    const input = sampleInputs(131072).bin;
    const fast = await (await createEncoder('lz4', { blockSize: 131072 })).compress(input);
    const hc = await (await createEncoder('lz4', { blockSize: 131072, hc: true })).compress(input);
    expect(hc.length).to.be.below(fast.length);
  });

  it('lz4 TypeScript block encoder round-trips edge sizes', () => {
    for (const n of [0, 1, 12, 13, 17, 64, 65535, 65536, 70000]) {
      for (const input of Object.values(sampleInputs(n))) {
        for (const hc of [false, true]) {
          const b = lz4EncodeBlock(input, hc);
          expect(Buffer.from(lz4DecodeBlock(b, Math.max(1, n))).equals(Buffer.from(input))).to.equal(true);
        }
      }
    }
  });

  it('lzo1x decodes hand-made streams: literals, overlapping match, end marker', () => {
    // 20 = literal run of 3 ("abc"), 0x24 = M3 match length 6, distance (8>>2)+1 = 3, 11 00 00 = end
    const s = new Uint8Array([20, 0x61, 0x62, 0x63, 0x24, 0x08, 0x00, 0x11, 0x00, 0x00]);
    expect(new TextDecoder().decode(lzo1xDecode(s, 100))).to.equal('abcabcabc');
    // 21 = literal run of 4, then end
    expect(new TextDecoder().decode(lzo1xDecode(new Uint8Array([21, 0x77, 0x78, 0x79, 0x7a, 0x11, 0, 0]), 4))).to.equal('wxyz');
    expect(() => lzo1xDecode(s, 8)).to.throw(/more than 8 bytes/);
    expect(() => lzo1xDecode(s.subarray(0, 8), 100)).to.throw(/truncated/);
  });

  it('rejects blocks that decode to more than maxOut with HPCC_E_SQFS_DECOMPRESS', async () => {
    for (const [name, opts] of variants) {
      const enc = await createEncoder(name, { blockSize: 65536, ...opts });
      const dec = await createDecoder(CODEC_IDS[name], enc.optionsBlock(), 65536);
      const packed = await enc.compress(sampleInputs(65536).text);
      let err: unknown;
      try {
        dec.decompress(packed, 65535);
      } catch (e) {
        err = e;
      }
      expect(err, name).to.be.instanceOf(HpccError);
      expect((err as HpccError).code, name).to.equal('HPCC_E_SQFS_DECOMPRESS');
    }
  });

  it('rejects bad encoder levels and unknown compressor ids with typed errors', async () => {
    for (const [name, level] of [['gzip', 0], ['zstd', 23], ['xz', 10]] as const) {
      let err: unknown;
      try {
        await createEncoder(name, { blockSize: 4096, level });
      } catch (e) {
        err = e;
      }
      expect((err as HpccError).code, name).to.equal('HPCC_E_USAGE');
    }
    let err: unknown;
    try {
      await createDecoder(9, null, 4096);
    } catch (e) {
      err = e;
    }
    expect((err as HpccError).code).to.equal('HPCC_E_SQFS_BAD_COMPRESSOR');
    try {
      await createEncoder('lzo', { blockSize: 4096 });
      expect.fail('lzo encoder should not exist');
    } catch (e) {
      expect((e as HpccError).code).to.equal('HPCC_E_CODEC_UNSUPPORTED');
    }
  });

  it('a missing codec library is a CodecError with a hint', () => {
    try {
      loadCodecLibrary('hpcc-no-such-codec-package', 'test');
      expect.fail('should throw');
    } catch (e) {
      expect((e as HpccError).code).to.equal('HPCC_E_CODEC_MISSING');
      expect((e as HpccError).hint).to.match(/npm ci/);
    }
  });

  it('compresses blocks concurrently (many in flight) with correct results', async () => {
    for (const name of ['zstd', 'xz', 'lz4', 'gzip'] as const) {
      const enc = await createEncoder(name, { blockSize: 32768 });
      const dec = await createDecoder(CODEC_IDS[name], enc.optionsBlock(), 32768);
      const base = sampleInputs(32768).bin;
      const inputs = Array.from({ length: 8 }, (_, i) => base.map((b) => (b + i) & 0xff));
      const outs = await Promise.all(inputs.map((b) => enc.compress(b)));
      outs.forEach((o, i) => expect(Buffer.from(dec.decompress(o, 32768)).equals(Buffer.from(inputs[i]!))).to.equal(true));
    }
  });
});
