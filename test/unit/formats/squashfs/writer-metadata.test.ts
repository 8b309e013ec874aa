import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { createEncoder } from '../../../../src/formats/squashfs/codecs/index.js';
import { buildLookupTable, MetadataWriter } from '../../../../src/formats/squashfs/writer/metadata.js';
import { decodeMetaHeader, makeRef, METADATA_SIZE } from '../../../../src/formats/squashfs/layout.js';

/** Split framed metadata blocks back into (header, uncompressed payload). */
function unframe(buf: Buffer): { onDisk: number; data: Buffer }[] {
  const out: { onDisk: number; data: Buffer }[] = [];
  let p = 0;
  while (p < buf.length) {
    const h = decodeMetaHeader(buf.readUInt16LE(p));
    const payload = buf.subarray(p + 2, p + 2 + h.length);
    out.push({ onDisk: 2 + h.length, data: h.compressed ? inflateSync(payload) : Buffer.from(payload) });
    p += 2 + h.length;
  }
  expect(p).to.equal(buf.length);
  return out;
}

describe('squashfs writer: metadata streams (§3)', () => {
  it('cuts the stream into exact 8192-byte chunks and stores incompressible chunks raw (0x8000)', async () => {
    const enc = await createEncoder('gzip', { blockSize: 131072 });
    const w = new MetadataWriter(enc);
    const data = randomBytes(20000);
    await w.write(data.subarray(0, 5000));
    expect(w.ref()).to.equal(makeRef(0, 5000));
    await w.write(data.subarray(5000));
    // two full raw chunks flushed: each 2 + 8192 on disk
    expect(w.ref()).to.equal(makeRef(2 * (2 + METADATA_SIZE), 20000 - 2 * METADATA_SIZE));
    await w.end();
    expect(w.blocks).to.have.length(3);
    expect(w.blocks[0]!.readUInt16LE(0)).to.equal(0xa000);
    const chunks = unframe(Buffer.concat(w.blocks));
    expect(chunks.map((c) => c.data.length)).to.deep.equal([8192, 8192, 20000 - 16384]);
    expect(Buffer.concat(chunks.map((c) => c.data)).equals(data)).to.equal(true);
    expect(w.total).to.equal(20000);
  });

  it('compresses compressible chunks and refs count on-disk block positions', async () => {
    const enc = await createEncoder('gzip', { blockSize: 131072 });
    const w = new MetadataWriter(enc);
    const data = Buffer.alloc(3 * METADATA_SIZE + 10, 'abcdefgh');
    await w.write(data);
    const firstLen = w.blocks[0]!.length;
    expect(w.blocks[0]!.readUInt16LE(0) & 0x8000).to.equal(0);
    expect(firstLen).to.be.lessThan(200);
    expect(w.ref()).to.equal(makeRef(w.blocks.reduce((n, b) => n + b.length, 0), 10));
    await w.end();
    const chunks = unframe(Buffer.concat(w.blocks));
    expect(chunks.map((c) => c.data.length)).to.deep.equal([8192, 8192, 8192, 10]);
    expect(Buffer.concat(chunks.map((c) => c.data)).equals(data)).to.equal(true);
  });

  it('end() on an empty stream writes nothing', async () => {
    const w = new MetadataWriter(await createEncoder('gzip', { blockSize: 131072 }));
    await w.end();
    expect(w.blocks).to.have.length(0);
    expect(w.ref()).to.equal(0);
  });

  it('builds lookup tables: blocks then an index of absolute u64 offsets', async () => {
    const enc = await createEncoder('gzip', { blockSize: 131072 });
    const recs = randomBytes(3 * 8192 + 16); // 4 blocks
    const t = await buildLookupTable(enc, recs, 1000);
    expect(t.index.length).to.equal(4 * 8);
    const chunks = unframe(t.blocks);
    expect(chunks).to.have.length(4);
    let pos = 1000;
    for (let i = 0; i < 4; i++) {
      expect(Number(t.index.readBigUInt64LE(8 * i))).to.equal(pos);
      pos += chunks[i]!.onDisk;
    }
    expect(1000 + t.blocks.length).to.equal(pos); // index follows the blocks directly
    expect(Buffer.concat(chunks.map((c) => c.data)).equals(recs)).to.equal(true);
  });
});
