/**
 * The launcher's overlays and leak checks end to end (hpcc as the test user):
 * each overlay method forced with HPCC_OVERLAY makes a bind target the image
 * lacks, --writable-tmpfs with kernel overlayfs and fuse-overlayfs, the
 * fallback when the kernel really refuses overlayfs, and nothing left behind
 * (mounts, squashfuse or fuse-overlayfs processes, stage contents, temp dirs)
 * after 200 sequential launches, 16 concurrent ones and a SIGKILL of hpcc.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HPCC_BIN, IS_ROOT, removeTree, requireTools, runUnprivileged, testUserIds } from '../helpers/env.js';
import { exitOf, hpccAs, makeE2eImage, spawnUnprivileged, waitFor } from './launch-fixture.js';

describe('e2e: launcher overlays, and no leaks', function () {
  this.timeout(180_000);
  let tmp: string;
  let sif: string;
  let hostDir: string;
  const uid = () => testUserIds().uid;

  // Launches of this suite get a stage and a TMPDIR of their own ($XDG_RUNTIME_DIR/hpcc is the
  // first stage candidate), so the leak checks see only them even when other suites run beside.
  let rt: string;
  let xdg: string;
  let tmpdir: string;
  const ours = (env: Record<string, string> = {}): Record<string, string> => ({ XDG_RUNTIME_DIR: xdg, TMPDIR: tmpdir, ...env });
  const hpcc = (args: string[], opts: { env?: Record<string, string>; input?: string } = {}) => hpccAs(tmp, args, { ...opts, env: ours(opts.env) });
  const exec = (cmd: string, extra: string[] = [], env?: Record<string, string>) => hpcc(['exec', ...extra, sif, 'sh', '-c', cmd], env ? { env } : {});

  /** Everything a launch of this suite could leave behind: FUSE servers, mounts, stage contents, temp entries. */
  function leftovers(): string[] {
    const out: string[] = [];
    const pgrep = (pattern: string): string => spawnSync('pgrep', ['-a', '-u', String(uid()), '-f', pattern], { encoding: 'utf8' }).stdout.trim();
    const fuse = pgrep(`squashfuse.*${sif}`);
    if (fuse) out.push(`squashfuse: ${fuse}`);
    const ovl = pgrep(`fuse-overlayfs .*${xdg}/`);
    if (ovl) out.push(`fuse-overlayfs: ${ovl}`);
    for (const m of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (m.includes(sif) || m.includes(tmp) || m.includes(rt)) out.push(`mount: ${m}`);
    // the stage directory stays (fixed, reused), empty: the helper's tmpfs on it lived in its namespace
    for (const e of fs.readdirSync(xdg)) if (e !== 'hpcc') out.push(`runtime dir entry: ${e}`);
    if (fs.existsSync(path.join(xdg, 'hpcc')) && fs.readdirSync(path.join(xdg, 'hpcc')).length > 0) out.push(`stage contents: ${fs.readdirSync(path.join(xdg, 'hpcc')).join(' ')}`);
    // $TMPDIR holds at most the (empty) fallback stage directory hpcc-<uid>
    for (const e of fs.readdirSync(tmpdir)) {
      if (e !== `hpcc-${uid()}`) out.push(`temp entry: ${e}`);
      else if (fs.readdirSync(path.join(tmpdir, e)).length > 0) out.push(`temp entry contents: ${e}/${fs.readdirSync(path.join(tmpdir, e)).join(' ')}`);
    }
    return out;
  }

  /** Wait (up to 5 s) until nothing is left over; the last list otherwise. */
  async function settle(): Promise<string[]> {
    let left = leftovers();
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = leftovers();
    }
    return left;
  }

  before(function () {
    ({ tmp, sif, hostDir } = makeE2eImage(this, 'hpcc-e2e-overlay-'));
    // outside every default bind (/tmp, $HOME, the working directory), or the stage would not be picked
    rt = fs.mkdtempSync(path.join(IS_ROOT ? '/run' : os.tmpdir(), 'hpcc-e2e-rt-'));
    fs.chmodSync(rt, 0o755);
    xdg = path.join(rt, 'xdg');
    tmpdir = path.join(rt, 'tmpdir');
    for (const d of [xdg, tmpdir]) {
      fs.mkdirSync(d, { mode: 0o700 });
      if (IS_ROOT) execFileSync('chown', [`${uid()}:${testUserIds().gid}`, d]);
    }
  });
  after(() => {
    if (tmp) removeTree(tmp);
    if (rt) removeTree(rt);
  });

  it('launches of this suite use its own stage ($XDG_RUNTIME_DIR/hpcc) and fuse-overlayfs there', async () => {
    const plan = path.join(tmp, 'stage-check.plan');
    const r = hpcc(['exec', '--plan-out', plan, sif, 'true']);
    expect(r.status, r.stderr).to.equal(0);
    expect(fs.readFileSync(plan, 'latin1')).to.contain(`\n${xdg}/hpcc\n`);
    const child = spawnUnprivileged(['exec', '-B', `${hostDir}:/not/in/image`, sif, 'sh', '-c', 'echo ready; exec sleep 30'], tmp, ours({ HPCC_OVERLAY: 'fuse' }));
    const done = exitOf(child);
    await waitFor(child, 'ready');
    expect(leftovers().join('\n')).to.match(/^fuse-overlayfs: \d+ .*fuse-overlayfs -f -o lowerdir=/m).and.match(/^squashfuse: /m);
    child.kill('SIGTERM');
    expect((await done).code).to.equal(143);
    expect(await settle()).to.deep.equal([]);
  });

  it('16 concurrent launches all succeed and leave nothing behind', async () => {
    const runs = Array.from({ length: 16 }, (_, i) => exitOf(spawnUnprivileged(['exec', sif, 'sh', '-c', `echo run-${i}; exit ${i}`], tmp, ours())));
    const results = await Promise.all(runs);
    results.forEach((r, i) => {
      expect(r.out).to.equal(`run-${i}\n`);
      expect(r.code).to.equal(i);
    });
    expect(await settle()).to.deep.equal([]);
  });

  for (const overlay of ['', 'fuse']) it(`SIGKILL of hpcc mid-run ends the container: no payload, squashfuse${overlay ? ', fuse-overlayfs' : ''}, mount or temp dir left`, async function () {
    if (overlay) requireTools(this, 'fuse-overlayfs');
    const tag = `hpcc-sigkill-${process.pid}`;
    const extra = overlay ? ['-B', `${hostDir}:/not/in/image`] : [];
    const child = spawnUnprivileged(['exec', ...extra, sif, 'sh', '-c', `echo ready; exec sleep 1000 # ${tag}`], tmp, ours(overlay ? { HPCC_OVERLAY: overlay } : {}));
    const done = exitOf(child);
    await waitFor(child, 'ready');
    child.kill('SIGKILL');
    await done;
    let left = '';
    for (let i = 0; i < 50; i++) {
      left = spawnSync('pgrep', ['-u', String(uid()), '-f', `squashfuse.*${sif}|sleep 1000`], { encoding: 'utf8' }).stdout.trim();
      if (left === '') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(left, 'processes left').to.equal('');
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).to.not.contain(sif);
    expect(await settle()).to.deep.equal([]);
  });

  it('leaves no mounts, FUSE processes, stage contents or temp dirs after 200 sequential launches', async function () {
    this.timeout(400_000);
    // a bind to a path the image lacks: the overlay is made (and undone) on every launch
    const args = ['exec', '-B', `${hostDir}:/not/in/image`, sif, 'true'];
    for (let i = 0; i < 200; i++) {
      const r = hpcc(args, { env: { HPCC_OVERLAY: i % 2 === 0 ? 'kernel' : 'skeleton' } });
      expect(r.status, r.stderr).to.equal(0);
    }
    expect(await settle()).to.deep.equal([]);
  });

  for (const method of ['kernel', 'fuse', 'skeleton'] as const) {
    it(`HPCC_OVERLAY=${method}: a bind to a path the image lacks works, the image stays read-only`, async function () {
      if (method === 'fuse') requireTools(this, 'fuse-overlayfs');
        const r = exec('cat /does/not/exist/in/image/in.txt; touch /bin/new /x 2>&1 | grep -c Read-only', ['-B', `${hostDir}:/does/not/exist/in/image`], {
        HPCC_OVERLAY: method,
        HPCC_DEBUG: '1',
      });
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.equal('from the host\n2\n');
      expect(r.stderr).to.match(new RegExp(`^hpcc: op 0 overlay: ${method}$`, 'm'));
      expect(await settle()).to.deep.equal([]);
    });
  }

  it('overlay = skeleton in hpcc.conf; auto falls back to fuse-overlayfs when the kernel is taken to refuse (HPCC_NO_OVERLAY=1)', function () {
    requireTools(this, 'fuse-overlayfs');
    const conf = path.join(tmp, 'overlay.conf');
    fs.writeFileSync(conf, '[launch]\noverlay = skeleton\n', { mode: 0o644 });
    const bind = ['-B', `${hostDir}:/not/in/image`];
    let r = exec('cat /not/in/image/in.txt', bind, { HPCC_CONFIG: conf, HPCC_DEBUG: '1' });
    expect([r.status, r.stdout]).to.deep.equal([0, 'from the host\n']);
    expect(r.stderr).to.match(/^hpcc: op 0 overlay: skeleton$/m);
    r = exec('cat /not/in/image/in.txt', bind, { HPCC_NO_OVERLAY: '1', HPCC_DEBUG: '1' });
    expect([r.status, r.stdout]).to.deep.equal([0, 'from the host\n']);
    expect(r.stderr).to.match(/^hpcc: op 0 overlay: fuse$/m);
    fs.writeFileSync(conf, '[launch]\noverlay = zfs\n');
    r = exec('true', bind, { HPCC_CONFIG: conf });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.contain('unknown overlay mode "zfs"');
  });

  it('--writable-tmpfs with kernel and fuse-overlayfs; refused with a skeleton (exit 105)', function () {
    requireTools(this, 'fuse-overlayfs');
    for (const method of ['kernel', 'fuse']) {
      const r = exec('echo changed > /new.txt && cat /new.txt', ['--writable-tmpfs'], { HPCC_OVERLAY: method, HPCC_DEBUG: '1' });
      expect([r.status, r.stdout], r.stderr).to.deep.equal([0, 'changed\n']);
      expect(r.stderr).to.match(new RegExp(`^hpcc: op 0 overlay: ${method}$`, 'm'));
    }
    const r = exec('true', ['--writable-tmpfs'], { HPCC_OVERLAY: 'skeleton' });
    expect(r.status).to.equal(105);
    expect(r.stderr).to.contain('HPCC_E_LAUNCH_NO_OVERLAY').and.contain('Try this:');
  });

  it('kernel overlayfs refused for real (root on stacked overlays): exec falls back to fuse-overlayfs, doctor reports it', function () {
    requireTools(this, 'fuse-overlayfs');
    // In an enclosing user namespace, TMPDIR and the extraction cache sit on an overlay of an
    // overlay: a third overlay (the launcher's, or doctor's probe) exceeds the kernel's stacking
    // depth and is refused with EINVAL, like a kernel that forbids overlayfs in user namespaces.
    const d = path.join(tmp, 'stacked');
    for (const x of ['low', 'u1', 'w1', 'o1', 'u2', 'w2', 'o2']) fs.mkdirSync(path.join(d, x), { recursive: true });
    if (IS_ROOT) execFileSync('chown', ['-R', `${uid()}:${testUserIds().gid}`, d]);
    const script =
      'cd "$1" && mount -t overlay o1 -o lowerdir=low,upperdir=u1,workdir=w1,userxattr o1 && ' +
      'mount -t overlay o2 -o lowerdir=o1,upperdir=u2,workdir=w2,userxattr o2 && ' +
      'export TMPDIR="$1/o2" HPCC_CACHEDIR="$1/o2/cache" && shift && exec "$@"';
    const inner = (args: string[]) =>
      runUnprivileged('unshare', ['-rm', 'sh', '-c', script, 'sh', d, process.execPath, HPCC_BIN, ...args], {
        cwd: tmp,
        env: { HOME: IS_ROOT ? '/home/hpcctest' : process.env.HOME!, HPCC_DEBUG: '1' },
        timeout: 120_000,
      });
    const r = inner(['exec', '--unsquash', '-B', `${hostDir}:/not/in/image`, sif, 'cat', '/not/in/image/in.txt']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('from the host\n');
    expect(r.stderr).to.match(/^hpcc: op 1 overlay: fuse tried: kernel\(Invalid argument\)$/m);
    const doc = inner(['doctor']);
    expect(doc.stdout).to.match(/^\[WARN\] kernel overlayfs in a user namespace: refused: .*use fuse-overlayfs instead$/m);
    expect(doc.stdout).to.match(/^\[ok {2}\] fuse-overlayfs: \/\S+ \(used when the kernel refuses overlayfs\)$/m);
  });

});
