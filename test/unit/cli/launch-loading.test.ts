/**
 * The lean launch path (bin/run.js → fast-launch → core/launch) must not load
 * oclif or the registry client: each costs 0.1–0.3 s per launch. Checked in a
 * fresh `hpcc exec` process, through the unbundled dist and through the
 * build's bundle (scripts/bundle-launch.mjs). A launch of a missing image
 * runs the whole module graph of core/launch.js and must end in the same
 * rendered error and exit code either way.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HPCC_BIN, IN_CI, REPO_ROOT } from '../../helpers/env.js';

const CLI_DIR = path.join(REPO_ROOT, 'dist', 'src', 'cli');
const PLAIN = path.join(CLI_DIR, 'fast-launch.js');
const BUNDLE = path.join(CLI_DIR, 'fast-launch.bundle.js');
const HEAVY = [/node_modules[\\/]@oclif[\\/]/, /node_modules[\\/]undici[\\/]/];

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

function probe(noBundle: boolean): { status: number | null; error: string; cjs: string[]; urls: string[] } {
  const r = spawnSync(process.execPath, ['--import', HOOK, HPCC_BIN, 'exec', '/nonexistent/hpcc-probe.sif', '/bin/true'], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, HPCC_NO_BUNDLE: noBundle ? '1' : '0' },
  });
  const m = /^HPCC-PROBE (.*)$/m.exec(r.stderr);
  expect(m, r.stderr).to.not.equal(null);
  return { status: r.status, error: r.stderr.replace(/^HPCC-PROBE .*\n?/m, ''), ...JSON.parse(m![1]!) };
}

describe('cli: the launch path loads no heavy modules', function () {
  this.timeout(60_000);
  before(function () {
    if (!fs.existsSync(PLAIN)) {
      if (IN_CI) throw new Error(`${PLAIN} missing: build first (npm run build)`);
      this.skip();
    }
  });

  it('unbundled dist: no oclif, no undici; a missing image is a rendered error with its exit code', () => {
    const r = probe(true);
    expect(r.status).to.be.a('number').and.not.equal(0);
    expect(r.error).to.match(/^Error \(HPCC_E_[A-Z_]+\): .*hpcc-probe\.sif/);
    expect(r.urls).to.include(pathToFileURL(PLAIN).href).and.not.include(pathToFileURL(BUNDLE).href);
    for (const re of HEAVY) expect(r.cjs.filter((f) => re.test(f)), String(re)).to.deep.equal([]);
  });

  it('the build bundle (when npm run build wrote a current one) is used and behaves the same', function () {
    // bin/run.js's rule: a bundle older than the compiled fast-launch.js (a later bare tsc) is not used.
    if (!fs.existsSync(BUNDLE) || fs.statSync(BUNDLE).mtimeMs < fs.statSync(PLAIN).mtimeMs) this.skip();
    const a = probe(false);
    const b = probe(true);
    expect(a.urls, 'loaded through the bundle').to.include(pathToFileURL(BUNDLE).href).and.not.include(pathToFileURL(PLAIN).href);
    expect(a.status).to.equal(b.status);
    expect(a.error).to.equal(b.error);
    for (const re of HEAVY) expect(a.cjs.filter((f) => re.test(f)), String(re)).to.deep.equal([]);
  });
});
