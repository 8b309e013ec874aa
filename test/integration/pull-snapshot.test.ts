/**
 * `hpcc pull` from the start-up snapshot (scripts/build-snapshot.mjs, src/cli/pull-snapshot.ts),
 * run the way the native front runs it — `node --snapshot-blob BLOB pull ARGS...` — against
 * Debian's docker-registry on 127.0.0.1, compared with `node bin/run.js pull ARGS...`: the same
 * SIF (objects, squashfs tree), the same errors and exit codes; strace shows which path ran
 * (the snapshot reads neither bin/run.js nor a bundle; what it hands over reads bin/run.js).
 * The blob is built here, next to the build's (a later tsc would make the build's stale).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SifReader } from '../../src/formats/sif/index.js';
import { soleBlobPath, snapshotServes, type SnapshotStamp } from '../../src/cli/pull-snapshot.js';
import { HPCC_BIN, IN_CI, REPO_ROOT, makeTempDir, removeTree, requireTools } from '../helpers/env.js';
import { startSmallImageRegistry, type SmallImageRegistry } from '../helpers/registry-fixtures.js';
import { compareTrees } from '../helpers/tree-compare.js';

const CLI_DIR = path.join(REPO_ROOT, 'dist', 'src', 'cli');
const PARTITION = 0x4004; // SIF data type of the squashfs partition

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** files the process opened (strace), when traced */
  opened: string[];
}

describe('integration: hpcc pull from the start-up snapshot', function () {
  this.timeout(120_000);
  let work: string;
  let img: SmallImageRegistry | undefined;
  let blob: string;
  let n = 0;
  const fresh = (name: string) => path.join(work, `${name}-${++n}`);

  function run(args: string[], opts: { snapshot: boolean; trace?: boolean; cache?: string; env?: NodeJS.ProcessEnv }): Run {
    const node = opts.snapshot ? [process.execPath, '--snapshot-blob', blob, ...args] : [process.execPath, HPCC_BIN, ...args];
    const traceFile = fresh('strace');
    const argv = opts.trace ? ['strace', '-f', '-qq', '-e', 'trace=openat,open', '-o', traceFile, ...node] : node;
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: work, HPCC_CACHEDIR: opts.cache ?? fresh('cache'), ...opts.env };
    const r = spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8', cwd: work });
    const opened = opts.trace ? [...fs.readFileSync(traceFile, 'utf8').matchAll(/open(?:at)?\([^"]*"([^"]+)"[^=]*= \d+/g)].map((m) => m[1]!) : [];
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, opened };
  }

  before(async function () {
    requireTools(this, 'docker-registry', 'skopeo', 'umoci', 'strace', 'unsquashfs');
    work = makeTempDir('hpcc-pull-snapshot-');
    blob = path.join(CLI_DIR, `fast-pull.snapshot.test-${process.pid}.blob`);
    const built = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build-snapshot.mjs'), '--out', blob], { encoding: 'utf8' });
    expect(built.status, built.stderr).to.equal(0);
    expect(fs.existsSync(blob), `no blob was built: ${built.stderr}`).to.equal(true);
    img = await startSmallImageRegistry('hpcc-pull-snapshot-reg-', 'none');
  });

  after(async function () {
    await img?.stop();
    if (blob) for (const f of [blob, blob.replace(/\.blob$/, '.info')]) fs.rmSync(f, { force: true });
    if (work) removeTree(work);
  });

  it('pulls the same SIF as bin/run.js, without reading bin/run.js or a bundle', async function () {
    const ref = `docker://${img!.reg.host}/lab/small:latest`;
    const a = path.join(work, 'normal.sif');
    const b = path.join(work, 'snapshot.sif');
    const normal = run(['pull', '--quiet', '--insecure', a, ref], { snapshot: false });
    expect(normal.status, normal.stderr).to.equal(0);
    const snap = run(['pull', '--quiet', '--insecure', b, ref], { snapshot: true, trace: true });
    expect(snap.status, snap.stderr).to.equal(0);
    expect(snap.stderr).to.equal(normal.stderr);
    expect(snap.opened.filter((f) => /bin\/run\.js$|\.bundle\.vm\.(js|cache)$/.test(f))).to.deep.equal([]);
    expect(snap.opened).to.include(blob);

    // Same objects (all but the partition byte for byte; times and the SIF's id differ by design) ...
    const [ra, rb] = [await SifReader.open(a), await SifReader.open(b)];
    try {
      const shape = (r: SifReader) => r.descriptors.map((d) => [d.dataType, d.name, d.size, d.groupId, d.linkedId]);
      expect(shape(rb)).to.deep.equal(shape(ra));
      for (let i = 0; i < ra.descriptors.length; i++) {
        if (ra.descriptors[i]!.dataType === PARTITION) continue;
        expect((await rb.readObject(rb.descriptors[i]!)).equals(await ra.readObject(ra.descriptors[i]!)), ra.descriptors[i]!.name).to.equal(true);
      }
    } finally {
      await ra.close();
      await rb.close();
    }
    // ... and the same tree in the partition.
    const trees = [a, b].map((sif) => ({ sif, dir: fresh('tree') }));
    for (const t of trees) {
      const r = await SifReader.open(t.sif);
      const offset = r.primaryPartition().offset;
      await r.close();
      const u = spawnSync('unsquashfs', ['-q', '-n', '-o', String(offset), '-d', t.dir, t.sif], { encoding: 'utf8' });
      expect(u.status, u.stderr).to.equal(0);
    }
    expect(await compareTrees(trees[0]!.dir, trees[1]!.dir, { owners: true, xattrs: true, mtimes: false })).to.deep.equal([]);
    expect(fs.readFileSync(path.join(trees[1]!.dir, 'etc', 'hello'), 'utf8')).to.equal('hello from hpcc tests\n');
  });

  it('fails a missing tag with the same message and exit code, also with --json', function () {
    const ref = `docker://${img!.reg.host}/lab/small:missing`;
    for (const extra of [[], ['--json']]) {
      const args = ['pull', '--insecure', ...extra, path.join(work, 'missing.sif'), ref];
      const normal = run(args, { snapshot: false });
      const snap = run(args, { snapshot: true, trace: true });
      expect(normal.status).to.equal(81);
      expect([snap.status, snap.stdout, snap.stderr]).to.deep.equal([normal.status, normal.stdout, normal.stderr]);
      expect(snap.opened.filter((f) => f.endsWith('/bin/run.js'))).to.deep.equal([]);
      expect(fs.existsSync(path.join(work, 'missing.sif'))).to.equal(false);
    }
  });

  it('hands what it does not serve to bin/run.js in the same process, with the same result', function () {
    const ref = `docker://${img!.reg.host}/lab/small:latest`;
    // oclif's usage error (three arguments), and another compressor (a codec outside the snapshot)
    const normal = run(['pull', 'a', 'b', 'c'], { snapshot: false });
    const snap = run(['pull', 'a', 'b', 'c'], { snapshot: true, trace: true });
    expect(normal.status).to.not.equal(0);
    expect([snap.status, snap.stdout, snap.stderr]).to.deep.equal([normal.status, normal.stdout, normal.stderr]);
    expect(snap.opened.some((f) => f.endsWith('/bin/run.js'))).to.equal(true);

    const out = path.join(work, 'lz4.sif');
    const lz4 = run(['pull', '--quiet', '--insecure', '--compressor', 'lz4', out, ref], { snapshot: true, trace: true });
    expect(lz4.status, lz4.stderr).to.equal(0);
    expect(lz4.opened.some((f) => f.endsWith('/bin/run.js'))).to.equal(true);
    expect(fs.statSync(out).size).to.be.greaterThan(0);

    // Another Node option (NODE_OPTIONS) is handed over too: the snapshot holds values it could change.
    const opt = run(['pull', '--insecure', path.join(work, 'x.sif'), `${ref.replace(/:latest$/, ':missing')}`], {
      snapshot: true,
      trace: true,
      env: { NODE_OPTIONS: '--no-deprecation' },
    });
    expect(opt.status).to.equal(81);
    expect(opt.opened.some((f) => f.endsWith('/bin/run.js'))).to.equal(true);
  });

  it('the native front (dist/native/hpcc) starts pull from the build\'s blob when it was made by this node, else bin/run.js', function () {
    const front = path.join(REPO_ROOT, 'dist', 'native', 'hpcc');
    const built = path.join(CLI_DIR, 'fast-pull.snapshot.blob');
    if (!fs.existsSync(front) || !fs.existsSync(built)) {
      if (IN_CI) throw new Error('npm run build makes dist/native/hpcc and the pull snapshot');
      this.skip();
    }
    const args = ['pull', '--insecure', path.join(work, 'front.sif'), `docker://${img!.reg.host}/lab/small:missing`];
    const viaFront = (env: NodeJS.ProcessEnv) => {
      const traceFile = fresh('strace-front');
      const r = spawnSync('strace', ['-f', '-qq', '-s', '4096', '-e', 'trace=execve', '-o', traceFile, front, ...args], {
        env: { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: work, HPCC_CACHEDIR: fresh('cache'), ...env },
        encoding: 'utf8',
        cwd: work,
      });
      const nodeExec = fs.readFileSync(traceFile, 'utf8').split('\n').find((l) => /execve\("[^"]*\/node"/.test(l) && / = 0$/.test(l)) ?? '';
      return { status: r.status, stdout: r.stdout, stderr: r.stderr, nodeExec };
    };
    const normal = run(args, { snapshot: false });
    expect(normal.status).to.equal(81);
    const snap = viaFront({});
    expect([snap.status, snap.stdout, snap.stderr]).to.deep.equal([normal.status, normal.stdout, normal.stderr]);
    expect(snap.nodeExec).to.contain(`"--snapshot-blob", "${built}"`);
    for (const env of [{ NODE_OPTIONS: '--no-deprecation' }, { HPCC_NO_SNAPSHOT: '1' }, { HPCC_NODE: '/nonexistent/node' }]) {
      const r = viaFront(env);
      if (env.HPCC_NODE) {
        expect(r.status, 'a missing HPCC_NODE').to.equal(127);
        expect(r.stderr).to.contain('HPCC_NODE');
        continue;
      }
      expect([r.status, r.stdout, r.stderr], JSON.stringify(env)).to.deep.equal([normal.status, normal.stdout, normal.stderr]);
      expect(r.nodeExec).to.contain('/bin/run.js').and.not.contain('--snapshot-blob');
    }
  });
});

describe('unit: when the snapshot serves a command (pull-snapshot.ts)', function () {
  let dir: string;
  let stamp: SnapshotStamp;
  before(function () {
    dir = makeTempDir('hpcc-pull-snapshot-unit-');
    fs.writeFileSync(path.join(dir, 'fast-pull.js'), '');
    stamp = { cliDir: dir, entryMtimeMs: fs.statSync(path.join(dir, 'fast-pull.js')).mtimeMs };
  });
  after(() => removeTree(dir));

  it('takes only --snapshot-blob as Node option, and no NODE_OPTIONS', function () {
    expect(soleBlobPath(['--snapshot-blob', '/x/b.blob'], {})).to.equal('/x/b.blob');
    expect(soleBlobPath(['--snapshot-blob=/x/b.blob'], { NODE_OPTIONS: ' ' })).to.equal('/x/b.blob');
    expect(soleBlobPath(['--snapshot-blob', '/x/b.blob'], { NODE_OPTIONS: '--max-http-header-size=1' })).to.equal(undefined);
    expect(soleBlobPath(['--liftoff-only', '--snapshot-blob', '/x/b.blob'], {})).to.equal(undefined);
    expect(soleBlobPath([], {})).to.equal(undefined);
  });

  it('serves a gzip pull fastPull parses, from the blob where it was built, of the current entry', function () {
    const blob = path.join(dir, 'fast-pull.snapshot.blob');
    expect(snapshotServes(stamp, blob, ['pull', 'docker://a/b'])).to.equal(true);
    expect(snapshotServes(stamp, blob, ['pull', '--compressor', 'gzip', 'o.sif', 'docker://a/b'])).to.equal(true);
    expect(snapshotServes(stamp, blob, ['pull', '--compressor', 'zstd', 'o.sif', 'docker://a/b'])).to.equal(false);
    expect(snapshotServes(stamp, blob, ['pull', '--help'])).to.equal(false);
    expect(snapshotServes(stamp, blob, ['pull'])).to.equal(false);
    expect(snapshotServes(stamp, blob, ['exec', 'x.sif', 'true'])).to.equal(false);
    expect(snapshotServes(stamp, undefined, ['pull', 'docker://a/b'])).to.equal(false);
    expect(snapshotServes(stamp, '/elsewhere/fast-pull.snapshot.blob', ['pull', 'docker://a/b'])).to.equal(false);
    expect(snapshotServes({ ...stamp, entryMtimeMs: stamp.entryMtimeMs - 1000 }, blob, ['pull', 'docker://a/b'])).to.equal(false);
    expect(snapshotServes({ ...stamp, cliDir: path.join(dir, 'gone') }, path.join(dir, 'gone', 'b.blob'), ['pull', 'docker://a/b'])).to.equal(false);
  });
});
