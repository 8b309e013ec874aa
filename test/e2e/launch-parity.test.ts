/**
 * Every launch path runs the same launch, for every option of the launch
 * contract (src/cli/launch-options.ts, enumerated: a new option is covered, and
 * one needing a value fails here until E2E_VALUES gives it one), as the
 * unprivileged test user:
 *   oclif         HPCC_LEAN=0 node bin/run.js ACTION ...   (LaunchCommand)
 *   lean          node bin/run.js ACTION ...               (fast-launch.ts)
 *   front, new    dist/native/hpcc ACTION ...              (no memo: Node, writes one)
 *   front, memo   dist/native/hpcc ACTION ...              (the memo's plan, no Node)
 *   saved plan    dist/native/hpcc-launch --plan FILE      (--plan-out's file)
 * The plan is the same bytes (--plan-out through oclif and lean, the plan the
 * memo stores) and the payload's output and exit status are the same on every
 * path. Options a memo may not serve (--plan-out, --explain-env) give the same
 * output through oclif, lean and the front (which runs Node for them).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LAUNCH_OPTIONS, type LaunchOption } from '../../src/cli/launch-options.js';
import { HPCC_BIN, IS_ROOT, REPO_ROOT, removeTree, runUnprivileged, testUserIds } from '../helpers/env.js';
import { makeE2eImage, type E2eImage } from './launch-fixture.js';
import { alive, keepersIn } from './warm-fixture.js';

const FRONT = path.join(REPO_ROOT, 'dist/native/hpcc');
const HELPER = path.join(REPO_ROOT, 'dist/native/hpcc-launch');
/** What the payload prints: enough of the container to tell launches apart. */
const PAYLOAD = ['sh', '-c', 'echo "args: $*"; pwd; id -u; echo "X=$X Y=$Y HOME=$HOME"; ls /mnt /mnt2 2>&1; ls /tmp | head -3; exit 3', 'p0', 'a b', '-B'];

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The plan section of a launch memo (src/runtime/memo.ts: the plan runs to the end of the file). */
function memoPlan(memo: Buffer): Buffer {
  const m = /\nplan (\d+)\n/.exec(memo.toString('latin1'));
  expect(m, 'plan section').to.not.equal(null);
  const plan = memo.subarray(m!.index + m![0].length);
  expect(plan.length).to.equal(Number(m![1]));
  return plan;
}

describe('e2e: one launch contract, every path (oclif, lean, native front with and without a memo, saved plan)', function () {
  this.timeout(600_000);
  let img: E2eImage;
  let n = 0;

  before(function () {
    if (!fs.existsSync(FRONT) || !fs.existsSync(HELPER)) throw new Error('run npm run build first (dist/native/hpcc, hpcc-launch)');
    img = makeE2eImage(this, 'hpcc-e2e-parity-');
    fs.writeFileSync(path.join(img.hostDir, 'vars.env'), 'Y=from-file\n');
    if (IS_ROOT) {
      const { uid, gid } = testUserIds();
      fs.chownSync(path.join(img.hostDir, 'vars.env'), uid, gid);
    }
  });
  after(() => {
    // --sharens starts a keeper even with warm mounts off (default idle time): stop this suite's
    // (runUnprivileged passes no TMPDIR: the test user's launch directory is in /tmp)
    for (const k of keepersIn(path.join('/tmp', `hpcc-${testUserIds().uid}`, 'warm'))) {
      if (img?.tmp && k.image.startsWith(img.tmp) && alive(k.pid)) process.kill(k.pid, 'SIGTERM');
    }
    if (img?.tmp) removeTree(img.tmp);
  });

  /** A fresh directory of the test user under the image's temp dir. */
  function fresh(name: string): string {
    const dir = path.join(img.tmp, `${name}-${n++}`);
    fs.mkdirSync(dir);
    if (IS_ROOT) {
      const { uid, gid } = testUserIds();
      execFileSync('chown', [`${uid}:${gid}`, dir]);
    }
    return dir;
  }

  /** A real value for each option that takes one (the parse-level cases use samples). */
  function e2eValue(o: LaunchOption): string[] {
    const values: Record<string, () => string> = {
      bind: () => `${img.hostDir}:/mnt:ro`,
      mount: () => `type=bind,source=${img.hostDir},destination=/mnt2`,
      workdir: () => fresh('work'),
      home: () => `${img.hostDir}:/home/me`,
      pwd: () => '/opt',
      env: () => 'X=from-flag',
      'env-file': () => path.join(img.hostDir, 'vars.env'),
      'plan-out': () => path.join(fresh('planout'), 'p.plan'),
    };
    if (!o.value) return [`--${o.name}`];
    const v = values[o.name];
    if (!v) throw new Error(`--${o.name} has no e2e value: add one to e2eValue (test/e2e/launch-parity.test.ts)`);
    return [`--${o.name}`, v()];
  }

  const env = (cache: string, extra: Record<string, string> = {}) => ({ HPCC_CACHEDIR: cache, HPCC_DEBUG: '1', ...extra });
  const node = (cache: string, args: string[], oclif: boolean): Result =>
    runUnprivileged(process.execPath, [HPCC_BIN, ...args], { cwd: img.tmp, env: env(cache, oclif ? { HPCC_LEAN: '0' } : {}), timeout: 120_000 });
  const front = (cache: string, args: string[]): Result => runUnprivileged(FRONT, args, { cwd: img.tmp, env: env(cache), timeout: 120_000 });
  const used = (r: Result) => /hpcc: launch memo \S+: used/.test(r.stderr);
  const same = (r: Result) => [r.status, r.stdout];

  /**
   * ACTION OPTS IMAGE PAYLOAD through every path; `head` the words before IMAGE.
   * Returns the plan's bytes. The paths share one cache (--unsquash's extraction).
   * noMemo: why no memo is written (the front's or hpcc's HPCC_DEBUG line); the
   * front then runs Node both times, and only --plan-out gives the plan.
   */
  function everyPath(action: string, head: string[], opts: { payload?: string[]; cache?: string; noMemo?: RegExp } = {}): Buffer {
    const payload = opts.payload ?? (action === 'exec' ? PAYLOAD : ['a b', '-B']);
    const what = `${action} ${head.join(' ')}`;
    const cache = opts.cache ?? fresh('cache');
    const argv = [action, ...head, img.sif, ...payload];
    const withPlanOut = (file: string) => [action, '--plan-out', file, ...head, img.sif, ...payload];
    const planA = path.join(fresh('plan'), 'a.plan');
    const planB = path.join(fresh('plan'), 'b.plan');
    for (const [file, oclif] of [[planA, true], [planB, false]] as const) {
      const r = node(cache, withPlanOut(file), oclif);
      expect(r.status, `${what} --plan-out (${oclif ? 'oclif' : 'lean'}): ${r.stderr}`).to.equal(0);
      expect(r.stderr).to.contain(`Wrote the launch plan to ${file}`);
    }
    const plan = fs.readFileSync(planA);
    expect(fs.readFileSync(planB).equals(plan), `${what}: --plan-out oclif vs lean`).to.equal(true);

    const oclif = node(cache, argv, true);
    const lean = node(cache, argv, false);
    const memoDir = path.join(cache, 'launch');
    const memoFiles = () => (fs.existsSync(memoDir) ? fs.readdirSync(memoDir).filter((f) => f.endsWith('.memo')) : []);
    const before = memoFiles();
    const first = front(cache, argv);
    const memos = memoFiles().filter((f) => !before.includes(f));
    expect(used(first), `${what}: first front run used no memo`).to.equal(false);
    let second: Result;
    if (opts.noMemo) {
      expect(first.stderr, `${what}: why no memo`).to.match(opts.noMemo);
      expect(memos, `${what}: no memo written`).to.deep.equal([]);
      second = front(cache, argv);
      expect(used(second), `${what}: second front run used no memo`).to.equal(false);
    } else {
      expect(memos, `${what}: one memo written (${first.stderr})`).to.have.length(1);
      const memoFile = path.join(memoDir, memos[0]!);
      const memoBytes = fs.readFileSync(memoFile);
      expect(memoPlan(memoBytes).equals(plan), `${what}: the memo's plan vs --plan-out`).to.equal(true);
      second = front(cache, argv);
      expect(used(second), `${what}: second front run used the memo: ${second.stderr}`).to.equal(true);
      expect(fs.readFileSync(memoFile).equals(memoBytes), `${what}: memo unchanged`).to.equal(true);
    }
    // the saved plan runs its own command (the --plan-out command line's payload)
    const saved = runUnprivileged(HELPER, ['--plan', planA], { cwd: img.tmp, env: env(cache), timeout: 120_000 });

    const want = same(oclif);
    expect(want[0], `${what}: oclif: ${oclif.stderr}`).to.equal(action === 'run' ? 0 : 3);
    for (const [name, r] of [['lean', lean], ['front without a memo', first], ['front with the memo', second], ['saved plan', saved]] as const) {
      expect(same(r), `${what}: ${name} vs oclif (${r.stderr})`).to.deep.equal(want);
    }
    return plan;
  }

  /** Options that do not launch: compared by their output below. */
  const NO_LAUNCH = new Set(['plan-out', 'explain-env']);
  for (const o of LAUNCH_OPTIONS.filter((x) => !NO_LAUNCH.has(x.name))) {
    it(`--${o.name}${o.char ? ` (-${o.char})` : ''}: the same plan bytes and result on every path`, () => {
      // a memo may not serve it (the table), or hpcc writes none (--nv/--rocm on a host without that driver)
      const noMemo =
        o.memo !== true ? new RegExp(`launch memo: not for --${o.name} `) : (o.name === 'nv' || o.name === 'rocm') && !gpuFound(o.name) ? /hpcc: no launch memo: --\w+ found no driver/ : undefined;
      everyPath('exec', e2eValue(o), noMemo ? { noMemo } : {});
    });
  }

  it('--timings changes no plan (--plan-out with and without it: the same bytes, oclif and lean); every path prints the phases', () => {
    const cache = fresh('cache');
    const plans: Buffer[] = [];
    for (const [timed, oclif] of [[false, true], [true, true], [true, false]] as const) {
      const file = path.join(fresh('plan'), 'p.plan');
      const r = node(cache, ['exec', ...(timed ? ['--timings'] : []), '--plan-out', file, img.sif, ...PAYLOAD], oclif);
      expect(r.status, r.stderr).to.equal(0);
      expect(/^hpcc: timing plan \d+\.\d{3} ms$/m.test(r.stderr), r.stderr).to.equal(timed);
      plans.push(fs.readFileSync(file));
    }
    for (const p of plans.slice(1)) expect(p.equals(plans[0]!)).to.equal(true);
    const argv = ['exec', '--timings', img.sif, ...PAYLOAD];
    for (const r of [node(cache, argv, true), node(cache, argv, false), front(cache, argv), front(cache, argv)]) {
      expect(r.status, r.stderr).to.equal(3);
      for (const phase of ['plan', 'image-open', 'mount', 'overlay', 'exec']) expect(r.stderr).to.match(new RegExp(`^hpcc: timing ${phase} \\d+\\.\\d{3} ms$`, 'm'));
    }
  });

  it('-j -W DIR IMAGE: oclif launches IMAGE (it took DIR for the image), as every other path does', () => {
    everyPath('exec', ['-j', '-W', fresh('work')]);
  });

  it('=VALUE and short forms, repeated options, options after -j, -- before IMAGE: the same plan as the long forms', () => {
    const work = fresh('work');
    const cache = fresh('cache');
    const long = everyPath('exec', ['--bind', `${img.hostDir}:/mnt`, '--bind', `${img.hostDir}:/mnt2:ro`, '--workdir', work, '--env', 'X=1', '--env', 'Y=2', '--contain'], { cache });
    const short = everyPath('exec', ['-j', `--bind=${img.hostDir}:/mnt`, '-B', `${img.hostDir}:/mnt2:ro`, '-W', work, '--env=X=1', '--env', 'Y=2', '-c', '--'], { cache });
    const a = long.toString('latin1');
    const b = short.toString('latin1');
    expect(b).to.equal(a);
  });

  it('run, shell and test take the same paths', () => {
    everyPath('run', ['-B', `${img.hostDir}:/mnt`]);
    everyPath('test', ['--env', 'X=1']);
    everyPath('shell', ['-e'], { payload: ['-c', 'echo shell $0; exit 3'] });
  });

  for (const o of LAUNCH_OPTIONS.filter((x) => NO_LAUNCH.has(x.name))) {
    it(`--${o.name}: no memo (${String(o.memo)}); oclif, lean and the front give the same output`, () => {
      expect(o.memo).to.not.equal(true);
      const cache = fresh('cache');
      const runs: Result[] = [];
      const files: Buffer[] = [];
      for (const how of ['oclif', 'lean', 'front'] as const) {
        const head = e2eValue(o);
        const argv = ['exec', ...head, '-B', `${img.hostDir}:/mnt`, img.sif, ...PAYLOAD];
        const r = how === 'front' ? front(cache, argv) : node(cache, argv, how === 'oclif');
        expect(used(r)).to.equal(false);
        if (how === 'front') expect(r.stderr).to.contain(`launch memo: not for --${o.name} `);
        runs.push(r);
        if (o.value) files.push(fs.readFileSync(head[1]!));
      }
      expect(fs.existsSync(path.join(cache, 'launch')) ? fs.readdirSync(path.join(cache, 'launch')).filter((f) => f.endsWith('.memo')) : []).to.deep.equal([]);
      expect(runs[0]!.status, runs[0]!.stderr).to.equal(0);
      for (const r of runs.slice(1)) expect(same(r)).to.deep.equal(same(runs[0]!));
      for (const f of files.slice(1)) expect(f.equals(files[0]!)).to.equal(true);
    });
  }

  it('errors: the same code, message and exit status on every path, JSON with -j and --json', () => {
    for (const head of [['-j'], ['--json'], []]) {
      const argv = ['exec', ...head, path.join(img.tmp, 'missing.sif'), 'true'];
      const cache = fresh('cache');
      const rs = [node(cache, argv, true), node(cache, argv, false), front(cache, argv)];
      const json = head.length > 0;
      for (const r of rs) {
        expect(r.status, r.stderr).to.equal(rs[0]!.status);
        const text = json ? r.stdout : r.stderr.split('\n').filter((l) => !l.startsWith('hpcc: launch memo')).join('\n');
        expect(text).to.equal(json ? rs[0]!.stdout : rs[0]!.stderr.split('\n').filter((l) => !l.startsWith('hpcc: launch memo')).join('\n'));
        if (json) expect(JSON.parse(r.stdout)).to.deep.include({ status: 'error' });
      }
    }
  });
});

/** Whether the host has the vendor's driver (hpcc refuses --nv/--rocm without one; the GPU tests cover that). */
function gpuFound(vendor: string): boolean {
  return vendor === 'nv' ? fs.existsSync('/dev/nvidiactl') : fs.existsSync('/dev/kfd');
}
