/** `hpcc sif list|info|header|dump` as a subprocess: stdout, stderr, exit codes. */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SIF_GOLDEN, SIF_IMAGES } from '../integration/sif-helpers.js';
import { HPCC_BIN, makeTempDir, removeTree, runHpcc } from '../helpers/env.js';
import { SAMPLE_DEFFILE, SAMPLE_JSON, SAMPLE_PART, writeSample } from '../unit/formats/sif/sample.js';

describe('e2e: hpcc sif commands', function () {
  this.timeout(60_000);
  let dir: string;
  let sample: string;

  before(async () => {
    dir = makeTempDir('hpcc-sife2e-');
    sample = await writeSample(dir);
  });
  after(() => removeTree(dir));

  it('sif list prints the siftool table', () => {
    const r = runHpcc(['sif', 'list', sample]);
    expect(r.status, String(r.stderr)).to.equal(0);
    expect(r.stdout).to.equal(
      [
        '-'.repeat(78),
        'ID   |GROUP   |LINK    |SIF POSITION (start-end)  |TYPE',
        '-'.repeat(78),
        '1    |1       |NONE    |32176-32215               |Def.FILE',
        '2    |1       |NONE    |32215-32233               |JSON.Generic',
        '3    |1       |NONE    |32768-37768               |FS (Squashfs/*System/amd64)',
        '',
      ].join('\n'),
    );
  });

  it('sif header prints the siftool header', () => {
    const r = runHpcc(['sif', 'header', sample]);
    expect(r.status, String(r.stderr)).to.equal(0);
    expect(r.stdout).to.contain('Launch Script:        #!/usr/bin/env run-singularity\n');
    expect(r.stdout).to.contain('Primary Architecture: amd64\n');
    expect(r.stdout).to.contain('Data Offset:          32176\n');
  });

  it('sif info IMAGE ID prints one descriptor', () => {
    const r = runHpcc(['sif', 'info', sample, '3']);
    expect(r.status, String(r.stderr)).to.equal(0);
    expect(r.stdout).to.equal(
      [
        '  Data Type:        FS',
        '  ID:               3',
        '  Group ID:         1',
        '  Linked ID:        NONE',
        '  Offset:           32768',
        '  Size:             5000',
        '  Filesystem Type:  Squashfs',
        '  Partition Type:   *System',
        '  Architecture:     amd64',
        '',
      ].join('\n'),
    );
  });

  it('sif dump IMAGE ID writes the raw bytes', () => {
    // binary stdout: spawn directly (runHpcc decodes stdout as UTF-8)
    const r = spawnSync(process.execPath, [HPCC_BIN, 'sif', 'dump', sample, '3']);
    expect(r.status, String(r.stderr)).to.equal(0);
    expect(Buffer.compare(r.stdout, SAMPLE_PART)).to.equal(0);
    const d = runHpcc(['sif', 'dump', sample, '1']);
    expect(d.stdout).to.equal(SAMPLE_DEFFILE);
  });

  it('sif dump stops quietly when the reader goes away', async () => {
    const { SifWriter, FsType, PartType } = await import('../../src/formats/sif/index.js');
    const big = path.join(dir, 'big.sif');
    const w = await SifWriter.create(big);
    await w.addPartition({ fsType: FsType.Raw, partType: PartType.Data, arch: 'amd64' }, async (h, off) => {
      const chunk = Buffer.alloc(1 << 20, 0x5a);
      for (let i = 0; i < 8; i++) await h.write(chunk, 0, chunk.length, off + i * chunk.length);
      return 8 << 20;
    });
    await w.finish();
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${HPCC_BIN}" sif dump "${big}" 1 | head -c 10 >/dev/null; echo "status=\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
    expect(r.stdout).to.contain('status=0');
    expect(r.stderr).to.not.contain('Error (');
  });

  it('--json shapes', () => {
    const list = JSON.parse(String(runHpcc(['sif', 'list', '--json', sample]).stdout));
    expect(list.descriptors).to.have.length(3);
    expect(list.descriptors[2]).to.deep.include({ id: 3, dataType: 0x4004, dataTypeName: 'FS', groupId: 1, linkedId: 0, linkedIsGroup: false, offset: 32768, size: 5000 });
    expect(list.descriptors[2].partition).to.deep.equal({ fsType: 1, fsTypeName: 'Squashfs', partType: 2, partTypeName: '*System', arch: 'amd64', archCode: '02' });
    const header = JSON.parse(String(runHpcc(['sif', 'header', '--json', sample]).stdout));
    expect(header.header).to.deep.include({ magic: 'SIF_MAGIC', version: '01', arch: 'amd64', archCode: '02', id: '00000000-0000-0000-0000-000000000000', descriptorsTotal: 48, descriptorsFree: 45, dataOffset: 32176 });
    const info = JSON.parse(String(runHpcc(['sif', 'info', '--json', sample, '2']).stdout));
    expect(info.descriptor).to.deep.include({ id: 2, name: 'inspect-metadata.json', dataTypeName: 'JSON.Generic', size: SAMPLE_JSON.length });
    const dump = JSON.parse(String(runHpcc(['sif', 'dump', '--json', sample, '2']).stdout));
    expect(dump).to.deep.equal({ id: 2, size: SAMPLE_JSON.length, encoding: 'base64', data: Buffer.from(SAMPLE_JSON).toString('base64') });
  });

  it('matches the reference golden output on the upstream images', function () {
    if (!fs.existsSync(SIF_GOLDEN)) this.skip();
    const img = path.join(SIF_IMAGES, 'two-groups-signed.sif');
    expect(runHpcc(['sif', 'list', img]).stdout).to.equal(fs.readFileSync(path.join(SIF_GOLDEN, 'TestApp_List/TwoGroupsSigned.golden'), 'utf8'));
    expect(runHpcc(['sif', 'header', img]).stdout).to.equal(fs.readFileSync(path.join(SIF_GOLDEN, 'TestApp_Header/TwoGroupsSigned.golden'), 'utf8'));
    expect(runHpcc(['sif', 'info', img, '4']).stdout).to.equal(fs.readFileSync(path.join(SIF_GOLDEN, 'TestApp_Info/DataSignature.golden'), 'utf8'));
  });

  describe('errors and exit codes', () => {
    it('a non-SIF file: exit 64, Error (HPCC_E_SIF_BAD_MAGIC)', () => {
      const f = path.join(dir, 'not.sif');
      fs.writeFileSync(f, 'just some text\n');
      for (const cmd of [['list', f], ['header', f], ['info', f, '1'], ['dump', f, '1']]) {
        const r = runHpcc(['sif', ...cmd]);
        expect(r.status, cmd.join(' ')).to.equal(64);
        expect(r.stderr).to.contain('Error (HPCC_E_SIF_BAD_MAGIC)');
        expect(r.stderr).to.contain('Try this:');
        expect(r.stdout).to.equal('');
      }
      const j = runHpcc(['sif', 'list', '--json', f]);
      expect(j.status).to.equal(64);
      expect(JSON.parse(String(j.stdout))).to.deep.include({ status: 'error' });
      expect(JSON.parse(String(j.stdout)).error.code).to.equal('HPCC_E_SIF_BAD_MAGIC');
    });

    it('a truncated SIF: exit 64, HPCC_E_SIF_TRUNCATED', () => {
      const t = path.join(dir, 'trunc.sif');
      fs.writeFileSync(t, fs.readFileSync(sample).subarray(0, 33000));
      const r = runHpcc(['sif', 'list', t]);
      expect(r.status).to.equal(64);
      expect(r.stderr).to.contain('Error (HPCC_E_SIF_TRUNCATED)');
    });

    it('a missing file: exit 80, HPCC_E_IO_ENOENT', () => {
      const r = runHpcc(['sif', 'header', path.join(dir, 'missing.sif')]);
      expect(r.status).to.equal(80);
      expect(r.stderr).to.contain('Error (HPCC_E_IO_ENOENT)');
    });

    it('an unknown object ID: exit 64, HPCC_E_SIF_NO_OBJECT', () => {
      const r = runHpcc(['sif', 'info', sample, '9']);
      expect(r.status).to.equal(64);
      expect(r.stderr).to.contain('Error (HPCC_E_SIF_NO_OBJECT)');
    });

    it('a malformed ID or missing argument: usage error, exit 2', () => {
      expect(runHpcc(['sif', 'info', sample, 'abc']).status).to.equal(2);
      expect(runHpcc(['sif', 'dump', sample]).status).to.equal(2);
      expect(runHpcc(['sif', 'info', sample, '0']).status).to.equal(2);
    });
  });
});
