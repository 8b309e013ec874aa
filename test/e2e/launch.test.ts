/**
 * hpcc exec/run/shell/test end to end: the hpcc binary, run as the
 * unprivileged test user, on a SIF built from a static-busybox tree with an
 * Apptainer-style /.singularity.d (env scripts, runscript, test). Real user
 * and mount namespaces, real squashfuse, the real C helper.
 */
import { expect } from 'chai';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SifDataType, SifReader, SifWriter } from '../../src/formats/sif/index.js';
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
} from '../helpers/env.js';

const APPLETS = ['sh', 'cat', 'echo', 'id', 'ls', 'pwd', 'touch', 'grep', 'env', 'kill', 'sleep', 'true', 'false', 'mkdir', 'rm', 'test', '['];

/** A busybox root with an Apptainer-style /.singularity.d. */
function makeTree(root: string, busybox: string): void {
  for (const d of ['bin', 'etc', 'tmp', 'var/tmp', 'dev', 'proc', 'sys', 'home', 'opt/tools', '.singularity.d/env', '.singularity.d/libs']) {
    fs.mkdirSync(path.join(root, d), { recursive: true });
  }
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.copyFileSync(busybox, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
  // a setuid-root copy of busybox (only root can make one): it must gain nothing inside
  if (IS_ROOT) {
    // named after the applet it runs (busybox picks the applet from argv[0])
    fs.mkdirSync(path.join(root, 'suid'));
    fs.copyFileSync(busybox, path.join(root, 'suid/id'));
    fs.chownSync(path.join(root, 'suid/id'), 0, 0);
    fs.chmodSync(path.join(root, 'suid/id'), 0o4755);
  }
  fs.writeFileSync(path.join(root, 'opt/tools/mytool'), '#!/bin/sh\necho mytool\n', { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\n');
  const sd = path.join(root, '.singularity.d');
  fs.writeFileSync(path.join(sd, 'env/01-base.sh'), '#!/bin/sh\nexport ORDER="01"\n');
  fs.writeFileSync(path.join(sd, 'env/10-docker2singularity.sh'), '#!/bin/sh\nexport PATH="/usr/local/bin:/usr/bin:/bin"\nexport FROM_OCI="${FROM_OCI:-"oci-default"}"\nexport ORDER="$ORDER 10"\n');
  fs.writeFileSync(path.join(sd, 'env/90-environment.sh'), '#!/bin/sh\nexport IMG_VAR=image\nexport ORDER="$ORDER 90"\n');
  fs.writeFileSync(path.join(sd, 'runscript'), '#!/bin/sh\necho "runscript $# args:"\nfor a in "$@"; do echo "[$a]"; done\n', { mode: 0o755 });
  fs.writeFileSync(path.join(sd, 'test'), '#!/bin/sh\necho "testing $IMG_VAR"\nexit 3\n', { mode: 0o755 });
  fs.writeFileSync(path.join(sd, 'labels.json'), '{"org.hpcc.test":"e2e"}\n');
}

/** Entries of `dir` owned by `uid` (temp dirs a launch might leave behind). */
function ownedEntries(dir: string, uid: number): Set<string> {
  const out = new Set<string>();
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      if (fs.lstatSync(path.join(dir, n)).uid === uid) out.add(n);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Start hpcc as the test user without waiting (signals, SIGKILL, concurrency). */
function spawnUnprivileged(args: string[], cwd: string, env: Record<string, string> = {}): ChildProcess {
  const base = { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: IS_ROOT ? '/home/hpcctest' : process.env.HOME!, ...env };
  if (!IS_ROOT) return spawn(process.execPath, [HPCC_BIN, ...args], { cwd, env: base, stdio: ['pipe', 'pipe', 'pipe'] });
  const { uid, gid } = testUserIds();
  return spawn('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', process.execPath, HPCC_BIN, ...args], {
    cwd,
    env: base,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function waitFor(child: ChildProcess, text: string, ms = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${text}; got ${out}`)), ms);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(text)) {
        clearTimeout(t);
        resolve(out);
      }
    });
  });
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('e2e: hpcc exec/run/shell/test as an unprivileged user', function () {
  this.timeout(180_000);
  let tmp: string;
  let sif: string;
  let hostDir: string;
  const uid = () => testUserIds().uid;

  /** Run hpcc as the test user in `tmp`. */
  function hpcc(args: string[], opts: { env?: Record<string, string>; input?: string } = {}) {
    return runUnprivileged(process.execPath, [HPCC_BIN, ...args], {
      cwd: tmp,
      env: { HOME: IS_ROOT ? '/home/hpcctest' : process.env.HOME!, ...(opts.env ?? {}) },
      ...(opts.input !== undefined ? { input: opts.input } : {}),
      timeout: 60_000,
    });
  }
  const exec = (cmd: string, extra: string[] = [], env?: Record<string, string>) => hpcc(['exec', ...extra, sif, 'sh', '-c', cmd], env ? { env } : {});

  /** The test user's entries in the temp dir and in /mnt (the usual stage) before a leak check. */
  let tmpBefore = new Set<string>();
  let mountsBefore = new Set<string>();
  const mountPoints = (): Set<string> =>
    new Set(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m !== ''));
  const snapshot = (): void => {
    tmpBefore = new Set([...ownedEntries('/tmp', uid()), ...[...ownedEntries('/mnt', uid())].map((e) => `/mnt/${e}`)]);
    mountsBefore = mountPoints();
  };

  /** Everything a launch of this suite could leave behind: FUSE servers, mounts, stage or temp dirs. */
  function leftovers(): string[] {
    const out: string[] = [];
    // (other suites may run squashfuse as the test user concurrently: look for ours only)
    const fuse = spawnSync('pgrep', ['-a', '-u', String(uid()), '-f', `squashfuse.*${sif}`], { encoding: 'utf8' }).stdout.trim();
    if (fuse) out.push(`squashfuse: ${fuse}`);
    const ovl = spawnSync('pgrep', ['-a', '-u', String(uid()), '-x', 'fuse-overlayfs'], { encoding: 'utf8' }).stdout.trim();
    if (ovl) out.push(`fuse-overlayfs: ${ovl}`);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    for (const m of mounts) if (m.includes(sif) || /hpcc-\d+/.test(m)) out.push(`mount: ${m}`);
    for (const m of mountPoints()) if (!mountsBefore.has(m)) out.push(`new mount point: ${m}`);
    const stage = `/tmp/hpcc-${uid()}`;
    if (fs.existsSync(stage) && fs.readdirSync(stage).length > 0) out.push(`stage contents: ${fs.readdirSync(stage).join(' ')}`);
    const now = new Set([...ownedEntries('/tmp', uid()), ...[...ownedEntries('/mnt', uid())].map((e) => `/mnt/${e}`)]);
    for (const e of now) if (!tmpBefore.has(e) && (e.startsWith('/mnt/') || /hpcc/.test(e))) out.push(`temp entry: ${e}`);
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
    requireTools(this, 'squashfuse_ll', 'busybox', 'unshare');
    requireTestUser(this);
    if (!fs.existsSync(path.join(REPO_ROOT, 'dist/native/hpcc-launch'))) throw new Error('run npm run build first (dist/native/hpcc-launch missing)');
    const bb = findTool('busybox')!;
    if (!/not a dynamic|statically linked/.test(spawnSync('ldd', [bb], { encoding: 'utf8' }).stdout + spawnSync('ldd', [bb], { encoding: 'utf8' }).stderr)) {
      this.skip();
    }
    tmp = makeTempDir('hpcc-e2e-launch-');
    const tree = path.join(tmp, 'tree');
    makeTree(tree, bb);
    sif = path.join(tmp, 'img.sif');
    const r = runHpcc(['build', sif, tree]);
    expect(r.status, r.stderr).to.equal(0);
    fs.chmodSync(sif, 0o644);
    hostDir = path.join(tmp, 'hostdir');
    fs.mkdirSync(hostDir);
    fs.writeFileSync(path.join(hostDir, 'in.txt'), 'from the host\n');
    if (IS_ROOT) {
      execFileSync('chown', ['-R', `${uid()}:${testUserIds().gid}`, hostDir]);
      execFileSync('chown', [`${uid()}:${testUserIds().gid}`, tmp]);
    }
  });
  after(() => {
    if (tmp) removeTree(tmp);
  });

  it('runs as the caller: same uid/gid, no capabilities, no_new_privs, a passwd entry', () => {
    const { uid: u, gid: g } = testUserIds();
    const r = exec('id -u; id -g; id -un; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status');
    expect(r.status, r.stderr).to.equal(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 2)).to.deep.equal([String(u), String(g)]);
    if (IS_ROOT) expect(lines[2]).to.equal('hpcctest');
    expect(r.stdout).to.match(/CapEff:\s+0000000000000000/).and.match(/NoNewPrivs:\s+1/);
  });

  it('a setuid-root binary inside gains nothing', function () {
    if (!IS_ROOT) this.skip();
    const r = exec('ls -ln /suid/id; /suid/id -u; /suid/id -un');
    expect(r.status, r.stderr).to.equal(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).to.match(/^-rwsr-xr-x/);
    expect(lines.slice(1)).to.deep.equal([String(uid()), 'hpcctest']);
  });

  it('the image is read-only', () => {
    const r = exec('touch /bin/new 2>&1; echo rc=$?');
    expect(r.stdout).to.match(/Read-only file system/).and.match(/rc=1/);
  });

  it('passes exit codes 0, 1, 42, 255 through', () => {
    for (const code of [0, 1, 42, 255]) expect(exec(`exit ${code}`).status).to.equal(code);
  });

  it('a payload killed by a signal gives 128+N', () => {
    expect(exec('kill -TERM $$').status).to.equal(143);
    expect(exec('kill -KILL $$').status).to.equal(137);
  });

  it('pipes stdin to the payload', () => {
    const r = hpcc(['exec', sif, 'cat'], { input: 'piped line\n' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('piped line\n');
  });

  it('sources /.singularity.d/env/*.sh in order; --env and HPCCENV_ override the image; host vars fill the rest', () => {
    const r = exec('echo "$ORDER|$IMG_VAR|$FROM_OCI|$FOO|$LD_LIBRARY_PATH|$HPCCENV_A|$A|$PATH"', ['--env', 'IMG_VAR=flag'], {
      FOO: 'host-foo',
      LD_LIBRARY_PATH: '/host/lib',
      HPCCENV_A: 'a',
      HPCCENV_PREPEND_PATH: '/opt/tools',
    });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal('01 10 90|flag|oci-default|host-foo|/.singularity.d/libs||a|/opt/tools:/usr/local/bin:/usr/bin:/bin');
    expect(hpcc(['exec', sif, 'mytool'], { env: { HPCCENV_APPEND_PATH: '/opt/tools' } }).stdout).to.equal('mytool\n');
  });

  it('--cleanenv drops host variables but keeps --env; --env-file applies', () => {
    const envFile = path.join(tmp, 'vars.env');
    fs.writeFileSync(envFile, '# comment\nexport FROM_FILE="file value"\n');
    fs.chmodSync(envFile, 0o644);
    const r = exec('echo "[$FOO][$KEEP][$FROM_FILE]"', ['--cleanenv', '--env', 'KEEP=kept', '--env-file', envFile], { FOO: 'host-foo' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal('[][kept][file value]');
  });

  it('--explain-env shows where variables come from', () => {
    const r = hpcc(['exec', '--explain-env', '--env', 'IMG_VAR=x', sif, 'true']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^IMG_VAR=x\n {4}from --env \(overrides image \/\.singularity\.d\/env\/90-environment\.sh\)$/m);
    const j = hpcc(['exec', '--explain-env', '--json', '--env', 'IMG_VAR=x', sif, 'true']);
    const row = (JSON.parse(j.stdout) as { variables: { name: string; source: string }[] }).variables.find((v) => v.name === 'IMG_VAR');
    expect(row).to.deep.include({ source: '--env' });
  });

  it('-B src:dst:ro and rw binds; writes through a rw bind reach the host', () => {
    const r = exec('cat /data/in.txt; touch /data/x 2>&1 | grep -c Read-only; echo w > /rw/out.txt', ['-B', `${hostDir}:/data:ro`, '--bind', `${hostDir}:/rw`]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('from the host\n1\n');
    expect(fs.readFileSync(path.join(hostDir, 'out.txt'), 'utf8')).to.equal('w\n');
  });

  it('binds the working directory and $HOME by default; --no-home leaves $HOME out; --pwd sets the directory', () => {
    const home = IS_ROOT ? '/home/hpcctest' : process.env.HOME!;
    let r = exec('pwd; test -d "$HOME" && echo home-there', []);
    expect(r.stdout).to.equal(`${tmp}\nhome-there\n`);
    r = exec('test -d "$HOME" && echo home-there || echo no-home; echo $HOME', ['--no-home']);
    expect(r.stdout).to.equal(`no-home\n${home}\n`);
    r = exec('pwd', ['--pwd', '/opt']);
    expect(r.stdout).to.equal('/opt\n');
  });

  it('--contain: private /tmp and $HOME, cwd is $HOME', () => {
    const marker = path.join('/tmp', `hpcc-e2e-marker-${process.pid}`);
    fs.writeFileSync(marker, 'x');
    try {
      const r = exec(`test -e ${marker} && echo visible || echo hidden; pwd; ls -A "$HOME" | wc -l`, ['--contain']);
      expect(r.status, r.stderr).to.equal(0);
      const home = IS_ROOT ? '/home/hpcctest' : process.env.HOME!;
      expect(r.stdout.trim().split('\n')).to.deep.equal(['hidden', home, '0']);
    } finally {
      fs.rmSync(marker, { force: true });
    }
  });

  it('hpcc run follows the runscript with its arguments', () => {
    const r = hpcc(['run', sif, 'a b', '', '-x']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('runscript 3 args:\n[a b]\n[]\n[-x]\n');
  });

  it('hpcc test runs /.singularity.d/test with the image environment', () => {
    const r = hpcc(['test', sif]);
    expect(r.stdout).to.equal('testing image\n');
    expect(r.status).to.equal(3);
  });

  it('hpcc shell reads commands from a piped stdin', () => {
    const r = hpcc(['shell', sif], { input: 'echo in-shell $IMG_VAR\n' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('in-shell image\n');
  });

  it('hpcc shell on a terminal: interactive, the payload sees a TTY, the exit status passes through', function () {
    requireTools(this, 'script');
    const r = runUnprivileged('script', ['-qec', `${process.execPath} ${HPCC_BIN} shell ${sif}`, '/dev/null'], {
      cwd: tmp,
      env: { HOME: IS_ROOT ? '/home/hpcctest' : process.env.HOME! },
      input: 'tty; exit 3\n',
      timeout: 60_000,
    });
    expect(r.stdout).to.match(/\/dev\/pts\/\d+/).and.contain('hpcc> ');
    expect(r.status).to.equal(3);
  });

  it('--plan-out writes a plan the helper runs without Node', () => {
    const plan = path.join(tmp, 'saved.plan');
    let r = hpcc(['exec', '--plan-out', plan, sif, 'sh', '-c', 'echo saved $IMG_VAR; exit 7']);
    expect(r.status, r.stderr).to.equal(0);
    r = runUnprivileged(path.join(REPO_ROOT, 'dist/native/hpcc-launch'), ['--plan', plan], { cwd: tmp });
    expect(r.stdout).to.equal('saved image\n');
    expect(r.status).to.equal(7);
  });

  it('hpcc-launch --plan FILE CMD ARGS keeps the env-script wrapper: image env scripts and --env still apply', () => {
    const plan = path.join(tmp, 'saved-cmd.plan');
    let r = hpcc(['exec', '--plan-out', plan, '--env', 'FROM_FLAG=flag value', sif, 'true']);
    expect(r.status, r.stderr).to.equal(0);
    const helper = path.join(REPO_ROOT, 'dist/native/hpcc-launch');
    // busybox has no printenv applet: `env` prints the payload's whole environment
    r = runUnprivileged(helper, ['--plan', plan, 'env'], { cwd: tmp, timeout: 60_000 });
    expect(r.status, r.stderr).to.equal(0);
    const lines = r.stdout.split('\n');
    expect(lines).to.include('IMG_VAR=image'); // set by /.singularity.d/env/90-environment.sh
    expect(lines).to.include('ORDER=01 10 90'); // every script, in order
    expect(lines).to.include('FROM_FLAG=flag value'); // --env, applied by the wrapper
    expect(r.stdout).not.to.contain('__HPCC_');
    // arguments pass through unchanged after the wrapper's prefix
    r = runUnprivileged(helper, ['--plan', plan, 'sh', '-c', 'echo "$IMG_VAR|$FROM_FLAG|$1"; exit 5', 'sh', 'a b'], { cwd: tmp, timeout: 60_000 });
    expect([r.status, r.stdout]).to.deep.equal([5, 'image|flag value|a b\n']);
  });

  it('errors: missing image (80), not a SIF (64), missing bind source (2, with a hint), exec without a command (2), damaged squashfs (65), no primary partition (64)', async () => {
    let r = hpcc(['exec', path.join(tmp, 'missing.sif'), 'true']);
    expect(r.status).to.equal(80);
    expect(r.stderr).to.contain('HPCC_E_IO_ENOENT');
    const notSif = path.join(tmp, 'not.sif');
    fs.writeFileSync(notSif, 'hello, not a SIF file at all, just text\n'.repeat(4));
    fs.chmodSync(notSif, 0o644);
    r = hpcc(['exec', notSif, 'true']);
    expect(r.status).to.equal(64);
    expect(r.stderr).to.contain('HPCC_E_SIF_BAD_MAGIC');
    r = hpcc(['exec', '-B', '/no/such/dir:/x', sif, 'true']);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.contain('/no/such/dir').and.contain('Try this:');
    r = hpcc(['exec', sif]);
    expect(r.status).to.equal(2);
    // a damaged squashfs partition (superblock magic overwritten) is a format error before any launch
    const bad = path.join(tmp, 'bad.sif');
    fs.copyFileSync(sif, bad);
    const reader = await SifReader.open(sif);
    const offset = reader.primaryPartition().offset;
    await reader.close();
    const fd = fs.openSync(bad, 'r+');
    try {
      fs.writeSync(fd, Buffer.from('XXXX'), 0, 4, offset);
    } finally {
      fs.closeSync(fd);
    }
    fs.chmodSync(bad, 0o644);
    r = hpcc(['exec', bad, 'true']);
    expect(r.status, r.stderr).to.equal(65);
    expect(r.stderr).to.contain('HPCC_E_SQFS_BAD_MAGIC');
    // a SIF holding only a definition file: no primary partition
    const noPart = path.join(tmp, 'nopart.sif');
    const w = await SifWriter.create(noPart);
    await w.addObject({ type: SifDataType.Deffile, data: Buffer.from('Bootstrap: scratch\n') });
    await w.finish();
    fs.chmodSync(noPart, 0o644);
    r = hpcc(['exec', noPart, 'true']);
    expect(r.status, r.stderr).to.equal(64);
    expect(r.stderr).to.contain('HPCC_E_SIF_NO_PRIMARY');
  });

  it('extraction fallback: without squashfuse (or with --unsquash) the image runs from a cached extraction, made once', () => {
    const cache = path.join(tmp, 'cache');
    const env = { HPCC_CACHEDIR: cache, HPCC_SQUASHFUSE: 'none' };
    let r = hpcc(['exec', sif, 'sh', '-c', 'id -u; echo $IMG_VAR; touch /bin/new 2>&1 | grep -c Read-only'], { env });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(`${uid()}\nimage\n1\n`);
    expect(r.stderr).to.contain('Extracting');
    const entries = fs.readdirSync(path.join(cache, 'rootfs'));
    expect(entries).to.have.length(1);
    r = hpcc(['exec', '--unsquash', '--writable-tmpfs', sif, 'sh', '-c', 'echo x > /bin/new && cat /bin/new'], { env: { HPCC_CACHEDIR: cache } });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('x\n');
    expect(r.stderr).to.not.contain('Extracting');
    expect(fs.existsSync(path.join(cache, 'rootfs', entries[0]!, 'bin/new')), 'the cached tree is never written').to.equal(false);
  });

  it('SIGTERM, SIGHUP and SIGUSR1 sent to hpcc reach the payload', async () => {
    for (const [sig, code] of [['SIGTERM', 5], ['SIGHUP', 6], ['SIGUSR1', 7]] as const) {
      const name = sig.slice(3);
      const child = spawnUnprivileged(['exec', sif, 'sh', '-c', `trap "echo got-${name}; exit ${code}" ${name}; echo ready; while :; do sleep 0.1; done`], tmp);
      const done = exitOf(child);
      await waitFor(child, 'ready');
      child.kill(sig);
      const r = await done;
      expect(r.out, sig).to.contain(`got-${name}`);
      expect(r.code, sig).to.equal(code);
    }
  });

  it('16 concurrent launches all succeed and leave nothing behind', async () => {
    snapshot();
    const runs = Array.from({ length: 16 }, (_, i) => exitOf(spawnUnprivileged(['exec', sif, 'sh', '-c', `echo run-${i}; exit ${i}`], tmp)));
    const results = await Promise.all(runs);
    results.forEach((r, i) => {
      expect(r.out).to.equal(`run-${i}\n`);
      expect(r.code).to.equal(i);
    });
    expect(await settle()).to.deep.equal([]);
  });

  for (const overlay of ['', 'fuse']) it(`SIGKILL of hpcc mid-run ends the container: no payload, squashfuse${overlay ? ', fuse-overlayfs' : ''}, mount or temp dir left`, async function () {
    if (overlay) requireTools(this, 'fuse-overlayfs');
    snapshot();
    const tag = `hpcc-sigkill-${process.pid}`;
    const extra = overlay ? ['-B', `${hostDir}:/not/in/image`] : [];
    const child = spawnUnprivileged(['exec', ...extra, sif, 'sh', '-c', `echo ready; exec sleep 1000 # ${tag}`], tmp, overlay ? { HPCC_OVERLAY: overlay } : {});
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

  it('user namespaces disabled (max_user_namespaces=0 in an enclosing user namespace): exit 99, and doctor names the fix', () => {
    const inner = (args: string) =>
      runUnprivileged('unshare', ['-r', 'sh', '-c', `echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" ${HPCC_BIN} ${args}`, process.execPath], {
        cwd: tmp,
        env: { HOME: IS_ROOT ? '/home/hpcctest' : process.env.HOME! },
      });
    const r = inner(`exec ${sif} true`);
    expect(r.status, r.stderr).to.equal(99);
    expect(r.stderr).to.contain('HPCC_E_LAUNCH_USERNS').and.contain('hpcc doctor');
    const d = inner('doctor');
    expect(d.status).to.equal(1);
    expect(d.stdout).to.match(/\[FAIL\] user\.max_user_namespaces: user namespaces are disabled/).and.contain('fix: As root: sysctl -w user.max_user_namespaces=');
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

  it('hpcc doctor passes on this node (as the test user) and prints each check', () => {
    const r = hpcc(['doctor']);
    expect(r.stdout).to.contain('user+mount namespace probe').and.contain('/dev/fuse').and.contain('squashfuse');
    expect(r.stdout).to.match(/^\[ok {2}\] kernel overlayfs in a user namespace: /m).and.match(/^\[(ok  |WARN)\] fuse-overlayfs: /m);
    expect(r.status, r.stdout).to.equal(0);
    const j = hpcc(['doctor', '--json']);
    expect(JSON.parse(j.stdout).status).to.equal('ok');
  });

  it('leaves no mounts, FUSE processes, stage contents or temp dirs after 200 sequential launches', async function () {
    this.timeout(400_000);
    snapshot();
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
      snapshot();
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
});
