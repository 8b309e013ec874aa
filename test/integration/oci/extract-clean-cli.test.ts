/**
 * `hpcc cache list|clean --type extract` against the real launcher: a tree
 * extracted by `hpcc exec --unsquash` is listed, kept while a container runs
 * from it (as the unprivileged test user, in its own user + mount namespace),
 * and removed once the container has exited.
 */
import { expect } from 'chai';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  HPCC_BIN,
  IS_ROOT,
  REPO_ROOT,
  findTool,
  makeTempDir,
  removeTree,
  requireTestUser,
  requireTools,
  runHpcc,
  runUnprivileged,
  testUserIds,
} from '../../helpers/env.js';

interface Listed {
  entries: Array<{ type: string; name: string; size: number }>;
}
interface Cleaned {
  removed: Array<{ type: string; name: string }>;
  busy: Array<{ type: string; name: string }>;
}

describe('cache --type extract with the launcher (exec --unsquash)', function () {
  this.timeout(120_000);
  let tmp: string;
  let sif: string;
  let cache: string;
  let child: ChildProcess | undefined;
  const env = () => ({ HPCC_CACHEDIR: cache, HOME: IS_ROOT ? '/home/hpcctest' : process.env.HOME! });
  const hpcc = (args: string[]) => runUnprivileged(process.execPath, [HPCC_BIN, ...args], { cwd: tmp, env: env(), timeout: 60_000 });

  before(function () {
    requireTools(this, 'busybox', 'unshare');
    requireTestUser(this);
    if (!fs.existsSync(path.join(REPO_ROOT, 'dist/native/hpcc-launch'))) throw new Error('run npm run build first (dist/native/hpcc-launch missing)');
    tmp = makeTempDir('hpcc-extract-clean-');
    const tree = path.join(tmp, 'tree');
    for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'etc']) fs.mkdirSync(path.join(tree, d), { recursive: true });
    fs.copyFileSync(findTool('busybox')!, path.join(tree, 'bin/busybox'));
    fs.chmodSync(path.join(tree, 'bin/busybox'), 0o755);
    for (const a of ['sh', 'sleep', 'echo', 'true']) fs.symlinkSync('busybox', path.join(tree, 'bin', a));
    sif = path.join(tmp, 'img.sif');
    const r = runHpcc(['build', sif, tree]);
    expect(r.status, r.stderr).to.equal(0);
    fs.chmodSync(sif, 0o644);
    cache = path.join(tmp, 'cache');
    fs.mkdirSync(cache);
    if (IS_ROOT) execFileSync('chown', [`${testUserIds().uid}:${testUserIds().gid}`, cache, tmp]);
  });
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child!.once('exit', resolve));
    }
    child = undefined;
  });
  after(() => {
    if (tmp) {
      execFileSync('chmod', ['-R', 'u+w', tmp]);
      removeTree(tmp);
    }
  });

  it('lists the extraction, keeps it while a container runs from it, removes it afterwards', async () => {
    // A running container on the extracted tree.
    const base = { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', ...env() };
    const args = [HPCC_BIN, 'exec', '--unsquash', sif, 'sh', '-c', 'echo ready; exec sleep 60'];
    child = IS_ROOT
      ? spawn('setpriv', ['--reuid', String(testUserIds().uid), '--regid', String(testUserIds().gid), '--init-groups', '--', process.execPath, ...args], { cwd: tmp, env: base })
      : spawn(process.execPath, args, { cwd: tmp, env: base });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error(`container did not start: ${out}`)), 60_000);
      child!.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) {
          clearTimeout(t);
          resolve();
        }
      });
      child!.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      child!.once('exit', (code) => reject(new Error(`hpcc exec exited (${code}): ${out}`)));
    });
    const key = fs.readdirSync(path.join(cache, 'rootfs')).filter((n) => !n.startsWith('.'));
    expect(key).to.have.length(1);

    let r = hpcc(['cache', 'list', '--type', 'extract', '--json']);
    expect(r.status, r.stderr).to.equal(0);
    const listed = JSON.parse(r.stdout) as Listed;
    expect(listed.entries.map((e) => [e.type, e.name])).to.deep.equal([['extract', key[0]]]);
    expect(listed.entries[0]!.size).to.be.greaterThan(100_000); // busybox
    r = hpcc(['cache', 'list', '--type', 'blob', '--json']);
    expect((JSON.parse(r.stdout) as Listed).entries).to.deep.equal([]);

    // In use: kept, by clean and by --dry-run.
    r = hpcc(['cache', 'clean', '--type', 'extract', '--dry-run', '--json']);
    expect(r.status, r.stderr).to.equal(0);
    let c = JSON.parse(r.stdout) as Cleaned;
    expect(c.busy.map((e) => e.name)).to.deep.equal(key);
    expect(c.removed).to.deep.equal([]);
    r = hpcc(['cache', 'clean', '--type', 'all']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.contain(`In use, kept: extract ${key[0]}`);
    expect(fs.existsSync(path.join(cache, 'rootfs', key[0]!, 'bin', 'busybox'))).to.equal(true);

    // The container ends: now it goes (not with --days 1: it was just used).
    child.kill('SIGTERM');
    await new Promise((resolve) => child!.once('exit', resolve));
    r = hpcc(['cache', 'clean', '--type', 'extract', '--days', '1', '--json']);
    expect((JSON.parse(r.stdout) as Cleaned).removed).to.deep.equal([]);
    r = hpcc(['cache', 'clean', '--type', 'extract', '--json']);
    expect(r.status, r.stderr).to.equal(0);
    c = JSON.parse(r.stdout) as Cleaned;
    expect(c.removed.map((e) => e.name)).to.deep.equal(key);
    expect(c.busy).to.deep.equal([]);
    expect(fs.readdirSync(path.join(cache, 'rootfs'))).to.deep.equal([]);
  });
});
