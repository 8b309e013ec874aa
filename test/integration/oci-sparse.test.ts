/**
 * Sparse files end to end, as the unprivileged user: `hpcc build OUT.sif
 * oci:…` of an image whose layer is a few hundred bytes claiming a 1 PiB
 * sparse file is refused with HPCC_E_OCI_SPARSE_LIMIT (exit 69) at once and
 * leaves nothing behind (the old reader streamed zeros into the image for
 * days: the run is killed after 60 s). GNU tar's own sparse output of a
 * 1 GiB file with a few written bytes still converts, in the gnu and posix
 * formats, to a small image whose file unsquashfs gives back byte for byte;
 * HPCC_SPARSE_LIMIT below its holes refuses it.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HPCC_BIN, makeTempDir, removeTree, requireTestUser, requireTools, runUnprivileged, testUserIds } from '../helpers/env.js';
import { writeImage } from '../helpers/oci-layers.js';
import { sparseTar } from '../helpers/sparse-tars.js';

const GiB = 1024 ** 3;

/** Where the squashfs partition starts: the first 'hsqs' at a 4 KiB boundary. */
function squashfsOffset(sif: string): number {
  const head = Buffer.alloc(1 << 20);
  const fd = fs.openSync(sif, 'r');
  const n = fs.readSync(fd, head, 0, head.length, 0);
  fs.closeSync(fd);
  for (let off = 4096; off + 4 <= n; off += 4096) if (head.toString('latin1', off, off + 4) === 'hsqs') return off;
  throw new Error(`${sif}: no squashfs partition in the first MiB`);
}

describe('integration: sparse layer entries (hpcc build as the unprivileged user)', function () {
  this.timeout(240_000);
  let tmp = '';
  let layout = '';
  let outDir = '';
  let src = '';

  const build = (out: string, ref: string, env: Record<string, string> = {}) =>
    runUnprivileged(process.execPath, [HPCC_BIN, 'build', '--quiet', out, ref], { timeout: 60_000, killSignal: 'SIGKILL', env });

  before(function () {
    requireTestUser(this);
    requireTools(this, 'tar', 'truncate', 'unsquashfs', 'cmp');
    if (!fs.existsSync(HPCC_BIN) || !fs.existsSync(path.resolve('dist/src/commands/build.js'))) this.skip();
    tmp = makeTempDir('hpcc-sparse-e2e-');
    layout = path.join(tmp, 'layout');
    outDir = path.join(tmp, 'out');
    fs.mkdirSync(outDir);
    const { uid, gid } = testUserIds();
    fs.chownSync(outDir, uid, gid);
    src = path.join(tmp, 'src');
    fs.mkdirSync(src);
    const f = path.join(src, 'big');
    spawnSync('truncate', ['-s', '1G', f]);
    const fd = fs.openSync(f, 'r+');
    fs.writeSync(fd, Buffer.from('start'), 0, 5, 0);
    fs.writeSync(fd, Buffer.from('in the middle'), 0, 13, 300_000_000);
    fs.writeSync(fd, Buffer.from('end'), 0, 3, GiB - 3);
    fs.closeSync(fd);
    fs.utimesSync(f, 1700000000, 1700000000);
    writeImage(layout, 'huge', { layers: [{ tar: sparseTar('gnu', [{ name: 'huge', realSize: 1024 ** 5, map: [[1024 ** 5 - 1, 1]] }]), compression: 'gzip' }] });
    for (const format of ['gnu', 'posix']) {
      const r = spawnSync('tar', ['--sparse', `--format=${format}`, '-C', src, '-cf', '-', 'big'], { maxBuffer: 1 << 26 });
      expect(r.status).to.equal(0);
      expect(r.stdout.length).to.be.below(64 * 1024);
      writeImage(layout, format, { layers: [{ tar: r.stdout, compression: 'gzip' }] });
    }
    spawnSync('chmod', ['-R', 'o+rX', layout]);
  });

  after(() => {
    if (tmp) removeTree(tmp);
  });

  it('a layer of a few hundred bytes claiming a 1 PiB sparse file: HPCC_E_OCI_SPARSE_LIMIT at once, nothing written', () => {
    const t0 = Date.now();
    const r = build(path.join(outDir, 'huge.sif'), `oci:${layout}:huge`);
    expect(r.signal, 'hpcc build was still streaming zeros after 60 s').to.equal(null);
    expect(r.status, r.stderr).to.equal(69);
    expect(r.stderr).to.contain('HPCC_E_OCI_SPARSE_LIMIT');
    expect(r.stderr).to.contain('HPCC_SPARSE_LIMIT');
    expect(Date.now() - t0).to.be.below(30_000);
    expect(fs.readdirSync(outDir)).to.deep.equal([]);
  });

  for (const format of ['gnu', 'posix']) {
    it(`GNU tar --sparse --format=${format} of a 1 GiB file converts to a small image with the same bytes`, () => {
      const out = path.join(outDir, `${format}.sif`);
      const r = build(out, `oci:${layout}:${format}`);
      expect(r.status, r.stderr).to.equal(0);
      expect(fs.statSync(out).size).to.be.below(4 << 20);
      const ex = path.join(tmp, `ex-${format}`);
      const u = spawnSync('unsquashfs', ['-q', '-n', '-o', String(squashfsOffset(out)), '-d', ex, out, 'big'], { encoding: 'utf8' });
      expect(u.status, u.stderr).to.equal(0);
      expect(fs.statSync(path.join(ex, 'big')).size).to.equal(GiB);
      expect(spawnSync('cmp', [path.join(ex, 'big'), path.join(src, 'big')]).status).to.equal(0);
      removeTree(ex);
      fs.rmSync(out);
    });
  }

  it('HPCC_SPARSE_LIMIT below the holes refuses the same image; a bad value is a usage error', () => {
    const r = build(path.join(outDir, 'lim.sif'), `oci:${layout}:gnu`, { HPCC_SPARSE_LIMIT: '512M' });
    expect(r.status, r.stderr).to.equal(69);
    expect(r.stderr).to.contain('HPCC_E_OCI_SPARSE_LIMIT');
    const bad = build(path.join(outDir, 'lim.sif'), `oci:${layout}:gnu`, { HPCC_SPARSE_LIMIT: 'lots' });
    expect(bad.status, bad.stderr).to.equal(2);
    expect(bad.stderr).to.contain('HPCC_SPARSE_LIMIT');
    expect(fs.readdirSync(outDir)).to.deep.equal([]);
  });
});
