/**
 * --nv end to end as the unprivileged test user. No GPU is needed: a
 * stand-in driver library (a real shared object built here with the marker
 * string in it) sits in a directory named by [gpu] libdirs, the way a site
 * points hpcc at drivers outside the loader's cache; `ldconfig -p` is the
 * host's own. The library must appear read-only in /.singularity.d/libs,
 * on LD_LIBRARY_PATH; a file that is not a driver library must not.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, REPO_ROOT, removeTree, requireTools, runUnprivileged, testUserIds } from '../helpers/env.js';
import { hpccAs, makeE2eImage, type E2eImage } from './launch-fixture.js';

const FRONT = path.join(REPO_ROOT, 'dist/native/hpcc');

describe('e2e: --nv (host NVIDIA driver files)', function () {
  this.timeout(120_000);
  let img: E2eImage;
  let conf: string;
  let lib: string;

  before(function () {
    requireTools(this, 'cc');
    // The stand-in driver only: a host with a real one lists more libraries (and needs a GPU check instead).
    if (/libnvidia-ml\.so|libcuda\.so|libhsa-runtime64\.so/.test(spawnSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '')) this.skip();
    img = makeE2eImage(this, 'hpcc-e2e-nv-');
    const drv = path.join(img.tmp, 'driver');
    fs.mkdirSync(drv);
    const src = path.join(drv, 'nvml.c');
    fs.writeFileSync(src, 'const char hpcc_marker[] = "hpcc-fake-nvml";\nint nvmlInit(void) { return 0; }\n');
    lib = path.join(drv, 'libnvidia-ml.so.1');
    execFileSync('cc', ['-shared', '-fPIC', '-o', lib, src]);
    fs.copyFileSync(lib, path.join(drv, 'libnotadriver.so.1'));
    conf = path.join(img.tmp, 'hpcc.conf');
    fs.writeFileSync(conf, `[gpu]\nlibdirs = ${drv}\n`);
    if (IS_ROOT) {
      const { uid, gid } = testUserIds();
      execFileSync('chown', ['-R', `${uid}:${gid}`, drv, conf]);
    }
  });
  after(() => {
    if (img?.tmp) removeTree(img.tmp);
  });

  it('the driver library is in /.singularity.d/libs, read-only and on LD_LIBRARY_PATH; other files are not', () => {
    const script = [
      'ls /.singularity.d/libs',
      'echo "LDP=$LD_LIBRARY_PATH"',
      'grep -c hpcc-fake-nvml /.singularity.d/libs/libnvidia-ml.so.1',
      '(echo x > /.singularity.d/libs/libnvidia-ml.so.1) 2>/dev/null && echo WROTE || echo READONLY',
    ].join('; ');
    const r = hpccAs(img.tmp, ['exec', '--nv', img.sif, 'sh', '-c', script], { env: { HPCC_CONFIG: conf } });
    expect(r.status, r.stderr).to.equal(0);
    const lines = r.stdout.split('\n');
    expect(lines).to.include('libnvidia-ml.so.1');
    expect(lines).to.not.include('libnotadriver.so.1');
    expect(lines.find((l) => l.startsWith('LDP='))!.split('=')[1]!.split(':')).to.include('/.singularity.d/libs');
    expect(lines).to.include('1');
    expect(lines).to.include('READONLY');
    expect(r.stderr).to.not.contain('no NVIDIA driver libraries');
    // the host file is untouched
    expect(fs.readFileSync(lib).includes(Buffer.from('hpcc-fake-nvml'))).to.equal(true);
  });

  it('through the native front: the second launch comes from its memo; a new driver library sends the next one through Node', () => {
    const cache = path.join(img.tmp, 'cache-nv');
    fs.mkdirSync(cache);
    if (IS_ROOT) execFileSync('chown', [`${testUserIds().uid}:${testUserIds().gid}`, cache]);
    const front = () =>
      runUnprivileged(FRONT, ['exec', '--nv', img.sif, 'ls', '/.singularity.d/libs'], {
        cwd: img.tmp,
        env: { HPCC_CONFIG: conf, HPCC_CACHEDIR: cache, HPCC_DEBUG: '1' },
        timeout: 60_000,
      });
    const used = (r: { stderr: string }) => /launch memo \S+: used/.test(r.stderr);
    let r = front();
    expect([r.status, r.stdout, used(r)], r.stderr).to.deep.equal([0, 'libnvidia-ml.so.1\n', false]);
    r = front();
    expect([r.status, r.stdout, used(r)], r.stderr).to.deep.equal([0, 'libnvidia-ml.so.1\n', true]);
    fs.copyFileSync(lib, path.join(path.dirname(lib), 'libcuda.so.1'));
    fs.chmodSync(path.join(path.dirname(lib), 'libcuda.so.1'), 0o755);
    r = front();
    expect([r.status, r.stdout, used(r)], r.stderr).to.deep.equal([0, 'libcuda.so.1\nlibnvidia-ml.so.1\n', false]);
    expect(r.stderr).to.match(/a fact changed/);
    fs.rmSync(path.join(path.dirname(lib), 'libcuda.so.1'));
  });

  it('--rocm takes the ROCm libraries only; --nv --rocm both', () => {
    const hsa = path.join(path.dirname(lib), 'libhsa-runtime64.so.1');
    fs.copyFileSync(lib, hsa);
    try {
      const ls = (flags: string[]) => hpccAs(img.tmp, ['exec', ...flags, img.sif, 'ls', '/.singularity.d/libs'], { env: { HPCC_CONFIG: conf } });
      let r = ls(['--rocm']);
      expect([r.status, r.stdout], r.stderr).to.deep.equal([0, 'libhsa-runtime64.so.1\n']);
      r = ls(['--nv', '--rocm']);
      expect([r.status, r.stdout], r.stderr).to.deep.equal([0, 'libhsa-runtime64.so.1\nlibnvidia-ml.so.1\n']);
    } finally {
      fs.rmSync(hsa);
    }
  });

  it('without any driver on the host: a warning, and the container runs', () => {
    const empty = path.join(img.tmp, 'empty.conf');
    fs.writeFileSync(empty, '');
    fs.chmodSync(empty, 0o644);
    const r = hpccAs(img.tmp, ['exec', '--nv', img.sif, 'echo', 'ran'], { env: { HPCC_CONFIG: empty } });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('ran\n');
    expect(r.stderr).to.contain('warning: --nv: no NVIDIA driver libraries found');
    const both = hpccAs(img.tmp, ['exec', '--nv', '--rocm', img.sif, 'true'], { env: { HPCC_CONFIG: empty } });
    expect(both.status, both.stderr).to.equal(0);
    expect(both.stderr).to.contain('warning: --nv:').and.contain('warning: --rocm: no ROCm driver libraries found');
  });
});
