/**
 * hpcc build / build --sandbox / inspect as a subprocess: outputs, exit
 * codes, error rendering, determinism, and checks of the SIF it writes
 * with real tools (unsquashfs on the partition offset, the reference SIF
 * library through test/.cache/bin/sifcheck when built).
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  REPO_ROOT,
  makeTempDir,
  removeTree,
  requireTestUser,
  requireTools,
  runHpcc,
  runUnprivileged,
  HPCC_BIN,
} from '../helpers/env.js';

function sha256(p: string): string {
  return createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

/** A small image tree with an Apptainer-style /.singularity.d. */
function makeTree(root: string): void {
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(root, 'etc'));
  fs.mkdirSync(path.join(root, 'data/deep/er'), { recursive: true });
  fs.mkdirSync(path.join(root, '.singularity.d/env'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/os-release'), 'NAME="e2e"\nID=e2e\n');
  fs.writeFileSync(path.join(root, 'data/big.bin'), Buffer.alloc(300_000, 7));
  fs.writeFileSync(path.join(root, 'data/deep/er/small.txt'), 'small\n');
  fs.writeFileSync(path.join(root, 'data/empty'), '');
  fs.symlinkSync('../etc/os-release', path.join(root, 'data/link'));
  fs.linkSync(path.join(root, 'data/deep/er/small.txt'), path.join(root, 'data/hard'));
  fs.writeFileSync(path.join(root, 'bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  fs.chmodSync(path.join(root, 'bin/tool'), 0o4755);
  fs.writeFileSync(path.join(root, '.singularity.d/labels.json'), JSON.stringify({ maintainer: 'e2e', 'org.test.version': '3' }));
  fs.writeFileSync(path.join(root, '.singularity.d/runscript'), '#!/bin/sh\necho run "$@"\n', { mode: 0o755 });
  fs.writeFileSync(path.join(root, '.singularity.d/test'), '#!/bin/sh\ntrue\n', { mode: 0o755 });
  fs.writeFileSync(path.join(root, '.singularity.d/runscript.help'), 'Help text.\n');
  fs.writeFileSync(path.join(root, '.singularity.d/Singularity'), 'Bootstrap: scratch\n\n%runscript\n    echo run\n');
  fs.writeFileSync(path.join(root, '.singularity.d/env/90-environment.sh'), '#!/bin/sh\nexport E2E=1\n');
  fs.writeFileSync(path.join(root, '.singularity.d/env/01-base.sh'), '#!/bin/sh\n');
  for (const p of ['', 'bin', 'etc', 'data', 'data/deep', 'data/deep/er', 'data/big.bin', 'etc/os-release']) {
    fs.utimesSync(path.join(root, p), 1_600_000_000, 1_600_000_000);
  }
}

describe('e2e: hpcc build / inspect', function () {
  this.timeout(120_000);
  let tmp: string;
  let tree: string;
  let sif: string;

  before(function () {
    if (!fs.existsSync(path.join(REPO_ROOT, 'dist/src/commands/build.js'))) throw new Error('run npm run build first');
    tmp = makeTempDir();
    tree = path.join(tmp, 'tree');
    makeTree(tree);
    sif = path.join(tmp, 'img.sif');
    const r = runHpcc(['build', '--deterministic', sif, tree]);
    expect(r.status, r.stderr).to.equal(0);
  });
  after(() => removeTree(tmp));

  it('writes a SIF whose header and primary squashfs partition are valid', () => {
    const buf = fs.readFileSync(sif);
    expect(buf.subarray(0, 31).toString()).to.equal('#!/usr/bin/env run-singularity\n');
    expect(buf.subarray(32, 41).toString()).to.equal('SIF_MAGIC');
    const list = runHpcc(['sif', 'list', sif]);
    expect(list.status, list.stderr).to.equal(0);
    expect(list.stdout).to.match(/Deffile|Def\.FILE/);
    expect(list.stdout).to.match(/inspect-metadata\.json|JSON\.Generic/);
    expect(list.stdout).to.match(/FS|Squashfs/);
  });

  it('is byte-identical when built twice with --deterministic', () => {
    const again = path.join(tmp, 'again.sif');
    const r = runHpcc(['build', '--deterministic', again, tree]);
    expect(r.status, r.stderr).to.equal(0);
    expect(sha256(again)).to.equal(sha256(sif));
    fs.rmSync(again);
  });

  it('has a partition unsquashfs reads at its offset, equal to the source tree', function () {
    requireTools(this, 'unsquashfs');
    const header = fs.readFileSync(sif).subarray(0, 4096);
    const hsqs = fs.readFileSync(sif).indexOf(Buffer.from('hsqs'), 32176);
    expect(hsqs % 4096, 'partition is 4096-aligned').to.equal(0);
    expect(header.length).to.equal(4096);
    const out = path.join(tmp, 'unsq');
    execFileSync('unsquashfs', ['-no-progress', '-o', String(hsqs), '-d', out, sif], { stdio: 'pipe' });
    const diff = spawnSync('diff', ['-r', '--no-dereference', tree, out], { encoding: 'utf8' });
    expect(diff.status, diff.stdout).to.equal(0);
    expect(fs.statSync(path.join(out, 'bin/tool')).mode & 0o7777).to.equal(0o4755);
    removeTree(out);
  });

  it('is accepted by the reference SIF library (sifcheck)', function () {
    const sifcheck = path.join(REPO_ROOT, 'test/.cache/bin/sifcheck');
    if (!fs.existsSync(sifcheck)) {
      if (process.env.CI) throw new Error('sifcheck not built (test/tools/build.sh)');
      this.skip();
    }
    const r = spawnSync(sifcheck, ['list', sif], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const ref = JSON.parse(r.stdout);
    expect(ref.descriptors.map((d: { dataTypeName: string }) => d.dataTypeName)).to.deep.equal(['Def.FILE', 'JSON.Generic', 'FS']);
    const part = ref.descriptors[2];
    expect(ref.primary).to.equal(part.id);
    expect(part.partition).to.deep.equal({ fsType: 1, partType: 2, arch: ref.arch });
    expect(part.offset % 4096).to.equal(0);
    expect(Buffer.from(ref.descriptors[1].nameHex, 'hex').toString()).to.equal('inspect-metadata.json');
  });

  it('inspect shows labels by default, and every section with --all --json', () => {
    const r = runHpcc(['inspect', sif]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('maintainer: e2e');
    expect(r.stdout).to.contain('org.test.version: 3');
    const j = runHpcc(['inspect', '--all', '--json', sif]);
    expect(j.status, j.stderr).to.equal(0);
    const a = JSON.parse(j.stdout).data.attributes;
    expect(a.labels).to.deep.equal({ maintainer: 'e2e', 'org.test.version': '3' });
    expect(a.runscript).to.equal('#!/bin/sh\necho run "$@"');
    expect(a.test).to.equal('#!/bin/sh\ntrue');
    expect(a.helpfile).to.equal('Help text.');
    expect(a.deffile).to.contain('Bootstrap: scratch');
    expect(a.environment['/.singularity.d/env/90-environment.sh']).to.contain('export E2E=1');
    const rs = runHpcc(['inspect', '--runscript', sif]);
    expect(rs.stdout).to.equal('#!/bin/sh\necho run "$@"\n');
  });

  it('inspect reads the image tree when the SIF has no metadata object (sandbox dir too)', () => {
    const r = runHpcc(['inspect', '--json', '--helpfile', tree]);
    expect(r.status, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout).data.attributes.helpfile).to.equal('Help text.');
  });

  it('build --sandbox unpacks the SIF into a tree equal to the source', () => {
    const out = path.join(tmp, 'sandbox');
    const r = runHpcc(['build', '--sandbox', out, sif]);
    expect(r.status, r.stderr).to.equal(0);
    const diff = spawnSync('diff', ['-r', '--no-dereference', tree, out], { encoding: 'utf8' });
    expect(diff.status, diff.stdout).to.equal(0);
    expect(fs.statSync(path.join(out, 'data/hard')).ino).to.equal(fs.statSync(path.join(out, 'data/deep/er/small.txt')).ino);
    expect(fs.readlinkSync(path.join(out, 'data/link'))).to.equal('../etc/os-release');
    expect(fs.statSync(path.join(out, 'data/big.bin')).mtimeMs).to.equal(1_600_000_000_000);
    // Refuses to overwrite without --force, replaces with it.
    const again = runHpcc(['build', '--sandbox', out, sif]);
    expect(again.status).to.equal(2);
    expect(again.stderr).to.contain('Error (HPCC_E_USAGE)');
    expect(again.stderr).to.contain('--force');
    const forced = runHpcc(['build', '--force', '--sandbox', out, sif]);
    expect(forced.status, forced.stderr).to.equal(0);
    removeTree(out);
  });

  it('adds a minimal /.singularity.d to a plain tree', () => {
    const plain = path.join(tmp, 'plain');
    fs.mkdirSync(path.join(plain, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(plain, 'etc/hostname'), 'x\n');
    const out = path.join(tmp, 'plain.sif');
    expect(runHpcc(['build', out, plain]).status).to.equal(0);
    const j = JSON.parse(runHpcc(['inspect', '--all', out]).stdout);
    expect(j.data.attributes.runscript).to.contain('exec /bin/sh');
    fs.rmSync(out);
  });

  describe('bad input', () => {
    it('a missing source: typed I/O error, exit 80, no output', () => {
      const out = path.join(tmp, 'never.sif');
      const r = runHpcc(['build', out, path.join(tmp, 'nope')]);
      expect(r.status).to.equal(80);
      expect(r.stderr).to.match(/^Error \(HPCC_E_IO_ENOENT\): /m);
      expect(r.stderr).to.contain('Try this:');
      expect(fs.existsSync(out)).to.equal(false);
    });

    it('an existing output without --force: usage error, file untouched', () => {
      const before = sha256(sif);
      const r = runHpcc(['build', sif, tree]);
      expect(r.status).to.equal(2);
      expect(r.stderr).to.contain('already exists');
      expect(sha256(sif)).to.equal(before);
    });

    it('a non-SIF file: SIF format error with exit 64, for inspect and --sandbox', () => {
      const junk = path.join(tmp, 'junk.sif');
      fs.writeFileSync(junk, Buffer.alloc(5000, 0x41));
      const r = runHpcc(['inspect', junk]);
      expect(r.status).to.equal(64);
      expect(r.stderr).to.match(/Error \(HPCC_E_SIF_/);
      const s = runHpcc(['build', '--sandbox', path.join(tmp, 'sb'), junk]);
      expect(s.status).to.equal(64);
      expect(fs.existsSync(path.join(tmp, 'sb'))).to.equal(false);
      const j = runHpcc(['inspect', '--json', junk]);
      expect(JSON.parse(j.stdout)).to.have.nested.property('error.code').that.matches(/^HPCC_E_SIF_/);
    });

    it('a corrupted squashfs partition: squashfs format error, no sandbox left behind', () => {
      const bad = path.join(tmp, 'bad.sif');
      const buf = fs.readFileSync(sif);
      const off = buf.indexOf(Buffer.from('hsqs'), 32176);
      buf.fill(0xff, off + 96, off + 4096); // destroy the first data/metadata bytes
      buf.writeUInt32LE(0xdeadbeef, off + 64); // inode_table_start out of range
      fs.writeFileSync(bad, buf);
      const out = path.join(tmp, 'bad-sandbox');
      const r = runHpcc(['build', '--sandbox', out, bad]);
      expect(r.status).to.equal(65);
      expect(r.stderr).to.match(/Error \(HPCC_E_SQFS_/);
      expect(fs.existsSync(out)).to.equal(false);
      expect(fs.readdirSync(tmp).filter((n) => n.includes('hpcc-tmp'))).to.deep.equal([]);
    });

    it('an unreadable file (as an unprivileged user): error naming it, nothing left at the output', function () {
      requireTestUser(this);
      const src = path.join(tmp, 'locked');
      fs.mkdirSync(path.join(src, 'd'), { recursive: true });
      fs.writeFileSync(path.join(src, 'd/secret'), 'x');
      fs.chmodSync(path.join(src, 'd/secret'), 0o000);
      const outDir = path.join(tmp, 'outdir');
      fs.mkdirSync(outDir, { mode: 0o777 });
      fs.chmodSync(outDir, 0o777);
      const r = runUnprivileged(process.execPath, [HPCC_BIN, 'build', path.join(outDir, 'x.sif'), src]);
      expect(r.status, String(r.stderr)).to.not.equal(0);
      expect(String(r.stderr)).to.contain('secret');
      expect(fs.readdirSync(outDir)).to.deep.equal([]);
    });

    it('a bad block size is a usage error', () => {
      const r = runHpcc(['build', '--block-size', '3K', path.join(tmp, 'x.sif'), tree]);
      expect(r.status).to.equal(2);
      expect(r.stderr).to.contain('power of two');
    });
  });
});
