/**
 * `hpcc pull`, `hpcc registry login|logout`, `hpcc cache list|clean` and
 * `hpcc build OUT docker://…` as subprocesses against Debian's docker-registry
 * on 127.0.0.1: trees compared with `umoci unpack`, 16 concurrent pulls,
 * SIGKILL mid-download, HTTP failures, credentials.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SifReader } from '../../src/formats/sif/index.js';
import { HPCC_BIN, makeTempDir, removeTree, requireTools, runHpcc } from '../helpers/env.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { addMultiPlatformIndex, layoutManifest, makeBusyboxTree, makeSmallTrees, startSmallImageRegistry, umociImage, type SmallImageRegistry } from '../helpers/registry-fixtures.js';
import { TEST_PASSWORD, TEST_USER_NAME, skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { compareTrees } from '../helpers/tree-compare.js';

const TOOLS = ['docker-registry', 'skopeo', 'umoci', 'htpasswd', 'openssl', 'unsquashfs'];
const GENERATED = ['.singularity.d', 'singularity', 'environment'];
const sha = (p: string) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function extractSif(sif: string, dir: string): Promise<string> {
  const r = await SifReader.open(sif);
  let off: number;
  try {
    off = r.primaryPartition().offset;
  } finally {
    await r.close();
  }
  sh('unsquashfs', ['-q', '-n', '-o', String(off), '-d', dir, sif]);
  return dir;
}

/** hpcc as an async child (the fault proxy lives in this process). */
function hpccAsync(args: string[], env: NodeJS.ProcessEnv, cwd?: string): { child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; stderr: string; stdout: string }> } {
  const child = spawn(process.execPath, [HPCC_BIN, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const done = new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr, stdout })));
  return { child, done };
}

describe('e2e: hpcc pull from a registry', function () {
  this.timeout(120_000);
  let work: string;
  let layout: string;
  let reg: TestRegistry | undefined;
  let env: NodeJS.ProcessEnv;
  let n = 0;
  const fresh = (name: string) => path.join(work, `${name}-${++n}`);

  before(async function () {
    requireTools(this, ...TOOLS);
    work = makeTempDir('hpcc-pull-e2e-');
    layout = path.join(work, 'layout');
    umociImage(layout, 'small', makeSmallTrees(work, 4 << 20));
    umociImage(layout, 'busybox', [makeBusyboxTree(work)]);
    addMultiPlatformIndex(layout, 'multi', 'busybox', 'small');
    reg = await startRegistry('none');
    await skopeoPush(reg, `oci:${layout}:small`, 'lab/small:latest');
    await skopeoPush(reg, `oci:${layout}:small`, 'lab/small:v2s2', ['--format', 'v2s2']);
    await skopeoPush(reg, `oci:${layout}:small`, 'lab/small:zstd', ['--dest-compress-format', 'zstd']);
    await skopeoPush(reg, `oci:${layout}:busybox`, 'lab/busybox:latest');
    await skopeoPush(reg, `oci:${layout}:multi`, 'lab/multi:latest', ['--all']);
    env = {
      PATH: process.env.PATH,
      HOME: path.join(work, 'home'),
      HPCC_CACHEDIR: path.join(work, 'cache'),
      HPCC_INSECURE_REGISTRIES: reg.host,
      HPCC_RETRY_BASE_MS: '10',
    };
  });
  after(async () => {
    await reg?.stop();
    if (work) removeTree(work);
  });

  async function expectSameAsUmoci(sif: string, tag: string): Promise<void> {
    const bundle = fresh(`umoci-${tag}`);
    sh('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
    const ours = await extractSif(sif, fresh('ex'));
    const diffs = await compareTrees(ours, path.join(bundle, 'rootfs'), { owners: true, mtimes: true, xattrs: true, nlink: false, ignore: GENERATED });
    expect(diffs, diffs.join('\n')).to.deep.equal([]);
  }

  for (const [refTag, layoutTag, extra] of [
    ['lab/small:latest', 'small', []],
    ['lab/small:v2s2', 'small', []],
    ['lab/small:zstd', 'small', []],
    ['lab/busybox:latest', 'busybox', []],
    ['lab/multi:latest', 'busybox', ['--platform', 'linux/amd64']],
  ] as Array<[string, string, string[]]>) {
    it(`${refTag} ${extra.join(' ')}: the SIF's tree equals umoci unpack's`, async () => {
      const out = path.join(fresh('out'), 'x.sif');
      fs.mkdirSync(path.dirname(out));
      const r = runHpcc(['pull', '--quiet', ...extra, out, `docker://${reg!.host}/${refTag}`], { env });
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).to.equal('');
      await expectSameAsUmoci(out, layoutTag);
    });
  }

  it('default output name <name>_<tag>.sif, progress lines, refuses to overwrite without --force, reuses the cached SIF', () => {
    const dir = fresh('cwd');
    fs.mkdirSync(dir);
    const cacheEnv = { ...env, HPCC_CACHEDIR: fresh('cache') };
    const a = runHpcc(['pull', `docker://${reg!.host}/lab/small`], { env: cacheEnv, cwd: dir });
    expect(a.status, a.stderr).to.equal(0);
    expect(fs.existsSync(path.join(dir, 'small_latest.sif'))).to.equal(true);
    expect(a.stderr).to.match(/Pulling 127\.0\.0\.1:\d+\/lab\/small:latest \(linux\/amd64, 2 layers/);
    expect(a.stderr).to.match(/Layer 2\/2 [0-9a-f]{12}: 4\.0 MiB in [\d.]+ s \([\d.]+ [KMG]?i?B\/s\)/);
    const b = runHpcc(['pull', `docker://${reg!.host}/lab/small`], { env: cacheEnv, cwd: dir });
    expect(b.status).to.equal(2);
    expect(b.stderr).to.contain('HPCC_E_USAGE').and.to.contain('--force');
    const c = runHpcc(['pull', '--force', '--json', `docker://${reg!.host}/lab/small`], { env: cacheEnv, cwd: dir });
    expect(c.status, c.stderr).to.equal(0);
    const j = JSON.parse(c.stdout) as { sifCached: boolean; manifestDigest: string };
    expect(j.sifCached).to.equal(true);
    expect(j.manifestDigest).to.equal(`sha256:${fs.readdirSync(path.join(cacheEnv.HPCC_CACHEDIR!, 'sif', 'sha256'))[0]!.slice(0, 64)}`);
  });

  it('progress: a live per-layer block on a TTY (script(1)), plain lines otherwise, nothing but errors with --quiet', function () {
    requireTools(this, 'script');
    const ref = `docker://${reg!.host}/lab/small`;
    const dir = fresh('progress');
    fs.mkdirSync(dir);
    // Under a pseudo-terminal: stderr is a TTY.
    const ttyEnv = { ...env, HPCC_CACHEDIR: fresh('cache-tty'), COLUMNS: '100' };
    const cmd = [process.execPath, HPCC_BIN, 'pull', path.join(dir, 'tty.sif'), ref].map((a) => `'${a}'`).join(' ');
    const t = spawnSync('script', ['-qec', cmd, '/dev/null'], { env: ttyEnv, encoding: 'utf8', timeout: 60_000 });
    expect(t.status, t.stdout + t.stderr).to.equal(0);
    const tty = t.stdout;
    expect(tty).to.contain('\r\x1b[K'); // the live block is erased and redrawn in place
    expect(tty).to.match(/ {2}Layer [12]\/2 [0-9a-f]{12}: [\d.]+ (B|KiB|MiB) \/ [\d.]+ (KiB|MiB) {2}[\d.]+ (B|KiB|MiB|GiB)\/s {2}ETA (\d+s|--)/);
    expect(tty).to.match(/ {2}Total: [\d.]+ (B|KiB|MiB) \/ [\d.]+ MiB {2}[\d.]+ (B|KiB|MiB|GiB)\/s {2}ETA/);
    expect(tty).to.match(/Layer 2\/2 [0-9a-f]{12}: 4\.0 MiB in [\d.]+ s/);
    expect(tty).to.match(/Wrote \S*tty\.sif/);
    // nothing live is left behind: the summary is the last thing written, on a line of its own
    expect(tty.trimEnd().split('\n').pop()).to.match(/^Wrote \S*tty\.sif .*\)\r?$/);
    // Not a TTY: plain lines, no carriage returns or escape sequences.
    const plain = runHpcc(['pull', path.join(dir, 'plain.sif'), ref], { env: { ...env, HPCC_CACHEDIR: fresh('cache-plain') } });
    expect(plain.status, plain.stderr).to.equal(0);
    expect(plain.stderr).to.not.match(/[\r\x1b]/);
    expect(plain.stderr).to.not.contain('Total:');
    const lines = plain.stderr.trimEnd().split('\n');
    expect(lines[0]).to.match(/^Pulling /);
    expect(lines.filter((l) => /^Layer [12]\/2 [0-9a-f]{12}: /.test(l))).to.have.length(2);
    expect(lines.pop()).to.match(/^Wrote \S*plain\.sif/);
    // --quiet: nothing on stdout or stderr, also on a TTY; errors still shown.
    const quietCmd = [process.execPath, HPCC_BIN, 'pull', '--quiet', path.join(dir, 'quiet.sif'), ref].map((a) => `'${a}'`).join(' ');
    const q = spawnSync('script', ['-qec', quietCmd, '/dev/null'], { env: { ...env, HPCC_CACHEDIR: fresh('cache-quiet') }, encoding: 'utf8', timeout: 60_000 });
    expect(q.status, q.stdout).to.equal(0);
    expect(q.stdout).to.equal('');
    expect(fs.existsSync(path.join(dir, 'quiet.sif'))).to.equal(true);
    const qp = runHpcc(['pull', '--quiet', '--force', path.join(dir, 'quiet.sif'), ref], { env: { ...env, HPCC_CACHEDIR: fresh('cache-quiet') } });
    expect(qp.status, qp.stderr).to.equal(0);
    expect(qp.stdout + qp.stderr).to.equal('');
    const qe = runHpcc(['pull', '--quiet', path.join(dir, 'quiet.sif'), ref], { env });
    expect(qe.status).to.equal(2);
    expect(qe.stdout).to.equal('');
    expect(qe.stderr).to.contain('HPCC_E_USAGE');
  });

  it('--no-sif-cache keeps layers but no SIF; local references (oci:DIR:tag) convert straight to the default name', async () => {
    const e = { ...env, HPCC_CACHEDIR: fresh('cache-nosif') };
    const out = path.join(fresh('nosif'), 'n.sif');
    fs.mkdirSync(path.dirname(out));
    const r = runHpcc(['pull', '--quiet', '--no-sif-cache', out, `docker://${reg!.host}/lab/small`], { env: e });
    expect(r.status, r.stderr).to.equal(0);
    expect(fs.readdirSync(path.join(e.HPCC_CACHEDIR!, 'blobs', 'sha256'))).to.have.length(2);
    expect(fs.readdirSync(path.join(e.HPCC_CACHEDIR!, 'sif', 'sha256'))).to.deep.equal([]);
    await expectSameAsUmoci(out, 'small');
    const cwd = fresh('local');
    fs.mkdirSync(cwd);
    const l = runHpcc(['pull', '--quiet', `oci:${layout}:small`], { env: e, cwd });
    expect(l.status, l.stderr).to.equal(0);
    await expectSameAsUmoci(path.join(cwd, 'layout_small.sif'), 'small');
  });

  it('16 concurrent pulls (separate processes) of one image: all succeed, one copy of each blob, no temp files', async () => {
    const cache = fresh('cache16');
    const outDir = fresh('out16');
    fs.mkdirSync(outDir);
    const e = { ...env, HPCC_CACHEDIR: cache };
    const runs = Array.from({ length: 16 }, (_, i) => hpccAsync(['pull', '--quiet', path.join(outDir, `p${i}.sif`), `docker://${reg!.host}/lab/busybox`], e));
    const results = await Promise.all(runs.map((r) => r.done));
    results.forEach((r, i) => expect(r.code, `pull ${i}: ${r.stderr}`).to.equal(0));
    const m = layoutManifest(layout, 'busybox');
    const want = [...m.layers.map((l) => l.digest.slice(7))].sort();
    const blobs = fs.readdirSync(path.join(cache, 'blobs', 'sha256')).sort();
    expect(blobs).to.deep.equal(want);
    expect(fs.readdirSync(path.join(cache, 'sif', 'sha256'))).to.have.length(1);
    expect(fs.readdirSync(path.join(cache, 'locks'))).to.deep.equal([]);
    const first = sha(path.join(outDir, 'p0.sif'));
    for (let i = 1; i < 16; i++) expect(sha(path.join(outDir, `p${i}.sif`))).to.equal(first);
    expect(fs.readdirSync(outDir).filter((f) => !f.endsWith('.sif'))).to.deep.equal([]);
  });

  it('exec docker://REF converts once into the cache, then reuses the cached SIF', function () {
    requireTools(this, 'squashfuse_ll');
    const ref = `docker://${reg!.host}/lab/busybox:latest`;
    const cmd = ['exec', ref, 'sh', '-c', 'echo answer=$((6*7)); exit 3'];
    // A cache of its own: earlier tests may already have converted this image.
    const execEnv = { ...env, HPCC_CACHEDIR: fresh('cache-exec') };
    const first = runHpcc(cmd, { env: execEnv, cwd: work });
    expect(first.status, first.stderr).to.equal(3);
    expect(first.stdout).to.equal('answer=42\n');
    expect(first.stderr).to.contain('Converted');
    const again = runHpcc(cmd, { env: execEnv, cwd: work });
    expect(again.status, again.stderr).to.equal(3);
    expect(again.stdout).to.equal('answer=42\n');
    expect(again.stderr).to.not.contain('Converted');
  });

  describe('through a fault proxy', () => {
    let proxy: FaultProxy;
    beforeEach(async () => {
      proxy = await startFaultProxy(reg!.host);
    });
    afterEach(async () => {
      await proxy?.stop();
    });

    it('exec of a converted reference asks the registry nothing (pull policy "missing"), even when it is down; HPCC_PULL_POLICY=always asks it', async function () {
      requireTools(this, 'squashfuse_ll');
      const e = { ...env, HPCC_CACHEDIR: fresh('cache-policy'), HPCC_INSECURE_REGISTRIES: proxy.host };
      const cmd = ['exec', `docker://${proxy.host}/lab/busybox:latest`, 'sh', '-c', 'echo ran'];
      // async: the proxy runs in this process
      const run = async (extra: NodeJS.ProcessEnv = {}) => hpccAsync(cmd, { ...e, ...extra }, work).done;
      const first = await run();
      expect([first.code, first.stdout], first.stderr).to.deep.equal([0, 'ran\n']);
      const asked = proxy.log.length;
      expect(proxy.log.filter((r) => r.path.includes('/manifests/')).length).to.be.greaterThan(0);
      const again = await run();
      expect([again.code, again.stdout], again.stderr).to.deep.equal([0, 'ran\n']);
      expect(proxy.log.length).to.equal(asked);
      proxy.status = 500; // the registry is down
      const down = await run();
      expect([down.code, down.stdout], down.stderr).to.deep.equal([0, 'ran\n']);
      expect(proxy.log.length).to.equal(asked);
      const always = await run({ HPCC_PULL_POLICY: 'always', HPCC_RETRY_BASE_MS: '10' });
      expect(always.code).to.not.equal(0);
      expect(always.stderr).to.contain('HTTP 500');
      expect(proxy.log.length).to.be.greaterThan(asked);
      const bad = await run({ HPCC_PULL_POLICY: 'sometimes' });
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.contain('HPCC_PULL_POLICY=sometimes');
    });

    it('SIGKILL during a download, then pull again: succeeds, stale lock and temp file cleaned up', async () => {
      const cache = fresh('cache-kill');
      proxy.cutBlobAfter = 1 << 20;
      proxy.stall = true;
      const e = { ...env, HPCC_CACHEDIR: cache, HPCC_INSECURE_REGISTRIES: proxy.host };
      const out1 = path.join(fresh('kill'), 'a.sif');
      fs.mkdirSync(path.dirname(out1));
      const run1 = hpccAsync(['pull', '--quiet', out1, `docker://${proxy.host}/lab/small`], e);
      const deadline = Date.now() + 20_000;
      const blobDir = path.join(cache, 'blobs', 'sha256');
      // wait until the big blob is stalled mid-download with its temp file on disk
      while (!(proxy.log.some((r) => r.cut) && fs.existsSync(blobDir) && fs.readdirSync(blobDir).some((f) => f.startsWith('.tmp-') && fs.statSync(path.join(blobDir, f)).size > 0))) {
        if (Date.now() > deadline) throw new Error(`no stalled download: ${JSON.stringify(proxy.log)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(fs.readdirSync(path.join(cache, 'locks')).length).to.be.greaterThan(0);
      run1.child.kill('SIGKILL');
      await run1.done;
      expect(fs.existsSync(out1)).to.equal(false);
      const t0 = Date.now();
      const r2 = runHpcc(['pull', '--quiet', out1, `docker://${reg!.host}/lab/small`], { env: { ...e, HPCC_INSECURE_REGISTRIES: reg!.host } });
      expect(r2.status, r2.stderr).to.equal(0);
      expect(Date.now() - t0).to.be.lessThan(30_000);
      expect(fs.readdirSync(blobDir).filter((f) => f.startsWith('.'))).to.deep.equal([]);
      expect(fs.readdirSync(path.join(cache, 'locks'))).to.deep.equal([]);
      await expectSameAsUmoci(out1, 'small');
    });

    it('a registry answering 500: clear message, exit 81, nothing written', () => {
      proxy.status = 500;
      const out = path.join(work, 'never.sif');
      return hpccAsync(['pull', out, `docker://${proxy.host}/lab/small`], { ...env, HPCC_INSECURE_REGISTRIES: proxy.host }).done.then((r) => {
        expect(r.code).to.equal(81);
        expect(r.stderr).to.match(/Error \(HPCC_E_REGISTRY_SERVER\): manifest lab\/small:latest: 127\.0\.0\.1:\d+ failed with HTTP 500/);
        expect(r.stderr).to.contain('Try this:');
        expect(fs.existsSync(out)).to.equal(false);
      });
    });
  });

  it('404: clear message and exit 81', () => {
    const r = runHpcc(['pull', path.join(work, 'nope.sif'), `docker://${reg!.host}/lab/nope:1.0`], { env });
    expect(r.status).to.equal(81);
    expect(r.stderr).to.match(/HPCC_E_REGISTRY_NOT_FOUND.*not found on 127\.0\.0\.1:\d+ \(HTTP 404\)/);
  });

  it('without --insecure or config, a plain-HTTP registry fails with a TLS hint; [registries] insecure in hpcc.conf allows it', () => {
    const e = { ...env, HPCC_INSECURE_REGISTRIES: '' };
    const r = runHpcc(['pull', path.join(work, 'tls.sif'), `docker://${reg!.host}/lab/small`], { env: e });
    expect(r.status).to.equal(81);
    expect(r.stderr).to.contain('HPCC_E_REGISTRY_NETWORK').and.to.contain('--insecure');
    const conf = path.join(work, 'hpcc.conf');
    fs.writeFileSync(conf, `[registries]\ninsecure = example.org:5000, ${reg!.host}\n`);
    const ok = runHpcc(['pull', '--quiet', path.join(work, 'conf.sif'), `docker://${reg!.host}/lab/small`], { env: { ...e, HPCC_CONFIG: conf } });
    expect(ok.status, ok.stderr).to.equal(0);
  });

  it('hpcc build OUT.sif docker://REF converts through resolveSource', async () => {
    const out = path.join(fresh('build'), 'b.sif');
    fs.mkdirSync(path.dirname(out));
    const r = runHpcc(['build', '--quiet', out, `docker://${reg!.host}/lab/small:v2s2`], { env });
    expect(r.status, r.stderr).to.equal(0);
    await expectSameAsUmoci(out, 'small');
  });

  it('cache list and clean (--type, --days, --dry-run, --json)', () => {
    const e = { ...env, HPCC_CACHEDIR: fresh('cache-lc') };
    expect(runHpcc(['pull', '--quiet', path.join(work, 'lc.sif'), `docker://${reg!.host}/lab/small`], { env: e }).status).to.equal(0);
    const list = JSON.parse(runHpcc(['cache', 'list', '--json'], { env: e }).stdout) as { entries: Array<{ type: string; name: string }> };
    expect(list.entries.filter((x) => x.type === 'blob')).to.have.length(2);
    expect(list.entries.filter((x) => x.type === 'sif')).to.have.length(1);
    const dry = JSON.parse(runHpcc(['cache', 'clean', '--days', '1', '--dry-run', '--json'], { env: e }).stdout) as { removed: unknown[] };
    expect(dry.removed).to.deep.equal([]);
    const drySif = JSON.parse(runHpcc(['cache', 'clean', '--type', 'sif', '--dry-run', '--json'], { env: e }).stdout) as { removed: Array<{ type: string }> };
    expect(drySif.removed.map((x) => x.type)).to.deep.equal(['sif']);
    expect(fs.readdirSync(path.join(e.HPCC_CACHEDIR!, 'sif', 'sha256'))).to.have.length(1);
    const cl = runHpcc(['cache', 'clean', '--type', 'blob'], { env: e });
    expect(cl.status, cl.stderr).to.equal(0);
    expect(cl.stdout).to.match(/Removed 2 entries/);
    const after = JSON.parse(runHpcc(['cache', 'list', '--json'], { env: e }).stdout) as { entries: Array<{ type: string }> };
    expect(after.entries.map((x) => x.type)).to.deep.equal(['sif']);
  });
});

describe('e2e: hpcc registry login/logout with an htpasswd registry', function () {
  this.timeout(60_000);
  let small: SmallImageRegistry | undefined;
  let work: string;
  let reg: TestRegistry | undefined;
  let env: NodeJS.ProcessEnv;
  before(async function () {
    requireTools(this, ...TOOLS);
    small = await startSmallImageRegistry('hpcc-login-e2e-', 'basic', { bigBytes: 64 * 1024 });
    ({ work, reg } = small);
    env = { PATH: process.env.PATH, HOME: path.join(work, 'home'), XDG_CONFIG_HOME: path.join(work, 'xdg'), HPCC_CACHEDIR: path.join(work, 'cache'), HPCC_INSECURE_REGISTRIES: small.reg.host };
  });
  after(async () => {
    await small?.stop();
  });

  it('401 before login; wrong password refused; login stores 0600 credentials; pull works; logout removes them', () => {
    const pull = () => runHpcc(['pull', '--quiet', '--force', path.join(work, 'p.sif'), `docker://${reg!.host}/lab/small`], { env });
    const a = pull();
    expect(a.status).to.equal(81);
    expect(a.stderr).to.contain('HPCC_E_REGISTRY_UNAUTHORIZED').and.to.contain(`hpcc registry login ${reg!.host}`);
    const bad = runHpcc(['registry', 'login', reg!.host, '-u', TEST_USER_NAME, '--password-stdin'], { env, input: 'wrong\n' });
    expect(bad.status).to.equal(81);
    const authFile = path.join(work, 'xdg', 'hpcc', 'auth.json');
    expect(fs.existsSync(authFile)).to.equal(false);
    const ok = runHpcc(['registry', 'login', reg!.host, '-u', TEST_USER_NAME, '--password-stdin'], { env, input: `${TEST_PASSWORD}\n` });
    expect(ok.status, ok.stderr).to.equal(0);
    expect(fs.statSync(authFile).mode & 0o777).to.equal(0o600);
    expect(pull().status).to.equal(0);
    const out = runHpcc(['registry', 'logout', reg!.host], { env });
    expect(out.status).to.equal(0);
    expect(out.stderr).to.contain('Removed credentials');
    expect(pull().status).to.equal(81);
  });

  it('credentials from ~/.docker/config.json', () => {
    const home = path.join(work, 'dockerhome');
    fs.mkdirSync(path.join(home, '.docker'), { recursive: true });
    fs.writeFileSync(path.join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [reg!.host]: { auth: Buffer.from(`${TEST_USER_NAME}:${TEST_PASSWORD}`).toString('base64') } } }));
    const r = runHpcc(['pull', '--quiet', path.join(work, 'd.sif'), `docker://${reg!.host}/lab/small`], { env: { ...env, HOME: home, XDG_CONFIG_HOME: path.join(home, 'xdg') } });
    expect(r.status, r.stderr).to.equal(0);
  });
});

describe('e2e: hpcc pull over HTTPS (registry certificate from a test CA)', function () {
  this.timeout(60_000);
  let small: SmallImageRegistry | undefined;
  let work: string;
  let reg: TestRegistry | undefined;
  before(async function () {
    requireTools(this, ...TOOLS);
    small = await startSmallImageRegistry('hpcc-tls-e2e-', 'none', { tls: true, bigBytes: 64 * 1024 });
    ({ work, reg } = small);
  });
  after(async () => {
    await small?.stop();
  });

  it('an unknown CA is refused with a TLS hint; trusting it (SSL_CERT_FILE) lets the pull through', () => {
    const env = { PATH: process.env.PATH, HOME: path.join(work, 'home'), HPCC_CACHEDIR: path.join(work, 'cache') };
    const bad = runHpcc(['pull', path.join(work, 'a.sif'), `docker://${reg!.host}/lab/small`], { env });
    expect(bad.status).to.equal(81);
    expect(bad.stderr).to.contain('HPCC_E_REGISTRY_NETWORK').and.to.match(/certificate/i);
    const ok = runHpcc(['pull', '--quiet', path.join(work, 'a.sif'), `docker://${reg!.host}/lab/small`], { env: { ...env, SSL_CERT_FILE: reg!.caFile } });
    expect(ok.status, ok.stderr).to.equal(0);
  });
});
