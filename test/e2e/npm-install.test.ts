/**
 * `npm pack` + `npm install -g hpcc-VERSION.tgz` (into a temp prefix, as root) gives a
 * working `hpcc` that is the native front (the package's "bin" is dist/native/hpcc, shipped
 * prebuilt for linux-x64), run here as the unprivileged test user: version, a build, a
 * launch and a repeated launch from a memo. And the package's install script
 * (scripts/install-native.mjs) rebuilds the native parts when asked, and names what is
 * missing (the compiler, a header) when it cannot.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT, TEST_USER, makeTempDir, removeTree, requireRoot, requireTestUser, requireTools, runUnprivileged } from '../helpers/env.js';
import { makeBusyboxTree } from '../helpers/registry-fixtures.js';

function must(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${String(r.status ?? r.signal)}): ${r.stderr}`);
  return r.stdout;
}

describe('e2e: npm pack and npm install -g give the native front as `hpcc`', function () {
  this.timeout(10 * 60_000);
  let tmp = '';
  let pkgDir = '';
  let hpcc = '';

  before(function () {
    requireRoot(this);
    requireTestUser(this);
    requireTools(this, 'npm', 'busybox', 'squashfuse_ll', 'cc', 'make');
    tmp = makeTempDir('hpcc-e2e-npm-');
    fs.chmodSync(tmp, 0o755);
    // the build is this checkout's (`npm pack` would rebuild it: prepack)
    must('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp], { cwd: REPO_ROOT });
    const tgz = fs.readdirSync(tmp).find((f) => /^hpcc-.*\.tgz$/.test(f));
    expect(tgz, 'npm pack wrote no tarball').to.be.a('string');
    const prefix = path.join(tmp, 'prefix');
    must('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--engine-strict=false', path.join(tmp, tgz!)], {
      env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}` },
    });
    must('chmod', ['-R', 'o+rX', prefix]);
    hpcc = path.join(prefix, 'bin', 'hpcc');
    pkgDir = path.join(prefix, 'lib', 'node_modules', 'hpcc');
    const work = path.join(tmp, 'work');
    fs.mkdirSync(work);
    makeBusyboxTree(work);
    must('chown', ['-R', `${TEST_USER}:`, work]);
  });

  after(() => {
    if (tmp) removeTree(tmp);
  });

  const asUser = (args: string[], env: Record<string, string> = {}) =>
    runUnprivileged(hpcc, args, { cwd: path.join(tmp, 'work'), env: { PATH: '/usr/bin:/bin', HOME: `/home/${TEST_USER}`, ...env }, timeout: 120_000 });

  it('bin/hpcc is the package\'s native front, running the package\'s Node 24', () => {
    expect(fs.realpathSync(hpcc)).to.equal(path.join(fs.realpathSync(pkgDir), 'dist', 'native', 'hpcc'));
    const r = asUser(['version', '--json']);
    expect(r.status, r.stderr).to.equal(0);
    const v = JSON.parse(r.stdout) as { install: string; node: string; helper: { planVersion: number | null }; wireFormats: { plan: number } };
    expect(v.install).to.equal(fs.realpathSync(pkgDir));
    expect(v.node).to.match(/^v24\./);
    expect(v.helper.planVersion).to.equal(v.wireFormats.plan);
  });

  it('builds and launches as the user; the repeated launch comes from a memo', () => {
    const b = asUser(['build', '--quiet', 'bb.sif', 'busybox']);
    expect(b.status, b.stderr).to.equal(0);
    const first = asUser(['exec', 'bb.sif', 'echo', 'npm'], { HPCC_DEBUG: '1' });
    expect(first.status, first.stderr).to.equal(0);
    expect(first.stdout).to.equal('npm\n');
    const again = asUser(['exec', 'bb.sif', 'echo', 'npm'], { HPCC_DEBUG: '1' });
    expect(again.stdout).to.equal('npm\n');
    expect(again.stderr).to.match(/hpcc: launch memo \S+: used/);
  });

  it('the install script rebuilds the native parts on request, and names a missing compiler or header', () => {
    const script = path.join(pkgDir, 'scripts', 'install-native.mjs');
    const launch = path.join(pkgDir, 'dist', 'native', 'hpcc-launch');
    const before = fs.statSync(launch).mtimeMs;
    must(process.execPath, [script], { env: { ...process.env, HPCC_INSTALL_REBUILD: '1' } });
    expect(fs.statSync(launch).mtimeMs).to.be.greaterThan(before);
    expect(spawnSync(launch, ['--version'], { encoding: 'utf8' }).stdout).to.match(/plan-version \d+/);

    const noCc = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, HPCC_INSTALL_REBUILD: '1', CC: 'no-such-cc' } });
    expect(noCc.status).to.equal(1);
    expect(noCc.stderr).to.match(/no C compiler \(`no-such-cc`/).and.match(/hint: install a C compiler/);

    // a compiler that finds no system header
    const fake = path.join(tmp, 'nostdinc-cc');
    fs.writeFileSync(fake, '#!/bin/sh\nexec cc -nostdinc "$@"\n', { mode: 0o755 });
    const noHdr = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, HPCC_INSTALL_REBUILD: '1', CC: fake } });
    expect(noHdr.status).to.equal(1);
    expect(noHdr.stderr).to.match(/the C header <[a-z0-9_/]+\.h> is missing/).and.match(/libc6-dev/);
    expect(fs.existsSync(launch), 'a failed check leaves the built helper alone').to.equal(true);
  });
});
