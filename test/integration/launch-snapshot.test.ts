/**
 * `hpcc exec|run|shell|test` from the start-up snapshot (scripts/build-snapshot.mjs,
 * src/cli/launch-snapshot.ts), run the way the native front runs it — `node --snapshot-blob
 * BLOB ACTION ARGS...` — as the unprivileged test user, compared with `node bin/run.js ACTION
 * ARGS...`: the same output and exit codes (payload status, a missing command, usage errors,
 * --json, --explain-env), the same --plan-out bytes, the same launch memo for HPCC_MEMO_OUT,
 * stdin and signals passed to the payload; strace shows which path ran (the snapshot reads
 * neither bin/run.js nor the bundle; what it hands over reads bin/run.js). The blob is built
 * here, next to the build's (a later tsc would make the build's stale).
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { launchSnapshotServes } from '../../src/cli/launch-snapshot.js';
import { servingBlob, type SnapshotStamp } from '../../src/cli/snapshot.js';
import { SifReader } from '../../src/formats/sif/index.js';
import { HPCC_BIN, IS_ROOT, REPO_ROOT, makeTempDir, removeTree, requireTools, runHpcc, testUserIds } from '../helpers/env.js';
import { exitOf, makeE2eImage, waitFor, type E2eImage } from '../e2e/launch-fixture.js';

const CLI_DIR = path.join(REPO_ROOT, 'dist', 'src', 'cli');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** files the process opened (strace), when traced */
  opened: string[];
}

describe('integration: hpcc exec|run|shell|test from the start-up snapshot', function () {
  this.timeout(120_000);
  let img: E2eImage;
  let blob: string;
  let n = 0;
  const fresh = (name: string) => path.join(img.tmp, `${name}-${++n}`);

  /** The command line of one way: the snapshot, or bin/run.js. */
  const nodeArgv = (snapshot: boolean, args: string[]) => (snapshot ? ['--snapshot-blob', blob, ...args] : [HPCC_BIN, ...args]);
  /** The test user's environment (as runUnprivileged's) plus `env`. */
  const userEnv = (env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
    HOME: IS_ROOT ? '/home/hpcctest' : process.env.HOME,
    USER: IS_ROOT ? 'hpcctest' : process.env.USER,
    LOGNAME: IS_ROOT ? 'hpcctest' : process.env.LOGNAME,
    HPCC_CACHEDIR: path.join(img.tmp, 'cache'),
    ...env,
  });
  /** The test user's ids as setpriv arguments (nothing when not root). */
  const asUser = (argv: string[]) => {
    if (!IS_ROOT) return argv;
    const { uid, gid } = testUserIds();
    return ['setpriv', '--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', ...argv];
  };

  /** Run hpcc one way as the test user in img.tmp; with `trace`, strace (run by us) records the files it opens. */
  function run(args: string[], opts: { snapshot: boolean; trace?: boolean; env?: NodeJS.ProcessEnv; input?: string }): Run {
    const traceFile = fresh('strace');
    const cmd = asUser([process.execPath, ...nodeArgv(opts.snapshot, args)]);
    const argv = opts.trace ? ['strace', '-f', '-qq', '-e', 'trace=openat,open', '-o', traceFile, ...cmd] : cmd;
    const r = spawnSync(argv[0]!, argv.slice(1), {
      env: userEnv(opts.env),
      encoding: 'utf8',
      cwd: img.tmp,
      timeout: 60_000,
      ...(opts.input !== undefined ? { input: opts.input } : {}),
    });
    const opened = opts.trace ? [...fs.readFileSync(traceFile, 'utf8').matchAll(/open(?:at)?\([^"]*"([^"]+)"[^=]*= \d+/g)].map((m) => m[1]!) : [];
    if (opts.trace) fs.rmSync(traceFile, { force: true });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, opened };
  }
  const readsRunJs = (r: Run) => r.opened.some((f) => f.endsWith('/bin/run.js'));
  const readsBundle = (r: Run) => r.opened.some((f) => /\.bundle\.vm\.(js|cache)$/.test(f));

  /** Both ways, the snapshot traced: the same status, stdout and stderr; the snapshot's run. */
  function same(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): { normal: Run; snap: Run } {
    const normal = run(args, { ...opts, snapshot: false });
    const snap = run(args, { ...opts, snapshot: true, trace: true });
    expect([snap.status, snap.stdout, snap.stderr], args.join(' ')).to.deep.equal([normal.status, normal.stdout, normal.stderr]);
    return { normal, snap };
  }

  before(function () {
    requireTools(this, 'strace', 'setpriv');
    img = makeE2eImage(this, 'hpcc-launch-snapshot-');
    blob = path.join(CLI_DIR, `fast-launch.snapshot.test-${process.pid}.blob`);
    const built = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build-snapshot.mjs'), '--target', 'launch', '--out', blob], { encoding: 'utf8' });
    expect(built.status, built.stderr).to.equal(0);
    expect(fs.existsSync(blob), `no blob was built: ${built.stderr}`).to.equal(true);
  });

  after(function () {
    if (blob) for (const f of [blob, blob.replace(/\.blob$/, '.info')]) fs.rmSync(f, { force: true });
    if (img?.tmp) removeTree(img.tmp);
  });

  it('runs exec, run and test as bin/run.js does, without reading bin/run.js or the bundle', function () {
    for (const [args, status, stdout] of [
      [['exec', img.sif, 'sh', '-c', 'echo "uid $(id -u) $IMG_VAR $ORDER"; exit 42'], 42, `uid ${testUserIds().uid} image 01 10 90\n`],
      [['exec', '--env', 'A=1', '-B', `${img.hostDir}:/data:ro`, img.sif, 'sh', '-c', 'echo "A=$A"; cat /data/in.txt'], 0, 'A=1\nfrom the host\n'],
      [['exec', img.sif, 'true'], 0, ''],
      [['run', img.sif, 'one', 'two words'], 0, 'runscript 2 args:\n[one]\n[two words]\n'],
      [['test', img.sif], 3, 'testing image\n'],
    ] as [string[], number, string][]) {
      const { normal, snap } = same(args);
      expect([normal.status, normal.stdout, normal.stderr], args.join(' ')).to.deep.equal([status, stdout, '']);
      expect(readsRunJs(snap) || readsBundle(snap), `${args.join(' ')}: the snapshot handed over`).to.equal(false);
      expect(snap.opened).to.include(blob);
    }
  });

  it('passes stdin through, and the same errors and exit codes: a missing command, a missing image, --json', function () {
    const cat = same(['exec', img.sif, 'cat'], { input: 'piped in\n' });
    expect(cat.normal.stdout).to.equal('piped in\n');
    const missing = same(['exec', img.sif, 'no-such-command']);
    expect(missing.normal.status).to.equal(127);
    expect(missing.normal.stderr).to.contain('no-such-command');
    for (const extra of [[], ['--json']]) {
      const noImage = same(['exec', ...extra, path.join(img.tmp, 'none.sif'), 'true']);
      expect(noImage.normal.status).to.equal(80);
      expect(readsRunJs(noImage.snap)).to.equal(false);
    }
  });

  it('gives the same usage errors, served (exec without a command) or handed over (oclif, an image reference), and hands over under NODE_OPTIONS or HPCC_NO_BUNDLE=1', function () {
    const noCmd = same(['exec', img.sif]);
    expect(noCmd.normal.status).to.equal(2);
    expect(readsRunJs(noCmd.snap)).to.equal(false);
    for (const [args, env] of [
      [['exec', '--bogus', img.sif, 'true'], {}],
      [['exec', 'oci:some/layout', 'true'], {}],
      [['exec', img.sif, 'sh', '-c', 'exit 5'], { NODE_OPTIONS: '--no-deprecation' }],
      [['exec', img.sif, 'sh', '-c', 'exit 5'], { HPCC_NO_BUNDLE: '1' }],
    ] as [string[], NodeJS.ProcessEnv][]) {
      const r = same(args, { env });
      expect(r.normal.status, args.join(' ')).to.not.equal(0);
      expect(readsRunJs(r.snap), `${args.join(' ')}: handed to bin/run.js`).to.equal(true);
    }
  });

  it('writes the same plan bytes with --plan-out, and the same --explain-env (also --json)', function () {
    const plans = [false, true].map((snapshot) => {
      const file = fresh('plan');
      const r = run(['exec', '--plan-out', file, '--env', 'X=y', img.sif, 'echo', 'hi'], { snapshot });
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).to.equal(`Wrote the launch plan to ${file}\n`);
      return fs.readFileSync(file);
    });
    expect(plans[0]!.length).to.be.greaterThan(0);
    expect(plans[1]!.equals(plans[0]!)).to.equal(true);
    for (const extra of [[], ['--json']]) {
      const r = same(['exec', '--explain-env', ...extra, '--env', 'X=y', img.sif, 'true']);
      expect(r.normal.status).to.equal(0);
      expect(r.normal.stdout).to.contain('X');
    }
  });

  it('writes the launch memo HPCC_MEMO_OUT names, as bin/run.js does (also when it hands over), and none of it reaches the container', function () {
    const memos = [false, true].map((snapshot) => {
      const file = path.join(img.tmp, 'cache', 'launch', `${(++n).toString(16).padStart(16, '0')}.memo`); // memo.ts stageMemo: <hex16>.memo only
      const r = run(['exec', img.sif, 'sh', '-c', 'echo "memo=[${HPCC_MEMO_OUT:-}]"'], { snapshot, env: { HPCC_MEMO_OUT: file } });
      expect([r.status, r.stdout, r.stderr]).to.deep.equal([0, 'memo=[]\n', '']);
      expect(fs.existsSync(file), `${snapshot ? 'snapshot' : 'bin/run.js'}: no memo at ${file}`).to.equal(true);
      return fs.readFileSync(file);
    });
    expect(memos[1]!.equals(memos[0]!), 'the two memos differ').to.equal(true);
    // handed over (NODE_OPTIONS): bin/run.js gets HPCC_MEMO_OUT back
    const file = path.join(img.tmp, 'cache', 'launch', 'feedfacefeedface.memo');
    const r = run(['exec', img.sif, 'true'], { snapshot: true, trace: true, env: { HPCC_MEMO_OUT: file, NODE_OPTIONS: '--no-deprecation' } });
    expect(r.status, r.stderr).to.equal(0);
    expect(readsRunJs(r)).to.equal(true);
    expect(fs.existsSync(file)).to.equal(true);
  });

  it('reads a zstd image and extracts one (--unsquash) as bin/run.js does, typed codec errors included', async function () {
    // The other codecs and the extraction fallback are inside the snapshot: one copy of the error classes.
    const zsif = path.join(img.tmp, 'zstd.sif');
    const built = runHpcc(['build', '--quiet', '--deterministic', '--compressor', 'zstd', zsif, path.join(img.tmp, 'tree')]);
    expect(built.status, built.stderr).to.equal(0);
    fs.chmodSync(zsif, 0o644);
    const read = same(['exec', zsif, 'sh', '-c', 'echo "$IMG_VAR"']);
    expect([read.normal.status, read.normal.stdout]).to.deep.equal([0, 'image\n']);
    expect(readsRunJs(read.snap)).to.equal(false);
    // extraction: the first run extracts (and says so), so each way starts from an empty cache
    const cache = path.join(img.tmp, 'extract-cache');
    const unsquash = (args: string[], snapshot: boolean) => {
      removeTree(cache);
      return run(['exec', '--unsquash', ...args], { snapshot, env: { HPCC_CACHEDIR: cache } });
    };
    const extracted = [false, true].map((snapshot) => unsquash([zsif, 'cat', '/etc/group'], snapshot));
    expect(extracted[0]!.status, extracted[0]!.stderr).to.equal(0);
    expect(extracted[0]!.stderr).to.match(/^Extracting /);
    expect([extracted[1]!.status, extracted[1]!.stdout, extracted[1]!.stderr]).to.deep.equal([extracted[0]!.status, extracted[0]!.stdout, extracted[0]!.stderr]);
    // busybox's data blocks (right after the squashfs superblock) damaged: extraction fails with a typed error
    const bad = path.join(img.tmp, 'bad-zstd.sif');
    fs.copyFileSync(zsif, bad);
    const r = await SifReader.open(bad);
    const offset = r.primaryPartition().offset;
    await r.close();
    const fd = fs.openSync(bad, 'r+');
    fs.writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, offset + 96 + 4096);
    fs.closeSync(fd);
    const broken = [false, true].map((snapshot) => unsquash([bad, 'true'], snapshot));
    expect([broken[1]!.status, broken[1]!.stdout, broken[1]!.stderr]).to.deep.equal([broken[0]!.status, broken[0]!.stdout, broken[0]!.stderr]);
    expect(broken[0]!.status).to.equal(65);
    expect(broken[0]!.stderr).to.contain('Error (HPCC_E_SQFS_');
  });

  it('forwards SIGTERM to the payload as bin/run.js does', async function () {
    const script = 'trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.1; done';
    for (const snapshot of [false, true]) {
      const argv = asUser([process.execPath, ...nodeArgv(snapshot, ['exec', img.sif, 'sh', '-c', script])]);
      const child = spawn(argv[0]!, argv.slice(1), { cwd: img.tmp, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        const done = exitOf(child);
        await waitFor(child, 'ready');
        child.kill('SIGTERM');
        const { code, out } = await done;
        expect([code, out.includes('got TERM')], snapshot ? 'snapshot' : 'bin/run.js').to.deep.equal([7, true]);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    }
  });
});

describe('unit: when the launch snapshot serves a command (launch-snapshot.ts)', function () {
  let dir: string;
  let stamp: SnapshotStamp;
  before(function () {
    dir = makeTempDir('hpcc-launch-snapshot-unit-');
    fs.writeFileSync(path.join(dir, 'fast-launch.js'), '');
    stamp = { cliDir: dir, entryMtimeMs: fs.statSync(path.join(dir, 'fast-launch.js')).mtimeMs };
  });
  after(() => removeTree(dir));

  it('serves the launches fastLaunch parses, from the blob where it was built, of the current entry', function () {
    const blob = path.join(dir, 'fast-launch.snapshot.blob');
    for (const a of ['exec', 'run', 'shell', 'test']) expect(launchSnapshotServes(stamp, blob, [a, 'x.sif', 'true']), a).to.equal(true);
    expect(launchSnapshotServes(stamp, blob, ['exec', '-B', '/a:/b', '--json', 'x.sif'])).to.equal(true);
    expect(launchSnapshotServes(stamp, blob, ['exec', '--help'])).to.equal(false);
    expect(launchSnapshotServes(stamp, blob, ['exec', '--bogus', 'x.sif', 'true'])).to.equal(false);
    expect(launchSnapshotServes(stamp, blob, ['exec'])).to.equal(false);
    expect(launchSnapshotServes(stamp, blob, ['exec', 'docker://alpine', 'true'])).to.equal(false);
    expect(launchSnapshotServes(stamp, blob, ['pull', 'docker://alpine'])).to.equal(false);
    expect(launchSnapshotServes(stamp, undefined, ['exec', 'x.sif', 'true'])).to.equal(false);
    expect(launchSnapshotServes(stamp, '/elsewhere/fast-launch.snapshot.blob', ['exec', 'x.sif', 'true'])).to.equal(false);
    expect(launchSnapshotServes({ ...stamp, entryMtimeMs: stamp.entryMtimeMs - 1000 }, blob, ['exec', 'x.sif', 'true'])).to.equal(false);
  });

  it('serves from the --snapshot-blob alone, without NODE_OPTIONS or HPCC_NO_BUNDLE=1', function () {
    expect(servingBlob(['--snapshot-blob', '/x/b.blob'], { HPCC_NO_BUNDLE: '0' })).to.equal('/x/b.blob');
    expect(servingBlob(['--snapshot-blob', '/x/b.blob'], { HPCC_NO_BUNDLE: '1' })).to.equal(undefined);
    expect(servingBlob(['--snapshot-blob', '/x/b.blob'], { NODE_OPTIONS: '--no-warnings' })).to.equal(undefined);
    expect(servingBlob(['--cpu-prof', '--snapshot-blob', '/x/b.blob'], {})).to.equal(undefined);
  });
});
