/**
 * The lean `hpcc pull` path (bin/run.js → fast-pull → pull-action): it takes
 * exactly the flags of the oclif command and hands anything else back to
 * oclif; unbundled or through the build's bundle (scripts/bundle-launch.mjs) it
 * loads neither oclif nor all of undici (only the parts oci/registry/agent.ts
 * asks for), and it fails with the same rendered error and exit code as the
 * unbundled files and as oclif itself.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parsePullArgv } from '../../../src/cli/fast-pull.js';
import Pull from '../../../src/commands/pull.js';
import { HPCC_BIN, IN_CI, REPO_ROOT, makeTempDir, removeTree } from '../../helpers/env.js';

const CLI_DIR = path.join(REPO_ROOT, 'dist', 'src', 'cli');
const PLAIN = path.join(CLI_DIR, 'fast-pull.js');
const BUNDLE = path.join(CLI_DIR, 'fast-pull.bundle.js');

// Loaded before bin/run.js: records every module resolved (ES modules and require()) and
// reports them at exit, with the CommonJS modules loaded.
const HOOK = `data:text/javascript,${encodeURIComponent(`
  const urls = [];
  process.getBuiltinModule('node:module').registerHooks({ resolve(s, c, next) { const r = next(s, c); urls.push(r.url); return r; } });
  process.on('exit', () => {
    const cjs = Object.keys(process.getBuiltinModule('node:module')._cache);
    process._rawDebug('HPCC-PROBE ' + JSON.stringify({ cjs, urls }));
  });
`)}`;

describe('cli: hpcc pull argv parsing (lean path)', () => {
  it('takes every flag of the oclif command, in both spellings, values inline or separate', () => {
    const p = parsePullArgv([
      '-F', '--arch', 'arm64', '--insecure', '--compressor=zstd', '--level=-3', '--block-size=1M',
      '--no-sif-cache', '-q', '--json', '--timings', 'o.sif', 'docker://a/b',
    ])!;
    expect(p).to.deep.equal({
      first: 'o.sif',
      second: 'docker://a/b',
      flags: { force: true, arch: 'arm64', insecure: true, compressor: 'zstd', level: -3, 'block-size': '1M', 'no-sif-cache': true, quiet: true, json: true, timings: true },
    });
    expect(parsePullArgv(['docker://a', '--platform=linux/amd64', '--force', '--quiet'])).to.deep.equal({
      first: 'docker://a',
      second: undefined,
      flags: { force: true, platform: 'linux/amd64', insecure: false, 'no-sif-cache': false, quiet: true, json: false, timings: false },
    });
    expect(parsePullArgv(['--', '-odd.sif', 'docker://a'])).to.deep.include({ first: '-odd.sif', second: 'docker://a' });
  });

  it('knows the same flag names and short forms as src/commands/pull.ts', () => {
    for (const [name, def] of Object.entries(Pull.flags)) {
      const sample = def.type === 'boolean' ? [] : [name === 'level' ? '5' : name === 'compressor' ? 'gzip' : 'x'];
      expect(parsePullArgv([`--${name}`, ...sample, 'docker://a']), `--${name}`).to.not.equal(null);
      if (def.char) expect(parsePullArgv([`-${def.char}`, 'docker://a']), `-${def.char}`).to.not.equal(null);
    }
  });

  it('hands --help, unknown, repeated or malformed flags and wrong argument counts back to oclif', () => {
    const cases = [
      ['--help', 'docker://a'], ['-h'], ['--nope', 'docker://a'], ['-Fq', 'docker://a'], ['-q', '-q', 'docker://a'],
      ['--arch', 'a', '--arch', 'b', 'docker://a'], ['--compressor', 'lzo', 'docker://a'], ['--level', 'x', 'docker://a'],
      ['--level=1.5', 'docker://a'], ['--arch', '--json', 'docker://a'], ['--arch'], ['--arch=', 'docker://a'],
      ['--json=yes', 'docker://a'], ['--no-force', 'docker://a'], [], ['a', 'b', 'c'],
    ];
    for (const argv of cases) expect(parsePullArgv(argv), argv.join(' ')).to.equal(null);
  });
});

describe('cli: the lean pull path loads no oclif', function () {
  this.timeout(90_000);
  let dir = '';
  let server: http.Server | undefined;
  let host = '';
  before(async function () {
    if (!fs.existsSync(PLAIN)) {
      if (IN_CI) throw new Error(`${PLAIN} missing: build first (npm run build)`);
      this.skip();
    }
    dir = makeTempDir('hpcc-pull-probe-');
    // A registry that knows no images: /v2/ answers, every manifest is unknown. The
    // registry client, the cache and undici's agent all run, then the pull fails.
    server = http.createServer((req, res) => {
      const known = req.url === '/v2/';
      res.writeHead(known ? 200 : 404, { 'content-type': 'application/json' });
      res.end(known ? '{}' : '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    if (server) await new Promise((resolve) => server!.close(resolve));
    if (dir) removeTree(dir);
  });

  const argv = () => ['pull', '--insecure', path.join(dir, 'out.sif'), `docker://${host}/hpcc/probe:1`];
  const env = () => ({ ...process.env, HPCC_CACHEDIR: path.join(dir, 'cache') });
  /** Run node with these arguments (asynchronously: the registry above lives in this process). */
  function node(args: string[], extraEnv: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const c = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...env(), ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      c.on('error', reject);
      c.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  }
  async function probe(noBundle: boolean): Promise<{ status: number | null; error: string; cjs: string[]; urls: string[] }> {
    const r = await node(['--import', HOOK, HPCC_BIN, ...argv()], { HPCC_NO_BUNDLE: noBundle ? '1' : '0' });
    const m = /^HPCC-PROBE (.*)$/m.exec(r.stderr);
    expect(m, r.stderr).to.not.equal(null);
    return { status: r.status, error: r.stderr.replace(/^HPCC-PROBE .*\n?/m, ''), ...JSON.parse(m![1]!) };
  }
  const expectUndiciInPart = (cjs: string[]) => {
    const undici = cjs.filter((f) => /node_modules[\\/]undici[\\/]/.test(f));
    expect(undici.some((f) => f.endsWith(path.join('lib', 'dispatcher', 'agent.js'))), 'undici Agent loaded').to.equal(true);
    expect(undici.some((f) => f.endsWith(path.join('undici', 'index.js'))), 'undici package entry not loaded').to.equal(false);
  };
  const oclifOnly = (files: string[]) => files.filter((f) => /node_modules[\\/]@oclif[\\/]/.test(f));

  it('unbundled dist: no oclif; the error is the one oclif renders for the same argv', async () => {
    const r = await probe(true);
    expect(r.status).to.be.a('number').and.not.equal(0);
    expect(r.error).to.match(/^Error \(HPCC_E_[A-Z_]+\): .*hpcc\/probe/);
    expect(r.urls).to.include(pathToFileURL(PLAIN).href).and.not.include(pathToFileURL(BUNDLE).href);
    expectUndiciInPart(r.cjs);
    expect(oclifOnly(r.cjs)).to.deep.equal([]);
    // The same argv through oclif's own dispatch (what bin/run.js does for any other command).
    const script = `const { execute } = await import('@oclif/core'); await execute({ dir: ${JSON.stringify(pathToFileURL(HPCC_BIN).href)}, args: ${JSON.stringify(argv())} });`;
    const o = await node(['--input-type=module', '-e', script]);
    expect(o.stderr).to.equal(r.error);
    expect(o.status).to.equal(r.status);
  });

  it('the build bundle (when npm run build wrote a current one) is used, loads undici only in part, behaves the same as unbundled', async function () {
    // bin/run.js's rule: a bundle older than the compiled fast-pull.js (a later bare tsc) is not used.
    if (!fs.existsSync(BUNDLE) || fs.statSync(BUNDLE).mtimeMs < fs.statSync(PLAIN).mtimeMs) this.skip();
    const a = await probe(false);
    const b = await probe(true);
    expect(a.urls, 'loaded through the bundle').to.include(pathToFileURL(BUNDLE).href).and.not.include(pathToFileURL(PLAIN).href);
    expect(a.status).to.equal(b.status);
    expect(a.error).to.equal(b.error);
    expect(oclifOnly(a.cjs)).to.deep.equal([]);
    expectUndiciInPart(a.cjs);
    expectUndiciInPart(b.cjs);
  });
});
