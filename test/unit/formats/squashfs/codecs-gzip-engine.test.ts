/**
 * The gzip codec's two engines: libdeflate (native addon, native/deflate/)
 * and Node's zlib. Blocks from either decode through the gzip decoder (Node's
 * inflate, as the reader uses) at every level; HPCC_GZIP_ENGINE selects one.
 * The libdeflate cases skip locally without the addon and fail in CI (the
 * suite installs libdeflate-dev and builds it).
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { HpccError } from '../../../../src/errors/index.js';
import { CODEC_IDS, createDecoder, createEncoder } from '../../../../src/formats/squashfs/codecs/index.js';
import { gzipEncoder, requestedGzipEngine, type GzipEncoder } from '../../../../src/formats/squashfs/codecs/gzip.js';
import { loadLibdeflate, libdeflateLoadError } from '../../../../src/formats/squashfs/codecs/libdeflate.js';
import { IN_CI } from '../../../helpers/env.js';

function requireLibdeflate(ctx: Mocha.Context): void {
  if (loadLibdeflate()) return;
  const why = String(libdeflateLoadError());
  if (IN_CI) throw new Error(`libdeflate addon missing in CI (npm run build with libdeflate-dev builds it): ${why}`);
  ctx.skip();
}

function inputs(): Record<string, Uint8Array> {
  let x = 0x9e3779b9;
  const random = new Uint8Array(131072).map(() => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x & 0xff;
  });
  const text = Buffer.from(Array.from({ length: 8000 }, (_, i) => `${i % 311} compressible squashfs line\n`).join('')).subarray(0, 131072);
  return {
    random,
    text,
    binary: readFileSync(process.execPath).subarray(1 << 20, (1 << 20) + 131072),
    zeros: new Uint8Array(131072),
    empty: new Uint8Array(0),
    'one byte': Uint8Array.of(0x41),
    'odd view': text.subarray(3, 4099), // non-zero byteOffset into a larger buffer
  };
}

async function withEngineEnv<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const old = process.env.HPCC_GZIP_ENGINE;
  if (value === undefined) delete process.env.HPCC_GZIP_ENGINE;
  else process.env.HPCC_GZIP_ENGINE = value;
  try {
    return await fn();
  } finally {
    if (old === undefined) delete process.env.HPCC_GZIP_ENGINE;
    else process.env.HPCC_GZIP_ENGINE = old;
  }
}

describe('squashfs gzip engines (libdeflate addon, Node zlib)', function () {
  this.timeout(60_000);
  const data = inputs();

  for (const engine of ['libdeflate', 'zlib'] as const) {
    it(`${engine}: blocks at levels 1..9 round-trip through the gzip decoder`, async function () {
      if (engine === 'libdeflate') requireLibdeflate(this);
      const dec = await createDecoder(CODEC_IDS.gzip, null, 131072);
      for (let level = 1; level <= 9; level++) {
        const enc = gzipEncoder({ blockSize: 131072, level }, engine);
        expect(enc.engine).to.equal(engine);
        for (const [name, src] of Object.entries(data)) {
          const out = await enc.compress(src);
          // a zlib (RFC 1950) stream: CM 8, 32 KiB window, header checksum
          expect(out[0], `${name} L${level} CMF`).to.equal(0x78);
          expect(((out[0]! << 8) | out[1]!) % 31, `${name} L${level} FCHECK`).to.equal(0);
          const back = dec.decompress(out, 131072);
          expect(Buffer.from(back).equals(Buffer.from(src)), `${name} at level ${level}`).to.equal(true);
          if (name === 'text') expect(out.length, `text L${level}`).to.be.below(src.length / 4);
        }
      }
    });
  }

  it('libdeflate: concurrent jobs on the threadpool each return their own block', async function () {
    requireLibdeflate(this);
    const enc = gzipEncoder({ blockSize: 131072 }, 'libdeflate');
    const srcs = Array.from({ length: 32 }, (_, i) => Buffer.from(`block ${i} `.repeat(5000 + i * 100)));
    const outs = await Promise.all(srcs.map((s) => enc.compress(s)));
    outs.forEach((o, i) => expect(zlib.inflateSync(o).equals(srcs[i]!), `block ${i}`).to.equal(true));
  });

  it('libdeflate: the addon rejects bad arguments with exceptions, not crashes', function () {
    requireLibdeflate(this);
    const addon = loadLibdeflate()!;
    expect(() => addon.compressSync(Buffer.from('x'), 0)).to.throw(RangeError);
    expect(() => addon.compressSync(Buffer.from('x'), 13)).to.throw(RangeError);
    expect(() => addon.compressSync('x' as unknown as Uint8Array, 6)).to.throw(TypeError);
    expect(() => addon.compressSync(new Uint16Array(4) as unknown as Uint8Array, 6)).to.throw(TypeError);
    expect(() => addon.compress(Buffer.from('x'), Number.NaN)).to.throw(RangeError);
    expect(zlib.inflateSync(addon.compressSync(Buffer.from('sync'), 12)).toString()).to.equal('sync');
  });

  it('libdeflate at level 6 is smaller than zlib on compressible data', async function () {
    requireLibdeflate(this);
    const src = Buffer.concat([data.text!, data.binary!]);
    const a = await gzipEncoder({ blockSize: src.length }, 'libdeflate').compress(src);
    const b = await gzipEncoder({ blockSize: src.length }, 'zlib').compress(src);
    expect(a.length).to.be.below(b.length);
  });

  it('HPCC_GZIP_ENGINE selects the engine; the default is libdeflate when it loads', async function () {
    expect(requestedGzipEngine({})).to.equal(undefined);
    expect(requestedGzipEngine({ HPCC_GZIP_ENGINE: 'auto' })).to.equal(undefined);
    expect(requestedGzipEngine({ HPCC_GZIP_ENGINE: 'zlib' })).to.equal('zlib');
    expect(() => requestedGzipEngine({ HPCC_GZIP_ENGINE: 'pigz' })).to.throw(HpccError);
    const zl = await withEngineEnv('zlib', () => createEncoder('gzip', { blockSize: 4096 }));
    expect((zl as GzipEncoder).engine).to.equal('zlib');
    const auto = await withEngineEnv(undefined, () => createEncoder('gzip', { blockSize: 4096 }));
    expect((auto as GzipEncoder).engine).to.equal(loadLibdeflate() ? 'libdeflate' : 'zlib');
    if (loadLibdeflate()) {
      const ld = await withEngineEnv('libdeflate', () => createEncoder('gzip', { blockSize: 4096 }));
      expect((ld as GzipEncoder).engine).to.equal('libdeflate');
      // the same input gives different (engine-specific) bytes that decode the same
      const src = data.text!.subarray(0, 4096);
      const [x, y] = [await zl.compress(src), await ld.compress(src)];
      expect(Buffer.from(x).equals(Buffer.from(y))).to.equal(false);
      expect(zlib.inflateSync(x).equals(zlib.inflateSync(y))).to.equal(true);
    } else {
      let err: unknown;
      await withEngineEnv('libdeflate', () => createEncoder('gzip', { blockSize: 4096 })).catch((e) => (err = e));
      expect((err as HpccError).code).to.equal('HPCC_E_CODEC_MISSING');
    }
  });
});
