import { expect } from 'chai';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HpccError } from '../../../../src/errors/index.js';
import {
  FsType,
  GO_ZERO_TIME,
  PartType,
  SifDataType,
  SifReader,
  SifWriter,
  archToSif,
  decodeDescriptor,
  decodeHeader,
} from '../../../../src/formats/sif/index.js';
import { makeTempDir, removeTree } from '../../../helpers/env.js';
import { SAMPLE_DEFFILE, SAMPLE_JSON, SAMPLE_PART, SAMPLE_SHA256, writeSample } from './sample.js';

function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.includes('.tmp-'));
}

describe('formats/sif/writer', () => {
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir('hpcc-sifw-');
  });
  afterEach(() => removeTree(dir));

  it('writes the golden deterministic sample byte for byte', async () => {
    const p = await writeSample(dir);
    const bytes = fs.readFileSync(p);
    expect(createHash('sha256').update(bytes).digest('hex')).to.equal(SAMPLE_SHA256);
    expect(bytes.length).to.equal(32768 + SAMPLE_PART.length);
  });

  it('lays objects out as the reference writer does', async () => {
    const p = await writeSample(dir);
    const b = fs.readFileSync(p);
    const h = decodeHeader(b);
    expect(h.launchScript).to.equal('#!/usr/bin/env run-singularity\n');
    expect(h.uuid).to.equal('00000000-0000-0000-0000-000000000000');
    expect(h.createdAt).to.equal(GO_ZERO_TIME);
    expect(h.archCode).to.equal('02');
    expect(h).to.include({ descriptorsTotal: 48, descriptorsFree: 45, descriptorsOffset: 4096, descriptorsSize: 28080, dataOffset: 32176 });
    const d = [0, 1, 2].map((i) => decodeDescriptor(b.subarray(4096 + i * 585, 4096 + (i + 1) * 585), i));
    // deffile right at the data offset, JSON right after it: unaligned
    expect(d[0]).to.include({ id: 1, groupId: 1, offset: 32176, size: SAMPLE_DEFFILE.length, sizeWithPadding: SAMPLE_DEFFILE.length });
    expect(d[1]).to.include({ id: 2, groupId: 1, offset: 32176 + SAMPLE_DEFFILE.length, size: SAMPLE_JSON.length, name: 'inspect-metadata.json' });
    // the partition at the next multiple of 4096, padding counted in size-with-padding
    const unaligned = 32176 + SAMPLE_DEFFILE.length + SAMPLE_JSON.length;
    expect(d[2]!.offset).to.equal(32768);
    expect(d[2]!.sizeWithPadding).to.equal(32768 - unaligned + SAMPLE_PART.length);
    expect(d[2]!.partition).to.deep.equal({ fsType: 1, partType: 2, arch: 'amd64', archCode: '02' });
    expect(h.dataSize).to.equal(32768 + SAMPLE_PART.length - 32176);
    // header gap and unused slots are zero
    expect(b.subarray(128, 4096).every((x) => x === 0)).to.equal(true);
    expect(b.subarray(4096 + 3 * 585, 32176).every((x) => x === 0)).to.equal(true);
    expect(leftovers(dir)).to.deep.equal([]);
  });

  it('does not align an object that follows a partition, and aligns every partition', async () => {
    const p = path.join(dir, 'a.sif');
    const w = await SifWriter.create(p, { deterministic: true });
    const part = async (h: fs.promises.FileHandle, off: number): Promise<number> => {
      expect(off % 4096).to.equal(0);
      await h.write(Buffer.from('hsqs+data'), 0, 9, off);
      return 9;
    };
    await w.addPartition({ fsType: FsType.Squash, partType: PartType.PrimSys, arch: 'x64' }, part);
    await w.addObject({ type: SifDataType.Generic, data: Buffer.from('abc'), groupId: 0, linkedId: 1 });
    await w.addPartition({ fsType: FsType.Squash, partType: PartType.Overlay, arch: 'arm64', groupId: 2 }, part);
    await w.finish();
    const r = await SifReader.open(p);
    try {
      const [a, b, c] = r.descriptors;
      expect(a).to.include({ offset: 32768, size: 9, sizeWithPadding: 32768 - 32176 + 9 });
      expect(b).to.include({ offset: 32777, size: 3, sizeWithPadding: 3, groupId: 0, linkedId: 1, linkedIsGroup: false });
      expect(c).to.include({ offset: 36864, size: 9, groupId: 2 });
      expect(r.header.arch).to.equal('amd64');
      expect(r.header.dataSize).to.equal(36864 + 9 - 32176);
      expect(r.primaryPartition().id).to.equal(1);
      expect((await r.readObject(c!)).toString()).to.equal('hsqs+data');
    } finally {
      await r.close();
    }
  });

  it('uses a random v4 UUID and the current time by default', async () => {
    const p = path.join(dir, 'r.sif');
    const before = Math.floor(Date.now() / 1000);
    const w = await SifWriter.create(p);
    await w.addObject({ type: SifDataType.Labels, data: Buffer.from('{}') });
    await w.finish();
    const h = decodeHeader(fs.readFileSync(p));
    expect(h.uuid).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(h.createdAt).to.be.within(before, before + 60);
    expect(h.arch).to.equal('unknown');
    expect(fs.statSync(p).mode & 0o100).to.equal(0o100);
  });

  it('honours createdAt, id, launch script and descriptor count', async () => {
    const p = path.join(dir, 'o.sif');
    const id = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
    const w = await SifWriter.create(p, { createdAt: 1593475316, id, launchScript: '', descriptorsTotal: 4 });
    await w.addObject({ type: SifDataType.GenericJSON, data: Buffer.from('{}'), name: 'data.json' });
    await w.finish();
    const r = await SifReader.open(p);
    try {
      expect(r.header).to.include({ launchScript: '', createdAt: 1593475316, modifiedAt: 1593475316, descriptorsTotal: 4, descriptorsFree: 3, dataOffset: 4096 + 4 * 585 });
      expect(Buffer.from(r.header.id)).to.deep.equal(Buffer.from(id));
      expect(r.descriptors[0]).to.include({ createdAt: 1593475316, modifiedAt: 1593475316, offset: 4096 + 4 * 585 });
    } finally {
      await r.close();
    }
  });

  it('refuses a second primary partition, unknown arches and full tables with typed errors', async () => {
    const w = await SifWriter.create(path.join(dir, 'e.sif'), { deterministic: true, descriptorsTotal: 2 });
    const part = async (): Promise<number> => 0;
    await w.addPartition({ fsType: FsType.Squash, partType: PartType.PrimSys, arch: 'amd64' }, part);
    await expectCode(w.addPartition({ fsType: FsType.Squash, partType: PartType.PrimSys, arch: 'amd64' }, part), 'HPCC_E_SIF_MULTIPLE_PRIMARY');
    await expectCode(w.addPartition({ fsType: FsType.Squash, partType: PartType.System, arch: 'vax' }, part), 'HPCC_E_SIF_UNKNOWN_ARCH');
    await expectCode(w.addObject({ type: SifDataType.Generic, data: Buffer.alloc(1), name: 'x'.repeat(129) }), 'HPCC_E_SIF_FIELD_TOO_LONG');
    await w.addObject({ type: SifDataType.Generic, data: Buffer.alloc(1) });
    await expectCode(w.addObject({ type: SifDataType.Generic, data: Buffer.alloc(1) }), 'HPCC_E_SIF_NO_FREE_DESCRIPTOR');
    await w.abort();
    expect(fs.readdirSync(dir)).to.deep.equal([]);
  });

  it('leaves nothing at the output path when aborted, and finish is atomic', async () => {
    const p = path.join(dir, 'x.sif');
    const w = await SifWriter.create(p);
    await w.addObject({ type: SifDataType.Deffile, data: Buffer.from('x') });
    expect(fs.existsSync(p)).to.equal(false);
    expect(leftovers(dir)).to.have.length(1);
    await w.abort();
    expect(fs.readdirSync(dir)).to.deep.equal([]);
    await expectCode(w.finish(), 'HPCC_E_SIF_WRITER_CLOSED');
  });

  it('removes the temp file when a partition callback fails', async () => {
    const p = path.join(dir, 'f.sif');
    const w = await SifWriter.create(p);
    let caught: unknown;
    try {
      await w.addPartition({ fsType: FsType.Squash, partType: PartType.PrimSys, arch: 'amd64' }, async () => {
        throw new Error('squashfs writer failed');
      });
    } catch (e) {
      caught = e;
    }
    expect(String(caught)).to.contain('squashfs writer failed');
    await w.abort();
    expect(fs.readdirSync(dir)).to.deep.equal([]);
  });

  it('refuses overlapping adds instead of interleaving them', async () => {
    const w = await SifWriter.create(path.join(dir, 'b.sif'));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = w.addPartition({ fsType: FsType.Squash, partType: PartType.PrimSys, arch: 'amd64' }, async () => {
      await gate;
      return 0;
    });
    await expectCode(w.addObject({ type: SifDataType.Generic, data: Buffer.from('x') }), 'HPCC_E_SIF_WRITER_BUSY');
    await expectCode(w.finish(), 'HPCC_E_SIF_WRITER_BUSY');
    release();
    expect(await first).to.equal(1);
    expect(await w.addObject({ type: SifDataType.Generic, data: Buffer.from('x') })).to.equal(2);
    await w.abort();
  });

  it('maps Node arch names to SIF codes', () => {
    expect(archToSif('x64')).to.equal('02');
    expect(archToSif('arm64')).to.equal('04');
    expect(archToSif('ia32')).to.equal('01');
    expect(archToSif('riscv64')).to.equal('12');
    expect(archToSif('s390x')).to.equal('11');
    expect(archToSif('mipsel')).to.equal('08');
    expect(archToSif('sparc')).to.equal('00');
  });
});

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(HpccError);
    expect((e as HpccError).code).to.equal(code);
    return;
  }
  expect.fail(`expected ${code}`);
}
