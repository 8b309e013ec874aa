/**
 * The lean launch path (bin/run.js → fast-launch → core/launch) must not load
 * oclif or the registry client: each costs 0.1–0.3 s per launch. Checked in a
 * fresh Node process, for the unbundled dist and for the build's bundle
 * (scripts/bundle-launch.mjs). A launch of a missing image runs the whole
 * module graph of core/launch.js and must end in a rendered error, not a crash.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IN_CI, REPO_ROOT } from '../../helpers/env.js';

const CLI_DIR = path.join(REPO_ROOT, 'dist', 'src', 'cli');
const PLAIN = path.join(CLI_DIR, 'fast-launch.js');
const BUNDLE = path.join(CLI_DIR, 'fast-launch.bundle.js');
const HEAVY = [/node_modules[\\/]@oclif[\\/]/, /node_modules[\\/]undici[\\/]/];

/** In a child process: import `entry`, launch a missing image, report the CommonJS modules loaded and the outcome. */
function probe(entry: string): { handled: boolean; exitCode: number; stderr: string; cjs: string[] } {
  const script = `
    import { createRequire } from 'node:module';
    const { fastLaunch } = await import(${JSON.stringify(entry)});
    const handled = await fastLaunch('exec', ['/nonexistent/hpcc-probe.sif', '/bin/true']);
    const cjs = Object.keys(createRequire(import.meta.url)('node:module')._cache);
    process.stdout.write(JSON.stringify({ handled, exitCode: process.exitCode ?? 0, cjs }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  expect(r.signal, r.stderr).to.equal(null);
  expect(r.stdout, r.stderr).to.match(/^\{/);
  const out = JSON.parse(r.stdout) as { handled: boolean; exitCode: number; cjs: string[] };
  expect(r.status).to.equal(out.exitCode);
  return { ...out, stderr: r.stderr };
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
    const r = probe(PLAIN);
    expect(r.handled).to.equal(true);
    expect(r.exitCode).to.not.equal(0);
    expect(r.stderr).to.match(/Error \(HPCC_E_[A-Z_]+\): .*hpcc-probe\.sif/);
    for (const re of HEAVY) expect(r.cjs.filter((f) => re.test(f)), String(re)).to.deep.equal([]);
  });

  it('the build bundle behaves the same (when npm run build wrote one that is current)', function () {
    // bin/run.js's rule: a bundle older than the compiled fast-launch.js (a later bare tsc) is not used.
    if (!fs.existsSync(BUNDLE) || fs.statSync(BUNDLE).mtimeMs < fs.statSync(PLAIN).mtimeMs) this.skip();
    const a = probe(BUNDLE);
    const b = probe(PLAIN);
    expect(a.handled).to.equal(true);
    expect(a.exitCode).to.equal(b.exitCode);
    expect(a.stderr).to.equal(b.stderr);
    for (const re of HEAVY) expect(a.cjs.filter((f) => re.test(f)), String(re)).to.deep.equal([]);
  });
});
