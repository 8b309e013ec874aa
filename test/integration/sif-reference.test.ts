/**
 * SIF against the reference implementation (Debian's sylabs/sif 2.8.3 via
 * test/tools/sifcheck): every upstream test image parses and reads the same,
 * hpcc's views equal siftool's golden files, and the reference accepts (and
 * writes byte-identically) what hpcc writes.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SifDataType, SifReader, SifWriter, renderHeaderText, renderInfoText, renderListText } from '../../src/formats/sif/index.js';
import { makeTempDir, removeTree, requireTools } from '../helpers/env.js';
import { SAMPLE_DEFFILE, SAMPLE_JSON, SAMPLE_PART, SAMPLE_SHA256, writeSample } from '../unit/formats/sif/sample.js';
import { SIF_GOLDEN, SIF_IMAGES, comparable, hpccListing, imageForTestName, referenceListing, requireSifcheck, sifcheck, siftoolBytes, writeSquashSif } from './sif-helpers.js';

const IMAGES = fs.existsSync(SIF_IMAGES) ? fs.readdirSync(SIF_IMAGES).filter((n) => n.endsWith('.sif')).sort() : [];

/** Golden names of the reference's TestApp_Info → (image, id). */
const INFO_CASES: Record<string, [string, number]> = {
  Time: ['one-object-time.sif', 1],
  GenericJSON: ['one-object-generic-json.sif', 1],
  CryptMessage: ['one-object-crypt-message.sif', 1],
  SBOM: ['one-object-sbom.sif', 1],
  DataPartitionRaw: ['two-groups-signed.sif', 1],
  DataPartitionSquashFS: ['two-groups-signed.sif', 2],
  DataPartitionEXT3: ['two-groups-signed.sif', 3],
  DataSignature: ['two-groups-signed.sif', 4],
};

describe('integration: SIF vs the reference library', function () {
  this.timeout(120_000);

  before(function () {
    requireSifcheck(this);
  });

  it('finds all 17 upstream test images', () => {
    expect(IMAGES).to.have.length(17);
  });

  describe('every upstream image parses and matches the reference listing field by field', () => {
    for (const name of IMAGES) {
      it(name, async () => {
        const file = path.join(SIF_IMAGES, name);
        expect(await hpccListing(file)).to.deep.equal(comparable(referenceListing(file)));
      });
    }
  });

  describe("views equal siftool's golden files", () => {
    const goldens = (kind: string): string[] =>
      fs.existsSync(path.join(SIF_GOLDEN, kind)) ? fs.readdirSync(path.join(SIF_GOLDEN, kind)).filter((n) => n.endsWith('.golden')) : [];

    it('list and header: every golden', async () => {
      const names = [...goldens('TestApp_List'), ...goldens('TestApp_Header')];
      expect(names.length).to.be.greaterThan(30);
      for (const kind of ['TestApp_List', 'TestApp_Header']) {
        for (const g of goldens(kind)) {
          const r = await SifReader.open(imageForTestName(g.replace('.golden', '')));
          try {
            const got = kind === 'TestApp_List' ? renderListText(r.descriptors) : renderHeaderText(r.header);
            expect(got, `${kind}/${g}`).to.equal(fs.readFileSync(path.join(SIF_GOLDEN, kind, g), 'utf8'));
          } finally {
            await r.close();
          }
        }
      }
    });

    it('info: every golden', async () => {
      for (const [g, [image, id]] of Object.entries(INFO_CASES)) {
        const r = await SifReader.open(path.join(SIF_IMAGES, image));
        try {
          expect(renderInfoText(r.descriptorById(id)), g).to.equal(fs.readFileSync(path.join(SIF_GOLDEN, 'TestApp_Info', `${g}.golden`), 'utf8'));
        } finally {
          await r.close();
        }
      }
    });

    it('dump: every golden', async () => {
      const r = await SifReader.open(path.join(SIF_IMAGES, 'one-group-signed.sif'));
      try {
        for (const [g, id] of [['One', 1], ['Two', 2], ['Three', 3]] as const) {
          expect(await r.readObject(r.descriptorById(id)), g).to.deep.equal(fs.readFileSync(path.join(SIF_GOLDEN, 'TestApp_Dump', `${g}.golden`)));
        }
      } finally {
        await r.close();
      }
    });
  });

  describe('what hpcc writes', () => {
    let dir: string;
    beforeEach(() => {
      dir = makeTempDir('hpcc-sifref-');
    });
    afterEach(() => removeTree(dir));

    it('deterministic mode is byte-identical to the reference writer', async () => {
      const ours = await writeSample(dir, 'ours.sif');
      fs.writeFileSync(path.join(dir, 'def'), SAMPLE_DEFFILE);
      fs.writeFileSync(path.join(dir, 'meta.json'), SAMPLE_JSON);
      const ref = path.join(dir, 'ref.sif');
      const r = sifcheck(['create', ref, '-deterministic', `deffile::${dir}/def`, `json:inspect-metadata.json:${dir}/meta.json`, `part:1:2:amd64::${dir}/part.bin`]);
      expect(r.status, r.stderr).to.equal(0);
      const refBytes = fs.readFileSync(ref);
      expect(createHash('sha256').update(refBytes).digest('hex')).to.equal(SAMPLE_SHA256);
      expect(fs.readFileSync(ours).equals(refBytes)).to.equal(true);
      expect(fs.readFileSync(path.join(dir, 'part.bin'))).to.deep.equal(SAMPLE_PART);
    });

    it('with a time, ID, groups and links, it equals the reference writer too', async () => {
      const uuid = '6ba7b810-9dad-41d1-80b4-00c04fd430c8';
      const ours = path.join(dir, 'ours.sif');
      const w = await SifWriter.create(ours, { createdAt: 1593475316, id: Buffer.from(uuid.replace(/-/g, ''), 'hex') });
      await w.addObject({ type: SifDataType.GenericJSON, name: 'data.json', data: Buffer.from('{}') });
      await w.addObject({ type: SifDataType.Labels, name: 'labels', data: Buffer.from('{"a":"b"}') });
      await w.finish();
      fs.writeFileSync(path.join(dir, 'd.json'), '{}');
      fs.writeFileSync(path.join(dir, 'l.json'), '{"a":"b"}');
      const ref = path.join(dir, 'ref.sif');
      const r = sifcheck(['create', ref, '-time', '1593475316', '-id', uuid, `json:data.json:${dir}/d.json`, `labels:labels:${dir}/l.json`]);
      expect(r.status, r.stderr).to.equal(0);
      expect(fs.readFileSync(ours).equals(fs.readFileSync(ref))).to.equal(true);
    });

    it("a SIF with a real squashfs partition in Apptainer's order is accepted and read identically", async function () {
      requireTools(this, 'mksquashfs');
      const { img, sif } = await writeSquashSif(dir);
      const ref = referenceListing(sif) as { descriptors: { dataTypeName: string; size: number }[]; primary: number; arch: string };
      expect(ref.descriptors.map((d) => d.dataTypeName)).to.deep.equal(['Def.FILE', 'JSON.Generic', 'JSON.Generic', 'FS']);
      expect(ref.primary).to.equal(4);
      expect(ref.arch).to.equal('amd64');
      expect(ref.descriptors[3]!.size).to.equal(fs.statSync(img).size);
      expect(await hpccListing(sif)).to.deep.equal(comparable(ref));
      // and siftool's own views of it equal hpcc's
      const r = await SifReader.open(sif);
      try {
        expect(renderListText(r.descriptors)).to.equal(siftoolBytes(['list', sif]).toString());
        expect(renderHeaderText(r.header)).to.equal(siftoolBytes(['header', sif]).toString());
        for (const d of r.descriptors) {
          expect(renderInfoText(d)).to.equal(siftoolBytes(['info', String(d.id), sif]).toString());
          expect((await r.readObject(d)).equals(siftoolBytes(['dump', String(d.id), sif]))).to.equal(true);
        }
      } finally {
        await r.close();
      }
    });

    it('the reference refuses what hpcc refuses: a non-SIF and a truncated table', async () => {
      const f = path.join(dir, 'text.sif');
      fs.writeFileSync(f, 'hello\n'.repeat(100));
      expect(sifcheck(['list', f]).status).to.equal(1);
      const s = await writeSample(dir);
      fs.truncateSync(s, 20000);
      expect(sifcheck(['list', s]).status).to.equal(1);
    });
  });
});
