/**
 * The example definition files of definitions/, built for real from the
 * host's Debian mirror (Bootstrap: debootstrap, mmdebstrap as the calling
 * user) by the unprivileged test user, who has subordinate ids, and then
 * used as a user would:
 *   - python-science: %test passes (hpcc test), `hpcc run`/`hpcc exec`
 *     compute with numpy and scipy, `hpcc inspect` shows the %labels;
 *   - compile-slim: a static binary compiled in a bookworm stage runs in a
 *     scratch image that has no compiler, libc or apt;
 *   - openmpi (two debootstraps): the image's own mpirun
 *     runs its MPI program with 2 ranks in one container, and on the
 *     one-node Slurm cluster `srun -n 2 --mpi=pmix hpcc exec` runs one
 *     container per rank (the hybrid model, the image's Open MPI against the
 *     host's PMIx).
 * Each build downloads its packages from the mirror: the files run from
 * their own directory, as `hpcc build` is documented to be used there.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HPCC_BIN, IS_ROOT, REPO_ROOT, makeTempDir, removeTree, requireTestUser, requireTools, runUnprivileged, testUserIds } from '../helpers/env.js';
import { startSlurm, type TestSlurm } from '../helpers/slurm.js';

const DEFS = path.join(REPO_ROOT, 'definitions');
const FRONT = path.join(REPO_ROOT, 'dist/native/hpcc');
const BUILD_TIMEOUT_MS = 1_200_000;

describe('e2e: definitions/ built from the Debian mirror (unprivileged, subordinate ids)', function () {
  this.timeout(BUILD_TIMEOUT_MS + 120_000);
  let tmp: string;
  let env: Record<string, string>;

  before(function () {
    requireTestUser(this);
    requireTools(this, 'newuidmap', 'newgidmap', 'unshare', 'mmdebstrap', 'squashfuse_ll');
    if (!fs.existsSync(FRONT)) throw new Error(`${FRONT} missing: npm run build`);
    tmp = makeTempDir('hpcc-e2e-defs-');
    fs.mkdirSync(path.join(tmp, 'work'));
    if (IS_ROOT) execFileSync('chown', ['-R', `${testUserIds().uid}:${testUserIds().gid}`, tmp]);
    env = { HPCC_TMPDIR: path.join(tmp, 'work'), HPCC_CACHEDIR: path.join(tmp, 'cache') };
  });
  after(() => {
    if (tmp) removeTree(tmp);
  });
  afterEach(() => {
    if (tmp) expect(fs.readdirSync(path.join(tmp, 'work')).filter((n) => n.startsWith('hpcc-build-')), 'a build left its work directory').to.deep.equal([]);
  });

  /** `hpcc build OUT.sif NAME.def` as the test user, in definitions/NAME; the output of a failure in the message. */
  const build = (name: string): string => {
    const out = path.join(tmp, `${name}.sif`);
    const t0 = Date.now();
    const r = runUnprivileged(process.execPath, [HPCC_BIN, 'build', out, `${name}.def`], {
      cwd: path.join(DEFS, name),
      env,
      timeout: BUILD_TIMEOUT_MS,
      maxBuffer: 64 << 20,
    });
    expect(r.status, `hpcc build ${name}.def:\n${(r.stderr ?? '').split('\n').slice(-40).join('\n')}`).to.equal(0);
    process.stderr.write(`      (${name}: built in ${Math.round((Date.now() - t0) / 1000)} s, ${Math.round(fs.statSync(out).size / 1e6)} MB)\n`);
    return out;
  };
  const hpcc = (args: string[]) => runUnprivileged(process.execPath, [HPCC_BIN, ...args], { cwd: tmp, env, timeout: 180_000 });
  const ok = (args: string[]): string => {
    const r = hpcc(args);
    expect(r.status, `hpcc ${args.join(' ')}:\n${r.stderr}`).to.equal(0);
    return r.stdout;
  };
  const labelsOf = (sif: string): Record<string, string> =>
    (JSON.parse(ok(['inspect', '--labels', '--json', sif])) as { data: { attributes: { labels: Record<string, string> } } }).data.attributes.labels;

  it('python-science: built with numpy and scipy from apt; %test, run and exec compute with them; inspect shows the labels', () => {
    const sif = build('python-science');
    const t = hpcc(['test', sif]);
    expect(t.status, t.stderr).to.equal(0);
    expect(t.stdout + t.stderr).to.include('python-science ok: solve [0.1, 0.6] quad 2.0');

    expect(ok(['run', sif])).to.match(/^numpy 1\.24\.\d+ scipy 1\.10\.\d+$/m);
    const fft = ok(['exec', sif, 'python3', '-c', 'import numpy as np, scipy.special as s; print(round(float(np.fft.fft([1, 2, 3, 4]).real[0]), 6), s.comb(10, 3, exact=True))']);
    expect(fft.trim()).to.equal('10.0 120');
    // %environment reaches the process; /etc/os-release is bookworm's
    expect(ok(['exec', sif, 'sh', '-c', 'echo "$OMP_NUM_THREADS $PYTHONDONTWRITEBYTECODE"; . /etc/os-release; echo "$VERSION_CODENAME"']).trim().split('\n')).to.deep.equal(['1 1', 'bookworm']);

    const labels = labelsOf(sif);
    expect(labels['org.opencontainers.image.title']).to.equal('python-science');
    expect(labels['org.label-schema.usage.singularity.deffile.bootstrap']).to.equal('debootstrap');
    expect(labels['org.label-schema.usage.singularity.deffile.osversion']).to.equal('bookworm');
    expect(ok(['inspect', '--helpfile', sif])).to.include('Python 3 with numpy and scipy');
    // the package lists were removed in %post: the image has no apt lists, but dpkg knows the packages
    expect(ok(['exec', sif, 'sh', '-c', 'ls /var/lib/apt/lists | grep -c _Packages || true; dpkg-query -W -f "\\${Status}\\n" python3-scipy']).trim().split('\n')).to.deep.equal(['0', 'install ok installed']);
  });

  it('compile-slim: the binary compiled in the bookworm stage runs in a scratch image without gcc, libc or apt', () => {
    const sif = build('compile-slim');
    const t = hpcc(['test', sif]);
    expect(t.status, t.stderr).to.equal(0);
    expect(t.stdout + t.stderr).to.include('compile-slim ok');
    expect(ok(['run', sif, '1000000']).trim()).to.equal('78498');
    const r = hpcc(['exec', sif, 'sh', '-c', 'ls /usr/bin/gcc* /usr/lib/gcc /usr/include /lib/x86_64-linux-gnu /usr/bin/apt-get /var/lib/dpkg 2>/dev/null | wc -l; ls -d /src 2>/dev/null | wc -l']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim().split('\n'), 'no compiler, libc, apt or the build stage\'s /src').to.deep.equal(['0', '0']);
    // a small image: busybox and one static binary, not a Debian tree
    expect(fs.statSync(sif).size).to.be.below(8 << 20);
    expect(labelsOf(sif)['org.opencontainers.image.title']).to.equal('compile-slim');
  });

  describe('openmpi (two debootstraps)', function () {
    let sif: string;
    let slurm: TestSlurm | undefined;

    before(function () {
      sif = build('openmpi');
    });
    after(async () => {
      await slurm?.stop();
    });

    it('%test runs the MPI ring with the image\'s own mpirun and 2 ranks; exec does too; the runtime is the host\'s Open MPI version', () => {
      const t = hpcc(['test', sif]);
      expect(t.status, t.stderr).to.equal(0);
      expect(t.stdout).to.match(/mpi-ring: 2 ranks, token 1 \(expected 1\), Open MPI v4\.1\.4/);
      const r = hpcc(['exec', sif, 'mpirun', '--oversubscribe', '-n', '2', 'mpi-ring']);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/^mpi-ring: 2 ranks, token 1 \(expected 1\)/m);
      expect(ok(['exec', sif, 'sh', '-c', 'command -v gcc cc c++ || echo none']).trim(), 'no compiler in the image (mpicc, a wrapper of openmpi-bin, has nothing to call)').to.equal('none');
      expect(labelsOf(sif)['org.open-mpi.version']).to.equal('4.1.4');
    });

    it('hybrid model: srun -n 2 --mpi=pmix hpcc exec runs one container per rank with the image\'s Open MPI', async function () {
      if (!IS_ROOT) this.skip();
      requireTools(this, 'slurmctld', 'slurmd', 'srun', 'sinfo', 'munged', 'munge');
      slurm = await startSlurm();
      fs.chmodSync(sif, 0o644);
      const r = runUnprivileged('srun', ['-n', '2', '--mpi=pmix', FRONT, 'exec', sif, 'mpi-ring'], {
        cwd: tmp,
        env: { ...env, SLURM_CONF: slurm.conf },
        timeout: 180_000,
      });
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/^mpi-ring: 2 ranks, token 1 \(expected 1\), Open MPI v4\.1\.4/m);
    });
  });
});
