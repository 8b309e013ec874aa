import { expect } from 'chai';
import { inflateSync } from 'node:zlib';
import { createEncoder } from '../../../../src/formats/squashfs/codecs/index.js';
import { planRuns, writeListing, type ListingEntry } from '../../../../src/formats/squashfs/writer/directory.js';
import { MetadataWriter } from '../../../../src/formats/squashfs/writer/metadata.js';
import {
  BufferSource,
  decodeDirEntry,
  decodeDirHeader,
  decodeMetaHeader,
  makeRef,
  METADATA_SIZE,
} from '../../../../src/formats/squashfs/layout.js';

function entries(n: number, opts: { nameLen?: number; block?: (i: number) => number; ino?: (i: number) => number } = {}): ListingEntry[] {
  const out: ListingEntry[] = [];
  for (let i = 0; i < n; i++) {
    const name = Buffer.from(String(i).padStart(5, '0') + 'x'.repeat(Math.max(0, (opts.nameLen ?? 5) - 5)));
    out.push({ name, ref: makeRef(opts.block?.(i) ?? 0, (i * 32) % 8192), ino: opts.ino?.(i) ?? i + 1, type: 2 });
  }
  return out;
}

function inflateStream(blocks: Buffer[]): Buffer {
  const all = Buffer.concat(blocks);
  const parts: Buffer[] = [];
  for (let p = 0; p < all.length; ) {
    const h = decodeMetaHeader(all.readUInt16LE(p));
    const payload = all.subarray(p + 2, p + 2 + h.length);
    parts.push(h.compressed ? inflateSync(payload) : Buffer.from(payload));
    p += 2 + h.length;
  }
  return Buffer.concat(parts);
}

describe('squashfs writer: directory listings (§6)', () => {
  it('starts a new header after 256 entries', () => {
    const runs = planRuns(entries(600, { nameLen: 5 }));
    // 600 × (8+5) bytes stays under 8192 only for ~600 entries: block crossing also cuts runs
    for (const r of runs) expect(r.count).to.be.at.most(256);
    expect(runs.reduce((n, r) => n + r.count, 0)).to.equal(600);
    const small = planRuns(entries(300, { nameLen: 5 }));
    expect(small.map((r) => r.count)).to.deep.equal([256, 44]);
  });

  it('starts a new header when the inode block changes or the delta leaves s16', () => {
    const byBlock = planRuns(entries(10, { block: (i) => (i < 4 ? 0 : 8000) }));
    expect(byBlock.map((r) => [r.count, r.inodeBlock])).to.deep.equal([
      [4, 0],
      [6, 8000],
    ]);
    const byDelta = planRuns(entries(3, { ino: (i) => [1, 32768, 32769][i]! }));
    // 32768 - 1 = 32767 fits; 32769 - 1 does not
    expect(byDelta.map((r) => [r.count, r.base])).to.deep.equal([
      [2, 1],
      [1, 32769],
    ]);
    const negative = planRuns(entries(2, { ino: (i) => [40000, 7200][i]! }));
    expect(negative.map((r) => r.count)).to.deep.equal([1, 1]); // 7200 - 40000 = -32800 leaves s16
  });

  it('starts an indexed header once 8192 listing bytes follow the last index point (as mksquashfs)', () => {
    const runs = planRuns(entries(200, { nameLen: 100 }));
    // 12 + n × 108 ≤ 8192 → 75 entries fit after the first header
    expect(runs[0]!.count).to.equal(75);
    expect(runs[0]!.indexed).to.equal(false);
    expect(runs[1]!.indexed).to.equal(true);
    expect(runs[1]!.at).to.equal(12 + 75 * 108);
    for (const r of runs) expect(r.count).to.be.at.most(75);
    // count-limited headers in a short listing get no index
    expect(planRuns(entries(300, { nameLen: 5 })).map((r) => r.indexed)).to.deep.equal([false, false]);
  });

  it('writes runs that decode back to the same entries, with an index at block crossings', async () => {
    const enc = await createEncoder('gzip', { blockSize: 131072 });
    const w = new MetadataWriter(enc);
    await w.write(Buffer.alloc(100, 1)); // listing starts mid-block
    const list = entries(600, { nameLen: 100, block: (i) => Math.floor(i / 100) * 5000 });
    const res = await writeListing(w, list);
    await w.end();
    expect(res.ref).to.equal(makeRef(0, 100));
    const stream = inflateStream(w.blocks).subarray(100);
    expect(stream.length).to.equal(res.size);
    const src = new BufferSource(stream);
    const got: string[] = [];
    const headerAt: number[] = [];
    while (src.pos < stream.length) {
      headerAt.push(src.pos);
      const h = decodeDirHeader(src);
      for (let i = 0; i < h.count; i++) {
        const e = decodeDirEntry(src);
        const orig = list[got.length]!;
        expect(h.start).to.equal(Math.floor(orig.ref / 0x10000));
        expect(e.offset).to.equal(orig.ref % 0x10000);
        expect(h.inodeNumber + e.inodeDelta).to.equal(orig.ino);
        got.push(Buffer.from(e.name).toString());
      }
    }
    expect(got).to.deep.equal(list.map((e) => e.name.toString()));
    // 600 × 108 bytes ≈ 64 KiB: about one index entry per 8 KiB block crossed
    expect(res.index.length).to.be.within(7, 9);
    for (const ix of res.index) {
      expect(headerAt).to.include(ix.index);
      // the kernel resumes at block `start`, offset (dir_offset + index) % 8192
      const absolute = 100 + ix.index;
      expect(ix.start).to.equal(w.blocks.slice(0, Math.floor(absolute / METADATA_SIZE)).reduce((n, b) => n + b.length, 0));
      const firstName = new BufferSource(stream.subarray(ix.index));
      decodeDirHeader(firstName);
      expect(Buffer.from(decodeDirEntry(firstName).name).equals(Buffer.from(ix.name))).to.equal(true);
    }
  });

  it('an empty directory has an empty listing', async () => {
    const w = new MetadataWriter(await createEncoder('gzip', { blockSize: 131072 }));
    const res = await writeListing(w, []);
    expect(res.size).to.equal(0);
    expect(res.index).to.deep.equal([]);
  });
});
