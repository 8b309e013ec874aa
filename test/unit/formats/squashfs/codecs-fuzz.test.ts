/**
 * Hostile input for every decoder: random garbage, truncations and bit flips
 * of valid blocks must give either a result within maxOut or a
 * SquashfsFormatError HPCC_E_SQFS_DECOMPRESS, in bounded time, never a crash.
 * HPCC_CODEC_FUZZ_ITERATIONS sets the loop count per codec (each iteration tries
 * four inputs); default HPCC_FUZZ_ITERATIONS / 20, i.e. 150 for the suite's 3000.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { HpccError } from '../../../../src/errors/index.js';
import { CODEC_IDS, createDecoder, createEncoder, type CodecName } from '../../../../src/formats/squashfs/codecs/index.js';
import { lz4EncodeBlock } from '../../../../src/formats/squashfs/codecs/lz4block.js';
import { Compressor } from '../../../../src/formats/squashfs/layout.js';

const ITER = Number(process.env.HPCC_CODEC_FUZZ_ITERATIONS ?? Math.ceil(Number(process.env.HPCC_FUZZ_ITERATIONS ?? 3000) / 20));
const BLOCK = 65536;

function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

function expectBounded(fn: () => Uint8Array, maxOut: number, what: string): void {
  try {
    const out = fn();
    expect(out.length, what).to.be.at.most(maxOut);
  } catch (e) {
    expect(e, `${what}: ${(e as Error).message}`).to.be.instanceOf(HpccError);
    expect((e as HpccError).code, what).to.equal('HPCC_E_SQFS_DECOMPRESS');
  }
}

/** Valid sample blocks per decoder id, made with our encoders (lzo: a fixed stream). */
async function validBlocks(name: CodecName): Promise<Uint8Array[]> {
  const text = new TextEncoder().encode('squashfs hostile input test line\n'.repeat(BLOCK / 32)).subarray(0, BLOCK);
  const inputs = [text, readFileSync(process.execPath).subarray(4096, 4096 + BLOCK), new Uint8Array(BLOCK)];
  if (name === 'lzo') {
    return [new Uint8Array([20, 0x61, 0x62, 0x63, 0x24, 0x08, 0x00, 0x2f, 0x08, 0x00, 0x11, 0x00, 0x00])];
  }
  if (name === 'lzma') {
    // lzma-alone header + stream are exercised through garbage only (no encoder)
    return [new Uint8Array([0x5d, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x30, 0x98, 0x88])];
  }
  if (name === 'lz4') return inputs.map((b) => lz4EncodeBlock(b, true));
  const enc = await createEncoder(name, { blockSize: BLOCK });
  return Promise.all(inputs.map((b) => enc.compress(b)));
}

describe('squashfs codec decoders under hostile input', function () {
  this.timeout(Math.max(120_000, ITER * 400));
  const names: CodecName[] = ['gzip', 'zstd', 'xz', 'lz4', 'lzo', 'lzma'];
  for (const name of names) {
    it(`${name}: garbage, truncations and bit flips give typed errors or bounded output`, async () => {
      const dec = await createDecoder(CODEC_IDS[name], null, BLOCK);
      const blocks = await validBlocks(name);
      const rnd = prng(0xc0dec + CODEC_IDS[name]);
      const started = Date.now();
      for (let i = 0; i < ITER; i++) {
        // pure garbage, sometimes with the right magic in front
        const g = new Uint8Array(1 + Math.floor(rnd() * 4096)).map(() => Math.floor(rnd() * 256));
        if (i % 2 === 0 && name === 'zstd') g.set([0x28, 0xb5, 0x2f, 0xfd].slice(0, g.length));
        if (i % 2 === 0 && name === 'xz') g.set([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x01].slice(0, g.length));
        if (i % 2 === 0 && name === 'gzip') g.set([0x78, 0x9c].slice(0, g.length));
        expectBounded(() => dec.decompress(g, BLOCK), BLOCK, `${name} garbage #${i}`);
        const src = blocks[i % blocks.length]!;
        // truncation
        const cut = src.subarray(0, Math.floor(rnd() * src.length));
        expectBounded(() => dec.decompress(cut, BLOCK), BLOCK, `${name} truncated #${i}`);
        // bit flips
        const flipped = src.slice();
        for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) flipped[Math.floor(rnd() * flipped.length)]! ^= 1 << Math.floor(rnd() * 8);
        expectBounded(() => dec.decompress(flipped, BLOCK), BLOCK, `${name} flipped #${i}`);
        // a smaller output limit than the real size
        expectBounded(() => dec.decompress(src, 100), 100, `${name} small maxOut #${i}`);
      }
      expect(Date.now() - started, 'bounded time').to.be.below(Math.max(60_000, ITER * 200));
    });
  }

  it('a decompression bomb stays bounded in time and memory', async () => {
    for (const name of ['zstd', 'xz', 'gzip'] as const) {
      const enc = await createEncoder(name, { blockSize: 1 << 20 });
      const bomb = await enc.compress(new Uint8Array(1 << 20));
      const dec = await createDecoder(CODEC_IDS[name], null, 1 << 20);
      const before = process.memoryUsage().rss;
      const t0 = Date.now();
      expectBounded(() => dec.decompress(bomb, 4096), 4096, `${name} bomb`);
      expect(Date.now() - t0, name).to.be.below(5000);
      expect(process.memoryUsage().rss - before, name).to.be.below(256 << 20);
    }
    expect(Compressor.Lz4).to.equal(5);
  });
});
