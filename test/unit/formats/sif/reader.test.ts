import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HpccError } from '../../../../src/errors/index.js';
import {
  DESCRIPTOR_SIZE,
  PartType,
  SifDataType,
  SifReader,
  encodeDescriptor,
  encodeHeader,
  encodePartitionExtra,
  type DescriptorFields,
} from '../../../../src/formats/sif/index.js';
import { makeTempDir, removeTree } from '../../../helpers/env.js';
import { SAMPLE_DEFFILE, SAMPLE_JSON, SAMPLE_PART, writeSample } from './sample.js';

interface Obj {
  type: number;
  offset: number;
  data: Buffer;
  groupId?: number;
  extra?: Uint8Array;
  id?: number;
}

/** Build a SIF by hand: any descriptor offset/count, objects at given offsets. */
function craft(opts: { descOffset?: number; total?: number; dataOffset?: number; objs: Obj[]; slotOf?: (i: number) => number }): Buffer {
  const descOffset = opts.descOffset ?? 4096;
  const total = opts.total ?? 48;
  const end = Math.max(descOffset + total * DESCRIPTOR_SIZE, ...opts.objs.map((o) => o.offset + o.data.length));
  const b = Buffer.alloc(end);
  const dataOffset = opts.dataOffset ?? descOffset + total * DESCRIPTOR_SIZE;
  b.set(
    encodeHeader({
      launchScript: '#!/usr/bin/env run-singularity\n',
      archCode: '02',
      id: new Uint8Array(16),
      createdAt: 0,
      modifiedAt: 0,
      descriptorsFree: total - opts.objs.length,
      descriptorsTotal: total,
      descriptorsOffset: descOffset,
      descriptorsSize: total * DESCRIPTOR_SIZE,
      dataOffset,
      dataSize: end - dataOffset,
    }),
    0,
  );
  opts.objs.forEach((o, i) => {
    const slot = opts.slotOf ? opts.slotOf(i) : i;
    const f: DescriptorFields = {
      dataType: o.type,
      used: true,
      id: o.id ?? slot + 1,
      groupId: o.groupId ?? 1,
      linkedId: 0,
      linkedIsGroup: false,
      offset: o.offset,
      size: o.data.length,
      sizeWithPadding: o.data.length,
      createdAt: 0,
      modifiedAt: 0,
      uid: 0,
      gid: 0,
      name: '',
      extra: o.extra ?? new Uint8Array(0),
    };
    b.set(encodeDescriptor(f), descOffset + slot * DESCRIPTOR_SIZE);
    b.set(o.data, o.offset);
  });
  return b;
}

const prim = (offset: number, data = Buffer.from('hsqs')): Obj => ({ type: SifDataType.Partition, offset, data, extra: encodePartitionExtra(1, PartType.PrimSys, '02') });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof HpccError)) throw e;
    return e.code;
  }
  return 'no error';
}

describe('formats/sif/reader', () => {
  let dir: string;
  before(() => {
    dir = makeTempDir('hpcc-sifr-');
  });
  after(() => removeTree(dir));

  it('reads the sample written by hpcc', async () => {
    const r = await SifReader.open(await writeSample(dir));
    try {
      expect(r.descriptors.map((d) => d.dataType)).to.deep.equal([SifDataType.Deffile, SifDataType.GenericJSON, SifDataType.Partition]);
      expect((await r.readObject(r.descriptors[0]!)).toString()).to.equal(SAMPLE_DEFFILE);
      expect((await r.readObject(r.objectsByType(SifDataType.GenericJSON)[0]!)).toString()).to.equal(SAMPLE_JSON);
      const p = r.primaryPartition();
      expect(await r.readObject(p)).to.deep.equal(SAMPLE_PART);
      const chunks: Buffer[] = [];
      for await (const c of r.objectStream(p)) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks)).to.deep.equal(SAMPLE_PART);
      expect(r.descriptorById(2).name).to.equal('inspect-metadata.json');
      expect(r.descriptors.map((d) => d.relativeId)).to.deep.equal([0, 1, 2]);
    } finally {
      await r.close();
    }
  });

  it('trusts descriptor offsets: old layout with data at 32768, sparse slots, descriptors elsewhere', async () => {
    const old = craft({ objs: [{ type: SifDataType.Deffile, offset: 32768, data: Buffer.from('def') }, prim(36864)], dataOffset: 32768 });
    const r1 = await SifReader.fromBuffer(old);
    expect(r1.header.dataOffset).to.equal(32768);
    expect((await r1.readObject(r1.descriptors[0]!)).toString()).to.equal('def');
    expect(r1.primaryPartition().offset).to.equal(36864);
    // descriptors at 128 with 3 slots, the used ones in slots 0 and 2, data right after
    const odd = craft({ descOffset: 128, total: 3, objs: [{ type: 0x7777, offset: 2000, data: Buffer.from('x') }, prim(1900, Buffer.from('hs'))], slotOf: (i) => i * 2 });
    const r2 = await SifReader.fromBuffer(odd);
    expect(r2.descriptors.map((d) => [d.index, d.id, d.dataType])).to.deep.equal([
      [0, 1, 0x7777],
      [2, 3, SifDataType.Partition],
    ]);
    expect((await r2.readObject(r2.descriptorById(3))).toString()).to.equal('hs');
  });

  it('accepts objects of size zero and a table with no used slots', async () => {
    const r = await SifReader.fromBuffer(craft({ objs: [{ type: SifDataType.Generic, offset: 32176, data: Buffer.alloc(0) }] }));
    expect(r.descriptors[0]!.size).to.equal(0);
    expect(await r.readObject(r.descriptors[0]!)).to.have.length(0);
    const e = await SifReader.fromBuffer(craft({ objs: [] }));
    expect(e.descriptors).to.deep.equal([]);
    expect(await codeOf(Promise.resolve().then(() => e.primaryPartition()))).to.equal('HPCC_E_SIF_NO_PRIMARY');
  });

  it('reports no primary and multiple primaries with typed errors', async () => {
    const two = await SifReader.fromBuffer(craft({ objs: [prim(32768), prim(36864)] }));
    expect(await codeOf(Promise.resolve().then(() => two.primaryPartition()))).to.equal('HPCC_E_SIF_MULTIPLE_PRIMARY');
    const none = await SifReader.fromBuffer(craft({ objs: [{ type: SifDataType.Deffile, offset: 32176, data: Buffer.from('d') }] }));
    expect(await codeOf(Promise.resolve().then(() => none.primaryPartition()))).to.equal('HPCC_E_SIF_NO_PRIMARY');
    expect(await codeOf(Promise.resolve().then(() => none.descriptorById(9)))).to.equal('HPCC_E_SIF_NO_OBJECT');
    const dup = await SifReader.fromBuffer(craft({ objs: [prim(32768, Buffer.from('a')), { ...prim(36864), id: 1 }] }));
    expect(await codeOf(Promise.resolve().then(() => dup.descriptorById(1)))).to.equal('HPCC_E_SIF_DUPLICATE_ID');
  });

  describe('bounds checks', () => {
    const good = (): Buffer => craft({ objs: [{ type: SifDataType.Deffile, offset: 32176, data: Buffer.from('def') }, prim(32768)] });

    it('bad magic, wrong version, short files', async () => {
      expect(await codeOf(SifReader.fromBuffer(Buffer.from('hello world\n')))).to.equal('HPCC_E_SIF_BAD_MAGIC');
      expect(await codeOf(SifReader.fromBuffer(Buffer.alloc(0)))).to.equal('HPCC_E_SIF_BAD_MAGIC');
      const b = good();
      b[32] = 0x73;
      expect(await codeOf(SifReader.fromBuffer(b))).to.equal('HPCC_E_SIF_BAD_MAGIC');
      const v = good();
      v.write('02', 42, 'latin1');
      expect(await codeOf(SifReader.fromBuffer(v))).to.equal('HPCC_E_SIF_VERSION');
      expect(await codeOf(SifReader.fromBuffer(good().subarray(0, 100)))).to.equal('HPCC_E_SIF_TRUNCATED');
    });

    it('descriptor table past the end of the file, or inconsistent sizes', async () => {
      expect(await codeOf(SifReader.fromBuffer(good().subarray(0, 20000)))).to.equal('HPCC_E_SIF_TRUNCATED');
      const many = good();
      many.writeBigInt64LE(1000n, 88);
      many.writeBigInt64LE(1000n * 585n, 104);
      expect(await codeOf(SifReader.fromBuffer(many))).to.equal('HPCC_E_SIF_TRUNCATED');
      const huge = good();
      huge.writeBigInt64LE(1n << 40n, 88);
      expect(await codeOf(SifReader.fromBuffer(huge))).to.equal('HPCC_E_SIF_BAD_HEADER');
      const small = good();
      small.writeBigInt64LE(585n, 104);
      expect(await codeOf(SifReader.fromBuffer(small))).to.equal('HPCC_E_SIF_BAD_HEADER');
      const neg = good();
      neg.writeBigInt64LE(-1n, 96);
      expect(await codeOf(SifReader.fromBuffer(neg))).to.equal('HPCC_E_SIF_BAD_HEADER');
    });

    it('objects that start or end outside the file', async () => {
      const cut = good();
      expect(await codeOf(SifReader.fromBuffer(cut.subarray(0, cut.length - 1)))).to.equal('HPCC_E_SIF_TRUNCATED');
      const negOff = good();
      negOff.writeBigInt64LE(-5n, 4096 + 17);
      expect(await codeOf(SifReader.fromBuffer(negOff))).to.equal('HPCC_E_SIF_BAD_DESCRIPTOR');
      const negSize = good();
      negSize.writeBigInt64LE(-5n, 4096 + 25);
      expect(await codeOf(SifReader.fromBuffer(negSize))).to.equal('HPCC_E_SIF_BAD_DESCRIPTOR');
      const big = good();
      big.writeBigInt64LE(1n << 62n, 4096 + 25);
      expect(await codeOf(SifReader.fromBuffer(big))).to.equal('HPCC_E_SIF_BAD_DESCRIPTOR');
      const past = good();
      past.writeBigInt64LE(BigInt(past.length), 4096 + 585 + 17);
      expect(await codeOf(SifReader.fromBuffer(past))).to.equal('HPCC_E_SIF_TRUNCATED');
    });

    it('ignores garbage in unused slots, as the reference does', async () => {
      const b = good();
      b.fill(0xff, 4096 + 2 * 585, 4096 + 3 * 585);
      b[4096 + 2 * 585 + 4] = 0;
      const r = await SifReader.fromBuffer(b);
      expect(r.descriptors).to.have.length(2);
    });

    it('caps readObject by maxBytes', async () => {
      const r = await SifReader.fromBuffer(good());
      expect(await codeOf(r.readObject(r.descriptors[1]!, 3))).to.equal('HPCC_E_SIF_OBJECT_TOO_LARGE');
      expect((await r.readObject(r.descriptors[1]!, 4)).toString()).to.equal('hsqs');
    });
  });

  it('open() reports a missing file and a directory with typed errors', async () => {
    expect(await codeOf(SifReader.open(path.join(dir, 'nope.sif')))).to.equal('HPCC_E_IO_ENOENT');
    expect(await codeOf(SifReader.open(dir))).to.equal('HPCC_E_SIF_NOT_A_FILE');
    const f = path.join(dir, 'text.txt');
    fs.writeFileSync(f, 'not a sif');
    expect(await codeOf(SifReader.open(f))).to.equal('HPCC_E_SIF_BAD_MAGIC');
  });
});
