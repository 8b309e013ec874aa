/**
 * Metadata blocks (spec §3) and lookup tables: reading across block
 * boundaries, refs, caching, and every bounds check on hand-made bytes.
 */
import * as zlib from 'node:zlib';
import { expect } from 'chai';
import { HpccError } from '../../../../src/errors/index.js';
import { gzipDecoder } from '../../../../src/formats/squashfs/codecs/gzip.js';
import { MetaCursor, MetadataReader, type TableBounds } from '../../../../src/formats/squashfs/reader/metadata.js';
import { BufferImageSource } from '../../../../src/formats/squashfs/reader/source.js';
import { LookupTable } from '../../../../src/formats/squashfs/reader/tables.js';

function rawBlock(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + payload.length);
  out[0] = payload.length & 0xff;
  out[1] = ((payload.length >> 8) & 0x7f) | 0x80;
  out.set(payload, 2);
  return out;
}

function zBlock(payload: Uint8Array): Uint8Array {
  const z = zlib.deflateSync(payload);
  const out = new Uint8Array(2 + z.length);
  out[0] = z.length & 0xff;
  out[1] = (z.length >> 8) & 0x7f;
  out.set(z, 2);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function seq(n: number, start = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (start + i) & 0xff;
  return b;
}

async function code(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (e) {
    expect(e).to.be.instanceOf(HpccError);
    return (e as HpccError).code;
  }
  throw new Error('expected an HpccError');
}

describe('squashfs reader: metadata blocks', () => {
  const PAD = 10; // the table starts at 10 so absolute and relative positions differ
  const b0 = rawBlock(seq(8192)); // full raw block: header 0xA000
  const b1 = zBlock(seq(8192, 8192 % 256)); // full compressed block
  const b2 = zBlock(seq(100, (2 * 8192) % 256)); // short last block
  const image = concat(new Uint8Array(PAD), b0, b1, b2, new Uint8Array(7));
  const end = PAD + b0.length + b1.length + b2.length;
  const table: TableBounds = { name: 'test table', start: PAD, end };
  const reader = () => new MetadataReader(new BufferImageSource(image), gzipDecoder(), 4);

  it('reads raw and compressed blocks and reports the next header position', () => {
    const m = reader();
    const x = m.readBlock(PAD, end, 't');
    expect(x.data.length).to.equal(8192);
    expect(x.next).to.equal(PAD + 8194);
    const y = m.readBlock(x.next, end, 't');
    expect(y.data.length).to.equal(8192);
    expect(y.data[0]).to.equal(0);
    expect(m.readBlock(y.next, end, 't').data.length).to.equal(100);
    expect(m.readBlock(PAD, end, 't')).to.equal(x); // cached
  });

  it('takes records that straddle two and three blocks', () => {
    const m = reader();
    const c = new MetaCursor(m, table, 8190); // block 0, offset 8190
    const straddle = c.take(4);
    expect([...straddle]).to.deep.equal([8190 & 0xff, 8191 & 0xff, 0, 1]);
    const c2 = new MetaCursor(m, table, 5);
    const all = c2.take(8192 * 2 + 100 - 5);
    expect(all.length).to.equal(16479);
    expect(all[0]).to.equal(5);
    expect(all[all.length - 1]).to.equal((2 * 8192 + 99) & 0xff);
  });

  it('follows a ref into the second block (block position is the on-disk offset)', () => {
    const c = new MetaCursor(reader(), table, (b0.length << 16) | 3);
    expect(c.take(2)[0]).to.equal(3);
    c.skip(8192 - 5);
    expect(c.take(1)[0]).to.equal(0); // first byte of the third block
  });

  it('refuses to read past the end of the table', async () => {
    const c = new MetaCursor(reader(), table, ((b0.length + b1.length) << 16) | 90);
    expect(c.take(10).length).to.equal(10);
    expect(await code(() => c.take(1))).to.equal('HPCC_E_SQFS_TRUNCATED');
  });

  it('rejects refs outside the table or past a block', async () => {
    expect(await code(() => new MetaCursor(reader(), table, (end << 16) | 0))).to.equal('HPCC_E_SQFS_BAD_REF');
    expect(await code(() => new MetaCursor(reader(), table, 8192))).to.equal('HPCC_E_SQFS_BAD_REF');
    const c = new MetaCursor(reader(), table, ((b0.length + b1.length) << 16) | 101);
    expect(await code(() => c.take(1))).to.equal('HPCC_E_SQFS_BAD_REF');
    expect(await code(() => c.take(-1))).to.equal('HPCC_E_SQFS_BAD_METADATA');
  });

  it('rejects empty, oversized and overflowing blocks', async () => {
    const src = (b: Uint8Array) => new MetadataReader(new BufferImageSource(b), gzipDecoder());
    expect(await code(() => src(new Uint8Array([0x00, 0x80, 1])).readBlock(0, 3, 't'))).to.equal('HPCC_E_SQFS_BAD_METADATA');
    const big = concat(new Uint8Array([0x01, 0xa0]), new Uint8Array(8193));
    expect(await code(() => src(big).readBlock(0, big.length, 't'))).to.equal('HPCC_E_SQFS_BAD_METADATA');
    // A compressed payload that inflates past 8192 bytes.
    const bomb = zBlock(new Uint8Array(9000));
    expect(await code(() => src(bomb).readBlock(0, bomb.length, 't'))).to.equal('HPCC_E_SQFS_DECOMPRESS');
    // Garbage that is not a zlib stream.
    const junk = concat(new Uint8Array([4, 0]), new Uint8Array([1, 2, 3, 4]));
    expect(await code(() => src(junk).readBlock(0, junk.length, 't'))).to.equal('HPCC_E_SQFS_DECOMPRESS');
    // A block that runs past the table limit, or the image.
    expect(await code(() => reader().readBlock(PAD, PAD + 100, 't'))).to.equal('HPCC_E_SQFS_OUT_OF_BOUNDS');
    const cut = image.subarray(0, PAD + 50);
    expect(await code(() => src(cut).readBlock(PAD, 1e9, 't'))).to.equal('HPCC_E_SQFS_OUT_OF_BOUNDS');
  });

  it('checks the limit again on a cache hit', async () => {
    const m = reader();
    m.readBlock(PAD, end, 't');
    expect(await code(() => m.readBlock(PAD, PAD + 10, 't'))).to.equal('HPCC_E_SQFS_OUT_OF_BOUNDS');
  });
});

describe('squashfs reader: lookup tables', () => {
  // 3000 u32 records = 12000 bytes: one full block plus one of 3808 bytes, then the index.
  const recs = new Uint8Array(12000);
  const dv = new DataView(recs.buffer);
  for (let i = 0; i < 3000; i++) dv.setUint32(4 * i, i * 7, true);
  const blkA = zBlock(recs.subarray(0, 8192));
  const blkB = rawBlock(recs.subarray(8192));
  const base = 100;
  const indexStart = base + blkA.length + blkB.length;
  const index = new Uint8Array(16);
  new DataView(index.buffer).setUint32(0, base, true);
  new DataView(index.buffer).setUint32(8, base + blkA.length, true);
  const image = concat(new Uint8Array(base), blkA, blkB, index);
  const make = (img: Uint8Array, count = 3000) => {
    const src = new BufferImageSource(img);
    return new LookupTable(src, new MetadataReader(src, gzipDecoder()), 'test', indexStart, count, 4, 50, img.length);
  };

  it('finds records in both blocks', () => {
    const t = make(image);
    const get = (i: number) => new DataView(t.entry(i).buffer, t.entry(i).byteOffset, 4).getUint32(0, true);
    expect(get(0)).to.equal(0);
    expect(get(2047)).to.equal(2047 * 7);
    expect(get(2048)).to.equal(2048 * 7);
    expect(get(2999)).to.equal(2999 * 7);
    expect(t.firstBlock).to.equal(base);
  });

  it('rejects out-of-range record numbers', async () => {
    expect(await code(() => make(image).entry(3000))).to.equal('HPCC_E_SQFS_BAD_INDEX');
    expect(await code(() => make(image).entry(-1))).to.equal('HPCC_E_SQFS_BAD_INDEX');
  });

  it('rejects index arrays that are out of order, point past the index, or do not fit', async () => {
    const swapped = image.slice();
    new DataView(swapped.buffer).setUint32(indexStart, base + blkA.length, true);
    new DataView(swapped.buffer).setUint32(indexStart + 8, base, true);
    expect(await code(() => make(swapped))).to.equal('HPCC_E_SQFS_BAD_TABLE');
    const past = image.slice();
    new DataView(past.buffer).setUint32(indexStart + 8, indexStart + 4, true);
    expect(await code(() => make(past))).to.equal('HPCC_E_SQFS_BAD_TABLE');
    const huge = image.slice();
    new DataView(huge.buffer).setUint32(indexStart + 12, 0x300000, true); // above 2^53
    expect(await code(() => make(huge))).to.equal('HPCC_E_SQFS_OFFSET_RANGE');
    // A count whose index array would run past the image: refused before any allocation.
    expect(await code(() => make(image, 0xffffffff))).to.equal('HPCC_E_SQFS_BAD_TABLE');
  });

  it('rejects a short last block that lacks the record', async () => {
    const t = make(image, 3100); // 3100 records need 12400 bytes; the last block has 3808
    expect(await code(() => t.entry(3050))).to.equal('HPCC_E_SQFS_BAD_TABLE');
  });
});
