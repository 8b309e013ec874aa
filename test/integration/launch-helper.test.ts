/**
 * The C launch helper (dist/native/hpcc-launch) on a real kernel, run by the
 * unprivileged test user: identity and privileges, read-only image, binds,
 * exit statuses, signals, stdin, saved plans, the squashfuse root (and that
 * nothing is left behind), typed failures. Plans are encoded by hand with
 * the codec (the plan builder is tested elsewhere).
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodePlan } from '../../src/runtime/codec.js';
import type { LaunchPlan, MountOp, OverlayMethod } from '../../src/runtime/plan.js';
import { parseStatusRecords, startLaunch } from '../../src/runtime/spawn.js';
import { LaunchSetupError } from '../../src/errors/index.js';
import { IS_ROOT, findTool, requireRoot, requireTools, runUnprivileged, testUserIds } from '../helpers/env.js';
import { HELPER, HelperBench, writeOwnPlan } from './launch-fixture.js';

describe('integration: hpcc-launch runs plans as an unprivileged user', function () {
  this.timeout(60_000);
  const b = new HelperBench();
  let tmp: string;
  let work: string;
  let ids: { uid: number; gid: number };
  let n = 0; // names of this file's own scratch files

  before(async function () {
    await b.setup(this, 'hpcc-launch-');
    ({ tmp, work, ids } = b);
  });
  after(() => b.teardown());

  const plan = (over: Partial<LaunchPlan> = {}, fuse = false): LaunchPlan => b.plan(over, fuse);
  const planFile = (p: LaunchPlan): string => b.planFile(p);
  const run = (p: LaunchPlan, args: string[] = [], input?: string) => b.run(p, args, input);
  const sh = (p: LaunchPlan, script: string, input?: string) => b.sh(p, script, input);
  const ourFuseServers = (): string => b.fuseServers();
  const ovlServers = (stage: string): string => b.ovlServers(stage);
  /** An overlay op with the given methods (fuse-overlayfs from PATH when fuse is one). */
  const overlayOp = (methods: OverlayMethod[]): MountOp => ({ op: 'overlay', dst: '/', writable: false, methods, ...(methods.includes('fuse') ? { fuseOverlayfs: findTool('fuse-overlayfs')! } : {}) });

  it('maps the caller to themselves, with no capabilities and no_new_privs', () => {
    const r = sh(plan(), 'id -u; id -g; grep -E "^(CapEff|CapPrm|NoNewPrivs)" /proc/self/status');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.split('\n').slice(0, 2)).to.deep.equal([String(ids.uid), String(ids.gid)]);
    expect(r.stdout).to.match(/CapPrm:\s+0000000000000000/);
    expect(r.stdout).to.match(/CapEff:\s+0000000000000000/);
    expect(r.stdout).to.match(/NoNewPrivs:\s+1/);
  });

  it('the image root is read-only; read-only and read-write binds behave', () => {
    const src = path.join(work, 'bindsrc');
    fs.mkdirSync(src, { recursive: true });
    if (IS_ROOT) fs.chownSync(src, ids.uid, ids.gid);
    const mounts: MountOp[] = [
      { op: 'bind', src, dst: '/mnt', readonly: true },
      { op: 'bind', src, dst: '/data', readonly: false },
      { op: 'bind', src: path.join(work, 'missing'), dst: '/home', readonly: false, optional: true },
      { op: 'remount-ro', dst: '/' },
    ];
    const r = sh(plan({ mounts }), 'touch /x 2>&1; touch /mnt/ro 2>&1; touch /data/rw && echo rw-ok; ls /mnt');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/touch: \/x: Read-only file system/);
    expect(r.stdout).to.match(/touch: \/mnt\/ro: Read-only file system/);
    expect(r.stdout).to.match(/rw-ok\nrw\n$/);
    expect(fs.existsSync(path.join(src, 'rw'))).to.equal(true);
    expect(fs.existsSync(path.join(src, 'ro'))).to.equal(false);
  });

  it('passes exit statuses through: 0, 1, 42, 255, and 128+9 for SIGKILL', () => {
    const p = plan();
    for (const code of [0, 1, 42, 255]) expect(sh(p, `exit ${code}`).status).to.equal(code);
    expect(sh(p, 'kill -9 $$').status).to.equal(137);
  });

  it('exec failures exit 127/126 with a status record; scripts without #! run under /bin/sh', () => {
    const nf = run(plan(), ['nosuch']);
    expect(nf.status).to.equal(127);
    expect(parseStatusRecords(nf.stderr)[0]).to.include({ op: 'exec', errno: 2, exitCode: 127 });
    const denied = run(plan(), ['/bin/noexec']);
    expect(denied.status).to.equal(126);
    expect(parseStatusRecords(denied.stderr)[0]).to.include({ op: 'exec', errno: 13 });
    const script = run(plan(), ['script.sh']);
    expect([script.status, script.stdout]).to.deep.equal([0, 'from script\n']);
  });

  it('pipes stdin to the payload', () => {
    const r = run(plan(), ['cat'], 'line one\nline two\n');
    expect([r.status, r.stdout]).to.deep.equal([0, 'line one\nline two\n']);
  });

  it('forwards SIGTERM to the payload (its trap runs, its exit code comes back)', async () => {
    const f = planFile(plan());
    const script = 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.05; done';
    const args = ['--plan', f, 'sh', '-c', script];
    const u = testUserIds();
    const child = IS_ROOT
      ? spawn('setpriv', ['--reuid', String(u.uid), '--regid', String(u.gid), '--init-groups', '--', HELPER, ...args], { cwd: '/' })
      : spawn(HELPER, args, { cwd: '/' });
    let out = '';
    const done = new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    await new Promise<void>((res) => child.stdout!.on('data', (d: Buffer) => ((out += d), out.includes('ready') && res())));
    child.kill('SIGTERM');
    expect(await done).to.equal(3);
    expect(out).to.equal('ready\ngot-term\n');
  });

  it('a PID namespace: new /proc, the payload is PID 2 under a forwarding init, signals reach it', () => {
    const r = sh(plan({ pidNamespace: true }), 'echo $$; ls /proc | grep -c "^[0-9]"; kill -TERM $$');
    expect(r.status, r.stderr).to.equal(143);
    const [pid, count] = r.stdout.split('\n');
    expect(pid).to.equal('2');
    expect(Number(count)).to.be.lessThan(6);
  });

  it('runs a squashfuse root from a SIF; afterwards no squashfuse process, mount or stage dir remains', () => {
    const p = plan({ mounts: [{ op: 'proc', dst: '/proc' }] }, true);
    const r = sh(p, 'cat /etc/hello; touch /etc/x 2>&1; grep -c " / fuse" /proc/self/mounts');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^hello from the image\ntouch: \/etc\/x: Read-only file system\n1\n$/);
    expect(ourFuseServers()).to.equal('');
    expect(fs.readFileSync('/proc/mounts', 'utf8')).to.not.include(p.stage);
    expect(fs.existsSync(p.stage)).to.equal(false);
  });

  it('plain squashfuse (high-level libfuse) serves the root too', function () {
    requireTools(this, 'squashfuse');
    const p = plan({ mounts: [] }, true);
    const r = sh({ ...p, rootfs: { ...(p.rootfs as Extract<LaunchPlan['rootfs'], { kind: 'squashfuse' }>), fuseHelper: findTool('squashfuse')! } }, 'cat /etc/hello');
    expect([r.status, r.stdout]).to.deep.equal([0, 'hello from the image\n']);
    expect(fs.existsSync(p.stage)).to.equal(false);
  });

  it('overlay over the image makes missing mount points; generated files; then read-only', () => {
    const src = path.join(work, 'ovl-src');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, 'f'), 'bound\n');
    fs.chmodSync(src, 0o755);
    const mounts: MountOp[] = [
      { op: 'overlay', dst: '/', writable: false, methods: ['kernel'] },
      { op: 'proc', dst: '/proc' },
      { op: 'mkdir', dst: '/new', mode: 0o755 },
      { op: 'bind', src, dst: '/new/deep', readonly: true },
      { op: 'bind', src: path.join(src, 'f'), dst: '/etc/bound-file', readonly: true },
      { op: 'tmpfs', dst: '/scratch', mode: 0o1777, size: 1 << 20 },
      { op: 'file', dst: '/etc/passwd', mode: 0o644, content: `me:x:${ids.uid}:${ids.gid}::/:/bin/sh\n` },
    ];
    const r = sh(plan({ mounts }, true), 'cat /new/deep/f /etc/bound-file /etc/passwd; id -un; touch /scratch/t && echo tmp-ok; touch /etc/y 2>&1; exit 0');
    expect(r.status, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout).to.equal(`bound\nbound\nme:x:${ids.uid}:${ids.gid}::/:/bin/sh\nme\ntmp-ok\ntouch: /etc/y: Read-only file system\n`);
  });

  it('mount destinations resolve inside the image: an absolute symlink never reaches the host', () => {
    const hostDir = path.join(work, 'host-target');
    const f = run(plan({ mounts: [{ op: 'file', dst: '/escape/created', mode: 0o644, content: 'x\n' }] }));
    expect(f.status).to.equal(101);
    expect(parseStatusRecords(f.stderr)[0]).to.include({ opIndex: 0, op: 'file', errno: 2 });
    const b = run(plan({ mounts: [{ op: 'bind', src: work, dst: '/escape', readonly: true }] }));
    expect(b.status).to.equal(101); // the link's target does not exist inside the image
    expect(fs.readdirSync(hostDir)).to.deep.equal([]);
  });

  it('a saved plan runs without Node, also from --plan-fd, and a given command replaces argv', () => {
    const f = planFile(plan({ argv: ['echo', 'from-plan'] }));
    const a = runUnprivileged(HELPER, ['--plan', f], { timeout: 30_000, cwd: '/' });
    expect([a.status, a.stdout]).to.deep.equal([0, 'from-plan\n']);
    const b = runUnprivileged('sh', ['-c', `exec "$0" --plan-fd 5 echo via-fd 5<"$1"`, HELPER, f], { timeout: 30_000, cwd: '/' });
    expect([b.status, b.stdout]).to.deep.equal([0, 'via-fd\n']);
  });

  it('a given command replaces argv from commandIndex on and keeps the wrapper prefix before it', () => {
    const f = planFile(plan({ argv: ['sh', '-c', 'echo "[$0]" "$@"', 'wrap', 'echo', 'orig'], commandIndex: 4 }));
    const a = runUnprivileged(HELPER, ['--plan', f], { timeout: 30_000, cwd: '/' });
    expect([a.status, a.stdout]).to.deep.equal([0, '[wrap] echo orig\n']);
    const b = runUnprivileged(HELPER, ['--plan', f, '--', 'given', 'x y'], { timeout: 30_000, cwd: '/' });
    expect([b.status, b.stdout]).to.deep.equal([0, '[wrap] given x y\n']);
    const whole = planFile(plan({ argv: ['sh', '-c', 'echo "[$0]" "$@"', 'wrap', 'echo', 'orig'], commandIndex: 0 }));
    const c = runUnprivileged(HELPER, ['--plan', whole, 'echo', 'alone'], { timeout: 30_000, cwd: '/' });
    expect([c.status, c.stdout]).to.deep.equal([0, 'alone\n']);
  });

  it('bad plans are refused with exit 98 and a plan status record', () => {
    const good = Buffer.from(encodePlan(plan()));
    const latin = good.toString('latin1');
    const cases = [
      good.subarray(0, good.length - 3),
      Buffer.from(latin.replace('HPCC-PLAN 4', 'HPCC-PLAN 9'), 'latin1'),
      // a version-1 plan (no `command` field): refused, never run with a guessed command index
      Buffer.from(latin.replace('HPCC-PLAN 4', 'HPCC-PLAN 1').replace('command 1\n0\n', ''), 'latin1'),
      // a command index past argv
      Buffer.from(latin.replace('command 1\n0\n', 'command 1\n1\n'), 'latin1'),
      Buffer.from('junk'),
    ];
    for (const bytes of cases) {
      const f = path.join(tmp, `bad-${n++}`);
      writeOwnPlan(f, bytes, ids);
      const r = runUnprivileged(HELPER, ['--plan', f, '--status-fd', '2'], { timeout: 30_000 });
      expect(r.status).to.equal(98);
      expect(parseStatusRecords(r.stderr)[0]).to.include({ op: 'plan', exitCode: 98 });
    }
  });

  it('typed failures: missing image, missing cwd, missing bind source, a damaged image', () => {
    const img = plan({}, true);
    const missing = run({ ...img, rootfs: { ...(img.rootfs as { kind: 'squashfuse' } & LaunchPlan['rootfs'] & object), image: path.join(tmp, 'nope.sif') } as LaunchPlan['rootfs'] });
    expect(missing.status).to.equal(100);
    expect(parseStatusRecords(missing.stderr)[0]).to.include({ op: 'image', errno: 2 });
    expect(fs.existsSync(img.stage)).to.equal(false);
    const cwd = run(plan({ cwd: '/nonexistent' }));
    expect([cwd.status, parseStatusRecords(cwd.stderr)[0]?.op]).to.deep.equal([102, 'chdir']);
    const bind = run(plan({ mounts: [{ op: 'bind', src: path.join(work, 'absent'), dst: '/mnt', readonly: true }] }));
    expect(bind.status).to.equal(101);
    expect(parseStatusRecords(bind.stderr)[0]).to.include({ opIndex: 0, op: 'bind', errno: 2 });
    const bad = plan({}, true);
    const damaged = run({ ...bad, rootfs: { ...(bad.rootfs as Extract<LaunchPlan['rootfs'], { kind: 'squashfuse' }>), offset: 4096 } });
    expect(damaged.status).to.equal(100);
    expect(parseStatusRecords(damaged.stderr)[0]?.op).to.equal('fuse');
    expect(ourFuseServers()).to.equal('');
  });

  /** pid -> [ppid, state, comm] of every process now. */
  function procTable(): Map<number, [number, string, string]> {
    const t = new Map<number, [number, string, string]>();
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const close = st.lastIndexOf(')');
        const [state, ppid] = st.slice(close + 2).split(' ');
        t.set(Number(pid), [Number(ppid), state!, st.slice(st.indexOf('(') + 1, close)]);
      } catch {
        /* gone */
      }
    }
    return t;
  }

  /** All descendants of `root`, as "pid comm". */
  function descendants(root: number): Map<number, string> {
    const t = procTable();
    const out = new Map<number, string>();
    const todo = [root];
    while (todo.length > 0) {
      const p = todo.pop()!;
      for (const [pid, [ppid, , comm]] of t) if (ppid === p && !out.has(pid)) (out.set(pid, comm), todo.push(pid));
    }
    return out;
  }

  /** Which of `pids` still run (zombies do not count). */
  function alive(pids: Map<number, string>): string[] {
    const t = procTable();
    return [...pids].filter(([pid]) => t.has(pid) && t.get(pid)![1] !== 'Z').map(([pid, comm]) => `${pid} ${comm}`);
  }

  for (const ovl of [false, true]) it(`--die-with-parent: SIGKILL of the parent ends payload, helper and squashfuse${ovl ? ' and fuse-overlayfs' : ''}, and cleans up`, async function () {
    if (ovl) requireTools(this, 'fuse-overlayfs');
    const p = plan({ mounts: ovl ? [overlayOp(['fuse'])] : [], argv: ['sh', '-c', 'echo ready; exec sleep 30'] }, true);
    const f = planFile(p);
    const script = `"$0" --die-with-parent --plan "$1" & wait`;
    const child = IS_ROOT
      ? spawn('setpriv', ['--reuid', String(ids.uid), '--regid', String(ids.gid), '--init-groups', '--', 'sh', '-c', script, HELPER, f], { cwd: '/' })
      : spawn('sh', ['-c', script, HELPER, f], { cwd: '/' });
    await new Promise<void>((res) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && res()));
    let tree = descendants(child.pid!);
    for (let i = 0; i < 100 && ![...tree.values()].includes('sleep'); i++) {
      await new Promise((r) => setTimeout(r, 20)); // `exec sleep` follows the echo
      tree = descendants(child.pid!);
    }
    expect([...tree.values()].sort()).to.include.members(['hpcc-launch', 'sleep', 'squashfuse_ll', ...(ovl ? ['fuse-overlayfs'] : [])]);
    expect(ourFuseServers()).to.match(/squashfuse_ll -f -o offset=\d+ /); // the check below can see one
    if (ovl) expect(ovlServers(p.stage)).to.match(/fuse-overlayfs -f -o lowerdir=/);
    child.kill('SIGKILL');
    let left: string[] = [];
    for (let i = 0; i < 100; i++) {
      left = alive(tree);
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(left).to.deep.equal([]);
    expect(ourFuseServers()).to.equal('');
    expect(ovlServers(p.stage)).to.equal('');
    expect(fs.existsSync(p.stage)).to.equal(false);
  });

  it('refuses to run setuid', function () {
    requireRoot(this);
    const copy = path.join(tmp, 'suid-launch');
    fs.copyFileSync(HELPER, copy);
    fs.chmodSync(copy, 0o4755);
    const r = runUnprivileged(copy, ['--plan', planFile(plan())], { timeout: 30_000 });
    expect(r.status).to.equal(97);
    expect(r.stderr).to.match(/refusing to run setuid/);
  });

  it('spawn.ts: plan over a pipe, payload status back, setup failures as LaunchSetupError', async () => {
    // runs as the current user (root in CI: uid 0 mapped to itself)
    const self = { uid: process.getuid!(), gid: process.getgid!() };
    const base = plan({ uid: { inside: self.uid, outside: self.uid }, gid: { inside: self.gid, outside: self.gid } });
    base.stage = path.join(tmp, `self-stage-${n++}`);
    const ok = startLaunch({ ...base, argv: ['sh', '-c', 'exit 42'] }, { stdio: ['ignore', 'pipe', 'pipe'] });
    expect(await ok.result).to.equal(42);
    let err: unknown;
    try {
      await startLaunch({ ...base, argv: ['nosuch'] }, { stdio: ['ignore', 'pipe', 'pipe'] }).result;
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(LaunchSetupError);
    expect((err as LaunchSetupError).code).to.equal('HPCC_E_LAUNCH_EXEC_NOT_FOUND');
    expect((err as LaunchSetupError).exitCode).to.equal(127);
    expect(spawnSync('true').status).to.equal(0);
  });
});
