/**
 * The unprivileged build container (src/build/userns.ts) in both id-map
 * modes, run as unprivileged users through test/helpers/build-session-driver:
 * - subids (hpcctest, which has /etc/subuid and /etc/subgid ranges): a
 *   minbase bookworm tree from the host's mirror (bootstrapDebian), then a
 *   %post with useradd -m, chown 123:456, mkfifo and apt-get install; the
 *   SIF packed inside the namespace keeps every owner;
 * - single (hpcctest3, no ranges; setup-host.sh): the same %post gets apt's
 *   sandbox workaround, owners collapse to 0 and the warning names them;
 * - a failing script returns its status and tail; close() and SIGTERM leave
 *   no tree behind, subordinate-id owned files included; an image whose /etc
 *   is a symlink out of the tree is refused before anything is written there.
 */
import { expect } from 'chai';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IN_CI, REPO_ROOT, TEST_USER, makeTempDir, removeTree, requireRoot, requireTools } from '../helpers/env.js';
import type { DriverJob, DriverResult } from '../helpers/build-session-driver.js';

const DRIVER = path.join(REPO_ROOT, 'dist', 'test', 'helpers', 'build-session-driver.js');
const SINGLE_USER = process.env.HPCC_TEST_USER3 ?? 'hpcctest3';

function userArgs(user: string): { argv: string[]; env: NodeJS.ProcessEnv } {
  const uid = execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim();
  const gid = execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim();
  return {
    argv: ['setpriv', '--reuid', uid, '--regid', gid, '--init-groups', '--'],
    env: { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: `/home/${user}`, USER: user, LOGNAME: user },
  };
}

function drive(user: string, job: DriverJob): DriverResult {
  const u = userArgs(user);
  const r = spawnSync(u.argv[0]!, [...u.argv.slice(1), process.execPath, DRIVER, JSON.stringify(job)], { env: u.env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  expect(line, `driver: status ${r.status}\n${r.stderr.slice(-3000)}`).to.be.a('string');
  return JSON.parse(line!.slice(7)) as DriverResult;
}

/** path (without the squashfs-root prefix) -> [type char, "uid/gid"] from unsquashfs -lln at the SIF's partition. */
function sifOwners(sif: string): Map<string, [string, string]> {
  const data = fs.readFileSync(sif);
  const off = data.indexOf(Buffer.from('hsqs'), 32176);
  const out = execFileSync('unsquashfs', ['-lln', '-o', String(off), sif], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const m = new Map<string, [string, string]>();
  for (const l of out.split('\n')) {
    const f = /^(\S)\S+\s+(\d+\/\d+)\s+.*?squashfs-root(\/\S*)?(?: -> .*)?$/.exec(l);
    if (f) m.set(f[3] ?? '/', [f[1]!, f[2]!]);
  }
  return m;
}

function requireUser(ctx: Mocha.Context, user: string): void {
  if (spawnSync('id', ['-u', user]).status === 0) return;
  if (IN_CI) throw new Error(`test user ${user} missing (scripts/setup-host.sh creates it)`);
  ctx.skip();
}

const POST = [
  'useradd -m bar',
  'mkdir /x',
  'chown 123:456 /x || echo "hpcc-test: chown refused"',
  'mkfifo /x/p',
  'if [ -e /etc/apt/apt.conf.d/00hpcc-unprivileged-sandbox ]; then echo "hpcc-test: apt sandbox workaround present"; cat /etc/apt/apt.conf.d/00hpcc-unprivileged-sandbox; fi',
  'apt-get update -q >/dev/null',
  'apt-get install -y -q --no-install-recommends hello >/dev/null',
  'hello',
].join('\n') + '\n';

describe('e2e: unprivileged build container (subids and single-id modes)', function () {
  this.timeout(1_200_000);
  let tmp: string;
  let baseTar: string;

  before(function () {
    requireRoot(this); // CI is root; the sessions run as the unprivileged users
    requireUser(this, TEST_USER);
    requireTools(this, 'unshare', 'newuidmap', 'newgidmap', 'mmdebstrap', 'unsquashfs', 'busybox', 'setpriv');
    if (!fs.existsSync(DRIVER)) throw new Error(`${DRIVER} missing: npm run build`);
    tmp = makeTempDir('hpcc-userns-');
    fs.chmodSync(tmp, 0o777); // both test users write their outputs here
    baseTar = path.join(tmp, 'base.tar');
  });

  after(() => {
    if (tmp) removeTree(tmp);
  });

  it('debootstrap: mmdebstrap makes a minbase bookworm tree from the host mirror with Debian owners (subids)', function () {
    const work = path.join(tmp, 'w-deb');
    const r = drive(TEST_USER, { workDir: work, base: 'bootstrap', makeTar: baseTar, ls: ['var/lib/apt/lists/partial', 'etc/shadow', 'etc/debian_version'] });
    expect(r.mode).to.equal('subids');
    expect(r.ls, 'owners as seen inside the namespace').to.match(/^drwx------\s+\d+\s+42\s+0\s.*lists\/partial$/m);
    expect(r.ls).to.match(/^-rw-r-----\s+\d+\s+0\s+42\s.*etc\/shadow$/m);
    expect(r.existsAfterClose).to.equal(false);
    const list = execFileSync('tar', ['-tvf', baseTar, '--numeric-owner'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(list).to.match(/ 42\/0 .*\.\/var\/lib\/apt\/lists\/partial\/$/m);
    expect(list).to.match(/ \.\/usr\/bin\/apt-get$/m);
  });

  it('subids: %post keeps every owner (useradd -m, chown 123:456, _apt) and the packed SIF has them', function () {
    if (!fs.existsSync(baseTar)) this.skip();
    const sif = path.join(tmp, 'subids.sif');
    const r = drive(TEST_USER, { workDir: path.join(tmp, 'w-sub'), base: { tar: baseTar, sameOwner: true }, post: POST, pack: sif });
    expect(r.post!.status, r.post!.tail).to.equal(0);
    expect(r.post!.tail).to.include('Hello, world!');
    expect(r.post!.tail).not.to.include('hpcc-test: chown refused');
    expect(r.post!.tail).not.to.include('apt sandbox workaround present');
    expect(r.warnings).to.deep.equal([]);
    expect(r.pack!.status, r.pack!.tail).to.equal(0);
    const own = sifOwners(sif);
    expect(own.get('/x')).to.deep.equal(['d', '123/456']);
    expect(own.get('/x/p')).to.deep.equal(['p', '0/0']);
    expect(own.get('/home/bar')).to.deep.equal(['d', '1000/1000']);
    expect(own.get('/var/lib/apt/lists/partial')?.[1]).to.equal('42/0');
    expect(own.get('/etc/shadow')?.[1]).to.equal('0/42');
    expect(own.has('/etc/apt/apt.conf.d/00hpcc-unprivileged-sandbox')).to.equal(false);
    expect([...own.keys()].some((p) => p.startsWith('/.hpcc-build-script'))).to.equal(false);
    expect(fs.statSync(sif).uid, 'the SIF is the caller\'s on the host').to.equal(Number(execFileSync('id', ['-u', TEST_USER], { encoding: 'utf8' })));
    expect(r.existsAfterClose, 'close() removes subid-owned trees').to.equal(false);
  });

  it('single id: apt works through the sandbox workaround, owners collapse to 0 and the warning names them', function () {
    requireUser(this, SINGLE_USER);
    if (!fs.existsSync(baseTar)) this.skip();
    const sif = path.join(tmp, 'single.sif');
    const r = drive(SINGLE_USER, { workDir: path.join(tmp, 'w-single'), base: { tar: baseTar, sameOwner: false }, post: POST, pack: sif });
    expect(r.mode).to.equal('single');
    expect(r.reason).to.match(/no \/etc\/subuid (or \/etc\/subgid )?entry for hpcctest3/);
    expect(r.post!.status, r.post!.tail).to.equal(0);
    expect(r.post!.tail).to.include('hpcc-test: apt sandbox workaround present');
    expect(r.post!.tail).to.include('APT::Sandbox::User "root";');
    expect(r.post!.tail).to.include('hpcc-test: chown refused');
    expect(r.post!.tail).to.include('Hello, world!');
    expect(r.warnings).to.have.length(1);
    const w = r.warnings[0]!;
    expect(w).to.include('single-id build');
    expect(w).to.include('/home/bar of bar (uid 1000)');
    expect(w).to.include('Invalid argument');
    expect(w).to.include('/var/lib/apt/lists/partial (_apt:root on Debian)');
    expect(w).to.include('apt ran as root instead of its sandbox user _apt');
    expect(r.pack!.status, r.pack!.tail).to.equal(0);
    const own = sifOwners(sif);
    expect(own.get('/x')).to.deep.equal(['d', '0/0']);
    expect(own.get('/home/bar')?.[1]).to.equal('0/0');
    expect(own.get('/var/lib/apt/lists/partial')?.[1]).to.equal('0/0');
    expect(own.has('/etc/apt/apt.conf.d/00hpcc-unprivileged-sandbox'), 'the workaround is removed after the step').to.equal(false);
    expect(r.existsAfterClose).to.equal(false);
  });

  for (const [user, mode] of [[TEST_USER, 'subids'], [SINGLE_USER, 'single']] as const) {
    it(`${mode}: a failing script returns its status and the tail of its output`, function () {
      requireUser(this, user);
      const r = drive(user, { workDir: path.join(tmp, `w-fail-${mode}`), base: 'busybox', post: 'echo before-the-failure\nsh -c "exit 7"\necho never-reached\n' });
      expect(r.mode).to.equal(mode);
      expect(r.post!.status).to.equal(7);
      expect(r.post!.tail).to.include('before-the-failure');
      expect(r.post!.tail).to.include('+ sh -c');
      expect(r.post!.tail).not.to.include('never-reached');
      expect(r.existsAfterClose).to.equal(false);
    });
  }

  it('refuses an image whose /etc is a symlink out of the tree, writing nothing there', function () {
    const outside = path.join(tmp, 'outside');
    fs.mkdirSync(outside);
    fs.chmodSync(outside, 0o777);
    const r = drive(TEST_USER, { workDir: path.join(tmp, 'w-etc'), base: 'busybox', etcSymlink: outside, post: 'echo ran\n' });
    expect(r.post!.status).to.equal(125);
    expect(r.post!.tail).to.include("the image's /etc is not a directory");
    expect(r.post!.tail).not.to.include('ran');
    expect(fs.readdirSync(outside)).to.deep.equal([]);
  });

  it('binds resolv.conf over a symlinked one and puts the symlink back', function () {
    const work = path.join(tmp, 'w-resolv');
    const r = drive(TEST_USER, {
      workDir: work,
      base: 'busybox',
      resolvSymlink: '/outside/of/the/image',
      post: 'cat /etc/resolv.conf >/dev/null && echo resolv-readable\nreadlink /etc/resolv.conf || echo not-a-link\n',
      ls: ['etc/resolv.conf'],
    });
    expect(r.post!.status, r.post!.tail).to.equal(0);
    expect(r.post!.tail).to.include('resolv-readable');
    expect(r.post!.tail).to.include('not-a-link');
    expect(r.ls).to.match(/^l.* -> \/outside\/of\/the\/image$/m);
  });

  it('SIGKILL of hpcc during a step still ends every process of the step', async function () {
    const work = path.join(tmp, 'w-kill');
    const u = userArgs(TEST_USER);
    const job: DriverJob = { workDir: work, base: 'busybox', post: 'touch /started\nsleep 300\n' };
    const child = spawn(u.argv[0]!, [...u.argv.slice(1), process.execPath, DRIVER, JSON.stringify(job)], { env: u.env, stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const started = path.join(work, 'rootfs', 'started');
    const t0 = Date.now();
    while (!fs.existsSync(started)) {
      if (Date.now() - t0 > 120_000) throw new Error('the step never started');
      await new Promise((r) => setTimeout(r, 200));
    }
    child.kill('SIGKILL');
    await exited;
    let left = '';
    for (let i = 0; i < 50; i++) {
      left = spawnSync('pgrep', ['-f', work], { encoding: 'utf8' }).stdout.trim();
      if (left === '') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const pid of left.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL'); // this test's own leftovers, by pid
      } catch {
        /* gone */
      }
    }
    expect(left, 'processes of the killed build').to.equal('');
  });

  it('SIGTERM during a step closes the session: no temporary tree and no process is left', async function () {
    const work = path.join(tmp, 'w-term');
    const u = userArgs(TEST_USER);
    const post = 'mkdir /o\nchown 123:456 /o\ntouch /o/f\nchown 5:5 /o/f\nchmod 700 /o\ntouch /started\nsleep 300\n';
    const job: DriverJob = { workDir: work, base: 'busybox', post, hold: true };
    const child = spawn(u.argv[0]!, [...u.argv.slice(1), process.execPath, DRIVER, JSON.stringify(job)], { env: u.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const started = path.join(work, 'rootfs', 'started');
    const t0 = Date.now();
    while (!fs.existsSync(started)) {
      if (Date.now() - t0 > 120_000) throw new Error(`the step never started: ${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(fs.lstatSync(path.join(work, 'rootfs', 'o')).uid, 'a subid-owned directory exists').to.be.greaterThan(65535);
    child.kill('SIGTERM'); // setpriv execs node: this is the driver's own process
    const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('still running 60 s after SIGTERM'), 60_000).unref());
    const code = await Promise.race([exited, timeout]);
    if (code !== 143) {
      // this test's own leftovers (their arguments name its unique directory), killed by pid
      for (const pid of spawnSync('pgrep', ['-f', work], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      expect.fail(`the driver ended with ${code}: ${stderr}`);
    }
    expect(fs.existsSync(work), 'the work tree is gone').to.equal(false);
    const ps = spawnSync('pgrep', ['-f', work], { encoding: 'utf8' });
    expect(ps.stdout.trim(), 'no process of the session is left').to.equal('');
  });
});
