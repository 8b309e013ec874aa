/**
 * `hpcc --version` and `hpcc version [--json]` from this checkout: the same report through
 * Node and through the native front, the revision recorded at build time
 * (dist/build-info.json, scripts/build-info.mjs), the helper's plan version equal to the one
 * hpcc writes, and what the host's PATH holds of the optional parts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { PLAN_VERSION } from '../../src/runtime/plan.js';
import { REPO_ROOT, runHpcc } from '../helpers/env.js';

/** The first executable NAME in /usr/bin, /bin, /usr/sbin, /sbin (hpcc's search with PATH=/usr/bin:/bin). */
const inSystemDirs = (name: string): string | null =>
  ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((d) => path.join(d, name)).find((p) => spawnSync('test', ['-x', p]).status === 0) ?? null;

describe('e2e: hpcc --version and hpcc version', function () {
  this.timeout(60_000);
  const build = () => JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'dist', 'build-info.json'), 'utf8')) as { version: string; revision: string };

  it('--version is `version`, through Node and through the native front', () => {
    const a = runHpcc(['--version']);
    expect(a.status, a.stderr).to.equal(0);
    const b = runHpcc(['version']);
    expect(b.stdout).to.equal(a.stdout);
    const front = spawnSync(path.join(REPO_ROOT, 'dist', 'native', 'hpcc'), ['--version'], { encoding: 'utf8' });
    expect(front.status, front.stderr).to.equal(0);
    expect(front.stdout).to.equal(a.stdout);
    const { version, revision } = build();
    expect(a.stdout.split('\n')[0]).to.equal(`hpcc ${version} (${revision})`);
    expect(revision).to.match(/^([0-9a-f]{40}(-dirty)?|unknown)$/);
  });

  it('--json: Node, helper and wire-format versions, optional parts as found on PATH', () => {
    const r = runHpcc(['version', '--json'], { env: { ...process.env, PATH: '/usr/bin:/bin' } });
    expect(r.status, r.stderr).to.equal(0);
    const v = JSON.parse(r.stdout) as {
      hpcc: string; revision: string; node: string; install: string;
      helper: { planVersion: number | null }; wireFormats: { plan: number; memoKey: string };
      optional: { squashfuse: string | null; fuseOverlayfs: string | null; libdeflate: boolean; newuidmap: string | null };
    };
    expect(v.hpcc).to.equal(build().version);
    expect(v.node).to.equal(process.version);
    expect(v.install).to.equal(REPO_ROOT);
    expect(v.wireFormats.plan).to.equal(PLAN_VERSION);
    expect(v.helper.planVersion).to.equal(PLAN_VERSION);
    expect(v.optional.squashfuse).to.equal(inSystemDirs('squashfuse_ll') ?? inSystemDirs('squashfuse'));
    expect(v.optional.fuseOverlayfs).to.equal(inSystemDirs('fuse-overlayfs'));
    expect(v.optional.newuidmap).to.equal(inSystemDirs('newuidmap'));
    expect(v.optional.libdeflate).to.equal(fs.existsSync(path.join(REPO_ROOT, 'dist', 'native', 'deflate.node')));
  });

  it('a helper that does not run is reported, not a crash', () => {
    const r = runHpcc(['version', '--json'], { env: { ...process.env, HPCC_LAUNCH_HELPER: '/nonexistent/hpcc-launch' } });
    expect(r.status, r.stderr).to.equal(0);
    const v = JSON.parse(r.stdout) as { helper: { path: string; planVersion: number | null; error?: string } };
    expect(v.helper).to.include({ path: '/nonexistent/hpcc-launch', planVersion: null });
    expect(v.helper.error).to.match(/ENOENT/);
  });
});
