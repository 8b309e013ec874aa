/**
 * Warm mounts end to end (native/launch/warm.c, docs/launcher.md "Warm
 * mounts"), as the unprivileged test user with the real kernel, squashfuse
 * and hpcc-launch: one keeper and one FUSE server per image, user, id
 * mapping and cgroup; launches join it and keep their binds private; it ends
 * when idle, when the image changes, when stopped, and leaves nothing
 * behind, also after SIGKILL; only its user can join.
 * Each test has its own HPCC_TMPDIR, so its keepers are found by the
 * rendezvous directory's metadata files, not mixed with other suites'.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, REPO_ROOT, removeTree, runUnprivileged, testUserIds } from '../helpers/env.js';
import { exitOf, hpccAs, makeE2eImage, spawnUnprivileged, type E2eImage } from './launch-fixture.js';
import { alive, fuseHolders, fuseServers, keepersIn, sleep, until, type Keeper } from './warm-fixture.js';

const OTHER = process.env.HPCC_TEST_USER2 ?? 'hpcctest2';
const HELPER = path.join(REPO_ROOT, 'dist/native/hpcc-launch');

describe('e2e: warm mounts (a keeper per image; launches join it)', function () {
  this.timeout(240_000);
  let img: E2eImage;
  let tdir: string;
  let n = 0;
  const { uid, gid } = testUserIds();

  before(function () {
    img = makeE2eImage(this, 'hpcc-e2e-warm-');
    fs.writeFileSync(path.join(img.hostDir, 'b.txt'), 'bee\n');
    const other = path.join(img.tmp, 'hostdir2');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'in.txt'), 'from the other host dir\n');
    if (IS_ROOT) execFileSync('chown', ['-R', `${uid}:${gid}`, other]);
  });
  beforeEach(() => {
    tdir = path.join(img.tmp, `t${n++}`);
    fs.mkdirSync(tdir, { mode: 0o755 });
    if (IS_ROOT) fs.chownSync(tdir, uid, gid);
  });
  afterEach(async () => {
    for (const k of keepers()) if (alive(k.pid)) process.kill(k.pid, 'SIGTERM');
    await until('the keepers have ended', () => fuseHolders(img.sif).length === 0).catch(() => undefined);
  });
  after(() => {
    if (img?.tmp) removeTree(img.tmp);
  });

  const warmDir = (): string => path.join(tdir, `hpcc-${uid}`, 'warm');
  const keepers = (): Keeper[] => keepersIn(warmDir());
  const env = (idle = '30', extra: Record<string, string> = {}) => ({ HPCC_TMPDIR: tdir, HPCC_WARM_IDLE: idle, HPCC_DEBUG: '1', ...extra });
  const hpcc = (args: string[], idle = '30', extra: Record<string, string> = {}) => hpccAs(img.tmp, args, { env: env(idle, extra) });

  it('the first launch starts a keeper, the next join it: one FUSE server, the data, no mount of its own', async () => {
    let r = hpcc(['exec', img.sif, 'cat', '/bin/../etc/passwd']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).not.to.match(/no warm mount/);
    const ks = keepers();
    expect(ks).to.have.length(1);
    expect(ks[0]!.image).to.equal(img.sif);
    expect(alive(ks[0]!.pid)).to.equal(true);
    for (let i = 0; i < 3; i++) {
      r = hpcc(['exec', '-B', `${img.hostDir}:/opt`, img.sif, 'sh', '-c', 'cat /opt/in.txt; grep -c squashfuse /proc/self/mountinfo']);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.equal('from the host\n1\n');
    }
    expect(keepers().map((k) => k.pid)).to.deep.equal([ks[0]!.pid]);
    expect(fuseServers(img.sif)).to.have.length(1);
    const st = fs.statSync(warmDir());
    expect(st.uid).to.equal(uid);
    expect(st.mode & 0o777).to.equal(0o700);
  });

  it('binds stay private to each launch: two at once with different -B, and none in the keeper', async () => {
    const other = path.join(img.tmp, 'hostdir2');
    const a = spawnUnprivileged(['exec', '-B', `${img.hostDir}:/opt`, img.sif, 'sh', '-c', 'sleep 2; cat /opt/in.txt'], img.tmp, env());
    await sleep(300);
    const b = spawnUnprivileged(['exec', '-B', `${other}:/opt`, img.sif, 'sh', '-c', 'sleep 1; cat /opt/in.txt'], img.tmp, env());
    const [ra, rb] = await Promise.all([exitOf(a), exitOf(b)]);
    expect(ra.out).to.contain('from the host\n');
    expect(rb.out).to.contain('from the other host dir\n');
    expect(ra.code).to.equal(0);
    expect(rb.code).to.equal(0);
    const ks = keepers();
    expect(ks).to.have.length(1);
    const mi = fs.readFileSync(`/proc/${ks[0]!.pid}/mountinfo`, 'utf8');
    expect(mi).not.to.contain(img.hostDir);
    expect(mi).not.to.contain('hostdir2');
  });

  it('ends after the idle time: no keeper, FUSE server, mount or file left', async () => {
    const r = hpcc(['exec', img.sif, 'true'], '2');
    expect(r.status, r.stderr).to.equal(0);
    const [k] = keepers();
    expect(k && alive(k.pid)).to.equal(true);
    await until('the keeper ended', () => !alive(k!.pid), 10_000);
    await until('no FUSE mount of the image', () => fuseHolders(img.sif).length === 0);
    await until('the rendezvous directory is empty', () => fs.readdirSync(warmDir()).length === 0);
  });

  it('a changed image gets a new keeper; the old one is never joined and ends once unused', async () => {
    let r = hpcc(['exec', img.sif, 'true'], '60');
    const [old] = keepers();
    expect(old).to.not.equal(undefined);
    const t = new Date(Date.now() + 5000);
    fs.utimesSync(img.sif, t, t); // same bytes, new mtime: another identity
    r = hpcc(['exec', img.sif, 'cat', '/etc/group'], '60');
    expect(r.status, r.stderr).to.equal(0);
    await until('the old keeper ended', () => !alive(old!.pid), 10_000);
    const now = keepers();
    expect(now).to.have.length(1);
    expect(now[0]!.pid).to.not.equal(old!.pid);
    expect(fuseServers(img.sif)).to.have.length(1);
  });

  it('SIGKILL of the keeper: the next launch works and starts a new one; nothing of the old is left', async () => {
    let r = hpcc(['exec', img.sif, 'true']);
    const [k] = keepers();
    process.kill(k!.pid, 'SIGKILL');
    await until('the old keeper and its server are gone', () => fuseHolders(img.sif).length === 0);
    r = hpcc(['exec', img.sif, 'cat', '/etc/group']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('root:x:0:');
    const ks = keepers();
    expect(ks).to.have.length(1);
    expect(ks[0]!.pid).to.not.equal(k!.pid);
    expect(fs.readdirSync(warmDir()).sort()).to.deep.equal([ks[0]!.file, ks[0]!.file.replace(/\.json$/, '.sock')].sort());
  });

  it('SIGKILL of a joined launch: the keeper still ends when idle', async () => {
    hpcc(['exec', img.sif, 'true'], '2');
    const [k] = keepers();
    const c = spawnUnprivileged(['exec', img.sif, 'sleep', '30'], img.tmp, env('2'));
    await sleep(1500);
    // the helper (hpcc-launch) of that launch, by its parent Node process
    const helper = spawnSync('pgrep', ['-P', String(c.pid), '-x', 'hpcc-launch'], { encoding: 'utf8' }).stdout.trim();
    expect(helper, 'the launch helper').to.match(/^\d+$/);
    process.kill(Number(helper), 'SIGKILL');
    await exitOf(c);
    await until('the keeper ended', () => !alive(k!.pid), 15_000);
    await until('no FUSE mount of the image', () => fuseHolders(img.sif).length === 0);
  });

  it('32 simultaneous first launches: exactly one keeper and one FUSE server', async () => {
    const kids = Array.from({ length: 32 }, () => spawnUnprivileged(['exec', img.sif, 'cat', '/etc/group'], img.tmp, env()));
    const rs = await Promise.all(kids.map((k) => exitOf(k)));
    for (const r of rs) {
      expect(r.code, r.out).to.equal(0);
      expect(r.out).to.contain('root:x:0:');
    }
    expect(keepers()).to.have.length(1);
    expect(fuseServers(img.sif)).to.have.length(1);
  });

  it('--fakeroot gets a keeper of its own; HPCC_WARM_IDLE=0 and --unsquash start none', async () => {
    let r = hpcc(['exec', img.sif, 'id', '-u']);
    expect(r.stdout).to.equal(`${uid}\n`);
    r = hpcc(['exec', '--fakeroot', img.sif, 'id', '-u']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('0\n');
    expect(keepers().map((k) => k.uid).sort()).to.deep.equal([0, uid].sort());
    expect(fuseServers(img.sif)).to.have.length(2);
    for (const k of keepers()) process.kill(k.pid, 'SIGTERM');
    await until('the keepers ended', () => fuseHolders(img.sif).length === 0);
    r = hpcc(['exec', img.sif, 'cat', '/etc/group'], '0');
    expect(r.status, r.stderr).to.equal(0);
    expect(keepers()).to.have.length(0);
    expect(fuseHolders(img.sif)).to.have.length(0);
    r = hpcc(['exec', '--unsquash', img.sif, 'cat', '/etc/group'], '30', { HPCC_CACHEDIR: path.join(tdir, 'cache') });
    expect(r.status, r.stderr).to.equal(0);
    expect(keepers()).to.have.length(0);
  });

  it('a saved plan run by hpcc-launch joins the keeper too', () => {
    const plan = path.join(tdir, 'p.plan');
    let r = hpcc(['exec', '--plan-out', plan, img.sif, 'true']);
    expect(r.status, r.stderr).to.equal(0);
    r = runUnprivileged(HELPER, ['--plan', plan, 'cat', '/etc/group'], { cwd: img.tmp, env: { HPCC_WARM_IDLE: '30' } });
    expect(r.status, r.stderr).to.equal(0);
    const [k] = keepers();
    expect(k).to.not.equal(undefined);
    r = runUnprivileged(HELPER, ['--plan', plan, 'sh', '-c', 'grep -c squashfuse /proc/self/mountinfo'], { cwd: img.tmp });
    expect(r.stdout).to.equal('1\n');
    expect(keepers().map((x) => x.pid)).to.deep.equal([k!.pid]);
    expect(fuseServers(img.sif)).to.have.length(1);
  });

  it('launch memos (the native front, no Node) join the keeper the first launch started', async () => {
    const front = path.join(REPO_ROOT, 'dist/native/hpcc');
    const fenv = { ...env('30'), HPCC_CACHEDIR: path.join(tdir, 'cache') };
    const used = (r: { stderr: string }) => /hpcc: launch memo \S+: used/.test(r.stderr);
    let r = runUnprivileged(front, ['exec', img.sif, 'cat', '/etc/group'], { cwd: img.tmp, env: fenv, timeout: 60_000 });
    expect([r.status, used(r)], r.stderr).to.deep.equal([0, false]);
    const [k] = keepers();
    expect(k, 'the first launch started a keeper').to.not.equal(undefined);
    for (let i = 0; i < 3; i++) {
      r = runUnprivileged(front, ['exec', img.sif, 'sh', '-c', 'grep -c squashfuse /proc/self/mountinfo'], { cwd: img.tmp, env: fenv, timeout: 60_000 });
      expect([r.status, used(r), r.stdout], r.stderr).to.deep.equal([0, true, '1\n']);
      expect(r.stderr).not.to.match(/no warm mount/);
    }
    // the memo launch runs in the keeper's user namespace
    r = runUnprivileged(front, ['exec', img.sif, 'readlink', '/proc/self/ns/user'], { cwd: img.tmp, env: fenv, timeout: 60_000 });
    expect([r.status, used(r)], r.stderr).to.deep.equal([0, true]);
    expect(r.stdout.trim()).to.equal(fs.readlinkSync(`/proc/${k!.pid}/ns/user`));
    expect(keepers().map((x) => x.pid)).to.deep.equal([k!.pid]);
    expect(fuseServers(img.sif)).to.have.length(1);
  });

  it('security: a rendezvous directory others may use is refused (no keeper); another user gets nothing from the socket', async function () {
    if (!IS_ROOT) this.skip();
    // 1. the directory's mode: the helper refuses it and mounts the image itself
    fs.mkdirSync(path.join(tdir, `hpcc-${uid}`), { mode: 0o700 });
    fs.mkdirSync(warmDir(), { mode: 0o700 });
    execFileSync('chown', ['-R', `${uid}:${gid}`, path.join(tdir, `hpcc-${uid}`)]);
    fs.chmodSync(warmDir(), 0o777);
    let r = hpcc(['exec', img.sif, 'true']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/no warm mount: .*only its owner may use/);
    expect(keepers()).to.have.length(0);
    expect(fuseHolders(img.sif)).to.have.length(0);
    // 2. SO_PEERCRED: with every file mode opened up, another user connects and asks to join
    fs.chmodSync(warmDir(), 0o700);
    r = hpcc(['exec', img.sif, 'true']);
    const [k] = keepers();
    expect(k).to.not.equal(undefined);
    const sock = path.join(warmDir(), k!.file.replace(/\.json$/, '.sock'));
    fs.chmodSync(path.join(tdir, `hpcc-${uid}`), 0o711);
    fs.chmodSync(warmDir(), 0o711);
    fs.chmodSync(sock, 0o777);
    const js = `const c=require('net').connect(${JSON.stringify(sock)});let d='';c.on('connect',()=>c.write('J'));c.on('data',(b)=>{d+=b;c.destroy();});c.on('close',()=>{process.stdout.write('got['+d+']');});c.on('error',(e)=>process.stdout.write('error '+e.code));`;
    const o = spawnSync('runuser', ['-u', OTHER, '--', process.execPath, '-e', js], { encoding: 'utf8', timeout: 20_000 });
    // refused at once (the keeper may close before the request is written: EPIPE/ECONNRESET)
    expect(o.stdout, o.stderr).to.match(/^(error E[A-Z]+)?got\[\]$/);
    // the test user itself gets the answer (so the check above is not vacuous)
    const mine = runUnprivileged(process.execPath, ['-e', js], {});
    expect(mine.stdout).to.match(/^got\[warm\/1 ok /);
  });
});
