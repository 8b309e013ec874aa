/**
 * --timings (src/runtime/timings.ts): every phase is present and a number,
 * on stderr (text, or one JSON line with -j) for the launch commands on every
 * launch path, and in --json (or on stderr) for build and pull. No timing is
 * asserted: only that each phase was measured and reported.
 *
 * The launch phases come from two processes: Node's (start, plan, spawn) and
 * the helper's own records (image-open, mount, overlay, exec; native/launch,
 * sent on the status fd when hpcc passes --timings). A launch memo never serves
 * a --timings launch (the launch contract says why): the front runs Node, so
 * the phases are printed even when a memo of the same command line exists.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TRANSFER_PHASES } from '../../src/cli/pull-action.js';
import { HPCC_BIN, REPO_ROOT, makeTempDir, removeTree, requireTools, runHpcc, runUnprivileged } from '../helpers/env.js';
import { startSmallImageRegistry, type SmallImageRegistry } from '../helpers/registry-fixtures.js';
import { makeE2eImage, type E2eImage } from './launch-fixture.js';

const FRONT = path.join(REPO_ROOT, 'dist/native/hpcc');
const LAUNCH_PHASES = ['start', 'plan', 'spawn', 'image-open', 'mount', 'overlay', 'exec', 'total'];

/** The `hpcc: timing PHASE MS ms` lines of stderr, by phase; each must be a number. */
function textTimings(stderr: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of stderr.matchAll(/^hpcc: timing (\S+) (\S+) ms$/gm)) {
    expect(m[2], `${m[1]} is a number`).to.match(/^\d+\.\d{3}$/);
    expect(out.has(m[1]!), `${m[1]} reported once`).to.equal(false);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

function expectPhases(got: Map<string, number> | Record<string, unknown>, phases: readonly string[], what: string): void {
  const entries = got instanceof Map ? [...got.entries()] : Object.entries(got);
  expect(entries.map(([k]) => k), what).to.deep.equal([...phases]);
  for (const [k, v] of entries) {
    expect(typeof v, `${what}: ${k}`).to.equal('number');
    expect(Number.isFinite(v) && (v as number) >= 0, `${what}: ${k} = ${String(v)}`).to.equal(true);
  }
}

describe('e2e: --timings on the launch commands (every launch path)', function () {
  this.timeout(300_000);
  let img: E2eImage;
  let cache: string;

  before(function () {
    img = makeE2eImage(this, 'hpcc-e2e-timings-');
    cache = path.join(img.tmp, 'cache');
  });
  after(() => img?.tmp && removeTree(img.tmp));

  const env = (extra: Record<string, string> = {}) => ({ HPCC_CACHEDIR: cache, HPCC_DEBUG: '1', ...extra });
  const node = (args: string[], extra: Record<string, string> = {}) =>
    runUnprivileged(process.execPath, [HPCC_BIN, ...args], { cwd: img.tmp, env: env(extra), timeout: 120_000 });
  const front = (args: string[]) => runUnprivileged(FRONT, args, { cwd: img.tmp, env: env(), timeout: 120_000 });

  for (const [name, run] of [
    ['oclif', (a: string[]) => node(a, { HPCC_LEAN: '0' })],
    ['lean parser', (a: string[]) => node(a)],
    ['native front', (a: string[]) => front(a)],
  ] as const) {
    it(`${name}: exec, run, shell and test print every phase on stderr; the payload's output is untouched`, () => {
      for (const [action, payload] of [['exec', ['echo', 'hi']], ['run', []], ['shell', ['-c', 'echo hi']], ['test', []]] as const) {
        const r = run([action, '--timings', img.sif, ...payload]);
        expect(r.status, `${action}: ${r.stderr}`).to.equal(action === 'test' ? 3 : 0); // the image's test script exits 3
        if (action === 'exec' || action === 'shell') expect(r.stdout).to.equal('hi\n');
        expectPhases(textTimings(r.stderr), LAUNCH_PHASES, `${name} ${action}`);
      }
    });
  }

  it('a memo of the same launch exists: the front still runs Node for --timings and prints the phases', () => {
    const argv = ['exec', '-B', `${img.hostDir}:/mnt`, img.sif, 'cat', '/mnt/in.txt'];
    for (let i = 0; i < 2; i++) expect(front(argv).status).to.equal(0);
    expect(front(argv).stderr, 'the memo is used without --timings').to.match(/hpcc: launch memo \S+: used/);
    const r = front(['exec', '--timings', ...argv.slice(1)]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('from the host\n');
    expect(r.stderr).to.contain('launch memo: not for --timings (');
    expect(r.stderr).to.not.match(/launch memo \S+: used/);
    expectPhases(textTimings(r.stderr), LAUNCH_PHASES, 'front, memo present');
  });

  it('-j: one JSON line {"timings": {...}} on stderr, nothing on stdout but the payload', () => {
    const r = node(['exec', '-j', '--timings', '--writable-tmpfs', img.sif, 'echo', 'hi']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('hi\n');
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('{'));
    expect(lines, r.stderr).to.have.length(1);
    expectPhases((JSON.parse(lines[0]!) as { timings: Record<string, unknown> }).timings, LAUNCH_PHASES, 'json');
  });

  it("a setup failure in the helper (--pwd missing in the image): the phases measured so far, then the error", () => {
    const r = node(['exec', '--timings', '--pwd', '/no/such/dir', img.sif, 'true']);
    expect(r.status, r.stderr).to.equal(102);
    expect(r.stderr).to.contain('HPCC_E_LAUNCH_CWD');
    expectPhases(textTimings(r.stderr), ['start', 'plan', 'spawn', 'image-open', 'mount', 'overlay', 'total'], 'chdir failure');
    expect(r.stderr.indexOf('hpcc: timing total')).to.be.lessThan(r.stderr.indexOf('HPCC_E_LAUNCH_CWD'));
  });

  it('--plan-out: start, plan and write (nothing is launched)', () => {
    const file = path.join(img.tmp, 'timed.plan');
    const r = node(['exec', '--timings', '--plan-out', file, img.sif, 'true']);
    expect(r.status, r.stderr).to.equal(0);
    expectPhases(textTimings(r.stderr), ['start', 'plan', 'write', 'total'], '--plan-out');
  });

  it('without --timings nothing is printed, and the helper is not asked for its phases', () => {
    const r = node(['exec', img.sif, 'true']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.not.contain('timing');
  });
});

describe('e2e: --timings on build and pull (resolve, fetch, convert, write)', function () {
  this.timeout(300_000);
  let work: string;
  let small: SmallImageRegistry | undefined;

  before(async function () {
    requireTools(this, 'docker-registry', 'skopeo', 'umoci');
    work = makeTempDir('hpcc-e2e-timings-xfer-');
    small = await startSmallImageRegistry('hpcc-e2e-timings-reg-', 'none');
  });
  after(async () => {
    await small?.stop();
    if (work) removeTree(work);
  });
  const env = () => ({ ...process.env, HOME: work, HPCC_CACHEDIR: path.join(work, 'cache'), HPCC_INSECURE_REGISTRIES: small!.reg.host });

  it('build DIR: text on stderr; build --json: a timings object in the result', () => {
    const tree = path.join(work, 'tree');
    fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'etc', 'hello'), 'hello\n');
    const t = runHpcc(['build', '--timings', path.join(work, 'a.sif'), tree], { env: env() });
    expect(t.status, t.stderr).to.equal(0);
    expectPhases(textTimings(t.stderr), [...TRANSFER_PHASES, 'total'], 'build text');
    const j = runHpcc(['build', '--timings', '--json', path.join(work, 'b.sif'), tree], { env: env() });
    expect(j.status, j.stderr).to.equal(0);
    expect(j.stderr).to.not.contain('hpcc: timing');
    expectPhases((JSON.parse(j.stdout) as { timings: Record<string, unknown> }).timings, [...TRANSFER_PHASES, 'total'], 'build json');
  });

  it('build OUT oci:LAYOUT and pull docker:// (fresh, then from the SIF cache), through oclif and the lean parser', () => {
    const b = runHpcc(['build', '--timings', '--json', path.join(work, 'c.sif'), `oci:${small!.layout}:small`], { env: env() });
    expect(b.status, b.stderr).to.equal(0);
    expectPhases((JSON.parse(b.stdout) as { timings: Record<string, unknown> }).timings, [...TRANSFER_PHASES, 'total'], 'build oci');
    const ref = `docker://${small!.reg.host}/lab/small:latest`;
    for (const [i, lean] of [[0, '1'], [1, '0'], [2, '1']] as const) {
      const p = runHpcc(['pull', '--timings', '--json', path.join(work, `p${i}.sif`), ref], { env: { ...env(), HPCC_LEAN: lean } });
      expect(p.status, p.stderr).to.equal(0);
      const out = JSON.parse(p.stdout) as { sifCached: boolean; timings: Record<string, number> };
      expect(out.sifCached).to.equal(i > 0);
      expectPhases(out.timings, [...TRANSFER_PHASES, 'total'], `pull ${i}`);
    }
    const q = runHpcc(['pull', '-q', '--timings', path.join(work, 'q.sif'), ref], { env: env() });
    expect(q.status, q.stderr).to.equal(0);
    expectPhases(textTimings(q.stderr), [...TRANSFER_PHASES, 'total'], 'pull text');
  });
});
