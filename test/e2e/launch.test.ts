/**
 * hpcc exec/run/shell/test end to end: the hpcc binary, run as the
 * unprivileged test user, on a SIF built from a static-busybox tree with an
 * Apptainer-style /.singularity.d (env scripts, runscript, test). Real user
 * and mount namespaces, real squashfuse, the real C helper.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SifDataType, SifReader, SifWriter } from '../../src/formats/sif/index.js';
import { HPCC_BIN, IS_ROOT, REPO_ROOT, removeTree, requireTools, runUnprivileged, testUserIds } from '../helpers/env.js';
import { exitOf, hpccAs, makeE2eImage, spawnUnprivileged, waitFor } from './launch-fixture.js';

describe('e2e: hpcc exec/run/shell/test as an unprivileged user', function () {
  this.timeout(180_000);
  let tmp: string;
  let sif: string;
  let hostDir: string;
  const uid = () => testUserIds().uid;

  /** Run hpcc as the test user in `tmp`. */
  const hpcc = (args: string[], opts: { env?: Record<string, string>; input?: string } = {}) => hpccAs(tmp, args, opts);
  const exec = (cmd: string, extra: string[] = [], env?: Record<string, string>) => hpcc(['exec', ...extra, sif, 'sh', '-c', cmd], env ? { env } : {});

  before(function () {
    ({ tmp, sif, hostDir } = makeE2eImage(this, 'hpcc-e2e-launch-'));
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

  it('concurrent launches needing the same extraction: one extracts, the others wait and use its tree', async () => {
    const cache = path.join(tmp, 'cache-concurrent');
    const env = { HPCC_CACHEDIR: cache };
    const runs = Array.from({ length: 4 }, () => {
      const child = spawnUnprivileged(['exec', '--unsquash', sif, 'sh', '-c', 'echo $IMG_VAR'], tmp, env);
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      return exitOf(child).then((r) => ({ ...r, err }));
    });
    const results = await Promise.all(runs);
    for (const r of results) expect(r.code, r.err).to.equal(0);
    for (const r of results) expect(r.out).to.equal('image\n');
    expect(results.filter((r) => r.err.includes('Extracting')), 'extractions').to.have.length(1);
    expect(fs.readdirSync(path.join(cache, 'rootfs'))).to.have.length(1);
    expect(fs.readdirSync(path.join(cache, 'locks'))).to.deep.equal([]);
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

  it('hpcc doctor passes on this node (as the test user) and prints each check', () => {
    const r = hpcc(['doctor']);
    expect(r.stdout).to.contain('user+mount namespace probe').and.contain('/dev/fuse').and.contain('squashfuse');
    expect(r.stdout).to.match(/^\[ok {2}\] kernel overlayfs in a user namespace: /m).and.match(/^\[(ok  |WARN)\] fuse-overlayfs: /m);
    expect(r.status, r.stdout).to.equal(0);
    const j = hpcc(['doctor', '--json']);
    expect(JSON.parse(j.stdout).status).to.equal('ok');
  });

});
