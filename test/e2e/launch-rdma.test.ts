/**
 * RDMA binds (src/runtime/builder/rdma.ts) on a substitute RDMA host: root
 * makes /dev/infiniband, /etc/rdma, /etc/libibverbs.d and
 * /sys/class/infiniband at their real paths in a private mount namespace
 * (test/helpers/rdma-substitute.sh), and the unprivileged test user launches
 * there with the native front, as on a node with InfiniBand. Checked inside
 * the container: the devices (also in --contain's minimal /dev), the host's
 * configuration, the sysfs class read-only; --no-rdma and [mount] rdma = no
 * turn it off; hpcc doctor lists them; a launch memo made on this host
 * without RDMA is not used when RDMA appears (and the other way round).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, REPO_ROOT, removeTree, requireRoot, requireTestUser, requireTools, testUserIds } from '../helpers/env.js';
import { makeE2eImage, type E2eImage } from './launch-fixture.js';

const FRONT = path.join(REPO_ROOT, 'dist/native/hpcc');
const SUBSTITUTE = path.join(REPO_ROOT, 'test/helpers/rdma-substitute.sh');

/** Prints key=value lines about what the container sees. */
const PROBE = [
  'w() { if [ ! -d "$1" ]; then echo absent; elif touch "$1/.probe" 2>/dev/null; then echo writable; else echo read-only; fi; }',
  'echo "dev=$(ls /dev/infiniband 2>/dev/null | tr "\\n" " ")"',
  'echo "chr=$(test -c /dev/infiniband/uverbs0 && echo yes || echo no)"',
  'echo "rdma=$(cat /etc/rdma/rdma.conf 2>/dev/null)"',
  'echo "verbs=$(ls /etc/libibverbs.d 2>/dev/null | grep hpcc-test)"',
  'echo "sys=$(cat /sys/class/infiniband/mlx5_test/node_type 2>/dev/null)"',
  'echo "syswrite=$(w /sys/class/infiniband)"',
  'echo "etcwrite=$(w /etc/rdma)"',
].join('; ');

const parse = (out: string) => Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]));

const WITH_RDMA = { dev: 'rdma_cm umad0 uverbs0', chr: 'yes', rdma: '# hpcc test', verbs: 'hpcc-test.driver', sys: '1: CA', syswrite: 'read-only', etcwrite: 'read-only' };

describe('e2e: RDMA devices and configuration in the container (a substitute RDMA host)', function () {
  this.timeout(120_000);
  let img: E2eImage;
  let cache: string;

  before(function () {
    requireRoot(this);
    requireTestUser(this);
    requireTools(this, 'unshare', 'setpriv', 'mknod', 'mountpoint');
    img = makeE2eImage(this, 'hpcc-e2e-rdma-');
    cache = path.join(img.tmp, 'cache');
    fs.mkdirSync(cache);
    if (IS_ROOT) fs.chownSync(cache, testUserIds().uid, testUserIds().gid);
  });
  after(() => {
    if (img?.tmp) removeTree(img.tmp);
  });

  const userEnv = (extra: Record<string, string>) => ({
    PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
    HOME: '/home/hpcctest',
    USER: 'hpcctest',
    LOGNAME: 'hpcctest',
    HPCC_CACHEDIR: cache,
    HPCC_DEBUG: '1',
    // No warm mounts: the substitute host is a mount namespace of its own, and a launch there
    // would join a keeper another test's launch started in the host's namespace, whose view
    // of /dev, /etc and /sys (no RDMA) its binds would then see.
    HPCC_WARM_IDLE: '0',
    ...extra,
  });

  /** The command line that runs hpcc ARGS as the test user with exactly userEnv(extra). */
  function asUser(args: string[], extra: Record<string, string> = {}): string[] {
    const { uid, gid } = testUserIds();
    const env = Object.entries(userEnv(extra)).map(([k, v]) => `${k}=${v}`);
    return ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', 'env', '-i', ...env, FRONT, ...args];
  }
  /** On the substitute RDMA host (a fresh namespace each time). */
  function onRdmaHost(args: string[], extra: Record<string, string> = {}) {
    const layers = fs.mkdtempSync(path.join(img.tmp, 'ns-'));
    const argv = ['--mount', '--propagation', 'private', '--', 'sh', SUBSTITUTE, layers, ...asUser(args, extra)];
    return spawnSync('unshare', argv, { cwd: img.tmp, encoding: 'utf8', timeout: 60_000 });
  }
  /** On this (real) host: no /dev/infiniband here. */
  function onThisHost(args: string[], extra: Record<string, string> = {}) {
    const [cmd, ...rest] = asUser(args, extra);
    return spawnSync(cmd!, rest, { cwd: img.tmp, encoding: 'utf8', timeout: 60_000 });
  }

  it('the real /dev here has no /dev/infiniband: a launch binds nothing of RDMA', function () {
    if (fs.existsSync('/dev/infiniband')) this.skip();
    const r = onThisHost(['exec', '-c', img.sif, 'sh', '-c', PROBE]);
    expect(r.status, r.stderr).to.equal(0);
    expect(parse(r.stdout)).to.include({ dev: '', rdma: '', sys: '', syswrite: 'absent', etcwrite: 'absent' });
  });

  it('with the host /dev: its configuration read-only, /sys/class/infiniband read-only', () => {
    const r = onRdmaHost(['exec', img.sif, 'sh', '-c', PROBE]);
    expect(r.status, r.stderr).to.equal(0);
    expect(parse(r.stdout)).to.deep.equal(WITH_RDMA);
  });

  it('--contain and --containall: the devices in the minimal /dev, and the rest', () => {
    for (const flag of ['-c', '-C']) {
      const r = onRdmaHost(['exec', flag, img.sif, 'sh', '-c', PROBE]);
      expect(r.status, `${flag}: ${r.stderr}`).to.equal(0);
      expect(parse(r.stdout), flag).to.deep.equal(WITH_RDMA);
    }
  });

  it('--no-rdma and [mount] rdma = no: nothing bound (the class is only the writable one under /sys)', () => {
    const conf = path.join(img.tmp, 'no-rdma.conf');
    fs.writeFileSync(conf, '[mount]\nrdma = no\n', { mode: 0o644 });
    const off = { dev: '', chr: 'no', rdma: '', verbs: '', sys: '1: CA', syswrite: 'writable', etcwrite: 'absent' };
    const a = onRdmaHost(['exec', '-c', '--no-rdma', img.sif, 'sh', '-c', PROBE]);
    expect(a.status, a.stderr).to.equal(0);
    expect(parse(a.stdout)).to.deep.equal(off);
    const b = onRdmaHost(['exec', '-c', img.sif, 'sh', '-c', PROBE], { HPCC_CONFIG: conf });
    expect(b.status, b.stderr).to.equal(0);
    expect(parse(b.stdout)).to.deep.equal(off);
  });

  it('hpcc doctor lists the devices, the configuration and the sysfs class', () => {
    const r = onRdmaHost(['doctor']);
    const line = r.stdout.split('\n').find((l) => l.includes('RDMA')) ?? '';
    expect(line, r.stdout + r.stderr).to.contain('/dev/infiniband (rdma_cm umad0 uverbs0)');
    expect(line).to.contain('/etc/rdma (rdma.conf)').and.contain('hpcc-test.driver').and.contain('/sys/class/infiniband (mlx5_test)');
  });

  it('launch memos: /dev/infiniband is a fact; a memo made without it is not used once it appears, nor the other way round', () => {
    // in one namespace (its overlays' files keep their identity): launch, add the devices,
    // launch twice, remove them, launch; each launch's output and debug lines end with "=== step"
    const layers = fs.mkdtempSync(path.join(img.tmp, 'ns-'));
    const steps = 'S=$1; shift; step() { "$@"; echo "=== step"; echo "=== step" >&2; }; ' +
      'step "$@"; sh "$S" --add-devices; step "$@"; step "$@"; rm -r /dev/infiniband; step "$@"';
    const argv = ['--mount', '--propagation', 'private', '--', 'sh', SUBSTITUTE, '--no-devices', layers, 'sh', '-c', steps, 'sh', SUBSTITUTE,
      ...asUser(['exec', '-c', img.sif, 'sh', '-c', PROBE])];
    const r = spawnSync('unshare', argv, { cwd: img.tmp, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).to.equal(0);
    const outs = r.stdout.split('=== step\n');
    const errs = r.stderr.split('=== step\n');
    const used = /launch memo \S+: used/;
    const changed = 'launch memo: a fact changed: look /dev/infiniband';
    // 1: no devices yet: nothing of RDMA (the memo written then records /dev/infiniband's absence)
    expect(parse(outs[0]!)).to.include({ dev: '', rdma: '', verbs: '', syswrite: 'writable' });
    // 2: the devices appeared: that memo is not used, RDMA is bound
    expect(errs[1], errs[1]).to.contain(changed);
    expect(errs[1]).to.not.match(used);
    expect(parse(outs[1]!)).to.deep.equal(WITH_RDMA);
    // 3: the memo written by 2 serves the same launch
    expect(errs[2], errs[2]).to.match(used);
    expect(parse(outs[2]!)).to.deep.equal(WITH_RDMA);
    // 4: the devices are gone: not used, nothing bound
    expect(errs[3], errs[3]).to.contain(changed);
    expect(parse(outs[3]!)).to.include({ dev: '', rdma: '', verbs: '' });
  });
});
