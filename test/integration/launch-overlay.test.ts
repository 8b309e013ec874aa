/**
 * The overlay op's methods in hpcc-launch, run by the unprivileged test user:
 * kernel overlayfs, fuse-overlayfs (served by the helper process) and the
 * tmpfs skeleton each make a missing bind target on squashfuse and directory
 * roots with the image read-only; --writable-tmpfs with kernel and fuse; the
 * fallback order when the kernel really refuses overlayfs (stacking depth);
 * a fuse-overlayfs that fails; no server left afterwards.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LaunchPlan, MountOp, OverlayMethod } from '../../src/runtime/plan.js';
import { parseInfoRecords, parseStatusRecords } from '../../src/runtime/spawn.js';
import { IS_ROOT, findTool, requireTools, runUnprivileged } from '../helpers/env.js';
import { HELPER, HelperBench } from './launch-fixture.js';

describe('integration: hpcc-launch overlay methods (kernel, fuse-overlayfs, skeleton)', function () {
  this.timeout(60_000);
  const b = new HelperBench();
  let work: string;
  let rootfs: string;
  let ids: { uid: number; gid: number };
  let n = 0;

  before(async function () {
    await b.setup(this, 'hpcc-launch-ovl-');
    ({ work, rootfs, ids } = b);
  });
  after(() => b.teardown());

  const plan = (over: Partial<LaunchPlan> = {}, fuse = false): LaunchPlan => b.plan(over, fuse);
  const planFile = (p: LaunchPlan): string => b.planFile(p);
  const sh = (p: LaunchPlan, script: string, input?: string) => b.sh(p, script, input);
  const ovlServers = (stage: string): string => b.ovlServers(stage);

  /** An overlay op with the given methods (fuse-overlayfs from PATH when fuse is one). */
  function overlayOp(methods: OverlayMethod[], writable = false): MountOp {
    return { op: 'overlay', dst: '/', writable, methods, ...(methods.includes('fuse') ? { fuseOverlayfs: findTool('fuse-overlayfs')! } : {}) };
  }

  /** The overlay method the helper reported (status info record on stderr). */
  function usedMethod(stderr: string): string | undefined {
    return parseInfoRecords(stderr).find((r) => r.step === 'overlay')?.message;
  }

  for (const method of ['kernel', 'fuse', 'skeleton'] as const) {
    for (const fuse of [true, false]) {
      it(`overlay method ${method} (${fuse ? 'squashfuse' : 'directory'} root): a missing bind target works, the image stays read-only`, function () {
        if (method === 'fuse') requireTools(this, 'fuse-overlayfs');
        const src = path.join(work, 'ovl-m-src');
        fs.mkdirSync(src, { recursive: true });
        fs.writeFileSync(path.join(src, 'f'), 'bound\n');
        fs.chmodSync(src, 0o755);
        const mounts: MountOp[] = [
          ...(fuse ? [] : [{ op: 'remount-ro', dst: '/' } as MountOp]),
          overlayOp([method]),
          { op: 'proc', dst: '/proc' },
          { op: 'bind', src, dst: '/does/not/exist/in/image', readonly: false },
          { op: 'bind', src: path.join(src, 'f'), dst: '/etc/new-file', readonly: true },
        ];
        const p = plan({ mounts }, fuse);
        const r = sh(p, 'exec 2>&1; cat /does/not/exist/in/image/f /etc/new-file /etc/hello; touch /x; touch /etc/y; touch /bin/z; ls /bin/busybox; echo rc=$?');
        expect(r.status, r.stderr).to.equal(0);
        expect(r.stdout).to.equal(
          'bound\nbound\nhello from the image\ntouch: /x: Read-only file system\ntouch: /etc/y: Read-only file system\ntouch: /bin/z: Read-only file system\n/bin/busybox\nrc=0\n',
        );
        expect(usedMethod(r.stderr)).to.equal(method);
        expect(fs.existsSync(path.join(rootfs, 'does'))).to.equal(false);
        expect(ovlServers(p.stage)).to.equal('');
        expect(fs.readFileSync('/proc/mounts', 'utf8')).to.not.include(p.stage);
        expect(fs.existsSync(p.stage)).to.equal(false);
      });
    }
  }

  for (const method of ['kernel', 'fuse'] as const) {
    it(`--writable-tmpfs with ${method}: writes go to a tmpfs, never to the image`, function () {
      if (method === 'fuse') requireTools(this, 'fuse-overlayfs');
      for (const fuse of [true, false]) {
        const mounts: MountOp[] = [...(fuse ? [] : [{ op: 'remount-ro', dst: '/' } as MountOp]), overlayOp([method], true), { op: 'proc', dst: '/proc' }];
        const p = plan({ mounts }, fuse);
        const r = sh(p, 'exec 2>&1; echo new > /created && cat /created; echo changed >> /etc/hello; mkdir /newdir && echo dir-ok');
        expect(r.status, r.stderr + r.stdout).to.equal(0);
        // image files belong to an owner the namespace does not map: even the writable overlay keeps them
        expect(r.stdout).to.equal("new\nsh: can't create /etc/hello: Permission denied\ndir-ok\n");
        expect(usedMethod(r.stderr)).to.equal(method);
        expect(fs.existsSync(path.join(rootfs, 'created'))).to.equal(false);
        expect(fs.readFileSync(path.join(rootfs, 'etc/hello'), 'utf8')).to.equal('hello from the image\n');
        expect(ovlServers(p.stage)).to.equal('');
      }
    });
  }

  it('kernel overlayfs refused (fs stacking depth exceeded): fuse-overlayfs serves, else the skeleton', function () {
    requireTools(this, 'fuse-overlayfs', 'unshare');
    // The root is a directory seen through two stacked kernel overlays (made in an enclosing
    // user namespace where the test user is root): a third overlay exceeds the kernel's
    // stacking depth (2) and is refused with EINVAL, as on a kernel that forbids it.
    const d = path.join(work, `stack-${n++}`);
    for (const x of ['u1', 'w1', 'o1', 'u2', 'w2', 'o2']) fs.mkdirSync(path.join(d, x), { recursive: true });
    if (IS_ROOT) spawnSync('chown', ['-R', `${ids.uid}:${ids.gid}`, d]);
    const src = path.join(work, 'ovl-m-src');
    fs.mkdirSync(src, { recursive: true });
    const run3 = (methods: OverlayMethod[]) => {
      const p = plan({
        uid: { inside: 0, outside: 0 },
        gid: { inside: 0, outside: 0 },
        rootfs: { kind: 'dir', path: path.join(d, 'o2') },
        mounts: [{ op: 'remount-ro', dst: '/' }, overlayOp(methods), { op: 'bind', src, dst: '/not/in/image', readonly: true }],
      });
      const script =
        'cd "$1" && mount -t overlay o1 -o "lowerdir=$2,upperdir=u1,workdir=w1,userxattr" o1 && ' +
        'mount -t overlay o2 -o lowerdir=o1,upperdir=u2,workdir=w2,userxattr o2 && ' +
        'exec "$3" --plan "$4" --status-fd 3 sh -c "exec 2>&1; ls -d /not/in/image; touch /x" 3>&2';
      return { p, r: runUnprivileged('unshare', ['-rm', 'sh', '-c', script, 'sh', d, rootfs, HELPER, planFile(p)], { timeout: 60_000, cwd: '/' }) };
    };
    const a = run3(['kernel']);
    expect(a.r.status).to.equal(101);
    expect(parseStatusRecords(a.r.stderr)[0]).to.include({ op: 'overlay', errno: 22 });
    const b = run3(['kernel', 'fuse', 'skeleton']);
    expect([b.r.status, b.r.stdout]).to.deep.equal([1, '/not/in/image\ntouch: /x: Read-only file system\n']);
    expect(usedMethod(b.r.stderr)).to.equal('fuse tried: kernel(Invalid argument)');
    const c = run3(['kernel', 'skeleton']);
    expect([c.r.status, c.r.stdout]).to.deep.equal([1, '/not/in/image\ntouch: /x: Read-only file system\n']);
    expect(usedMethod(c.r.stderr)).to.equal('skeleton tried: kernel(Invalid argument)');
    for (const x of [a, b, c]) expect(ovlServers(x.p.stage)).to.equal('');
  });

  it('a fuse-overlayfs that fails to serve: the next method is used, the failure is reported', function () {
    const src = path.join(work, 'ovl-m-src');
    fs.mkdirSync(src, { recursive: true });
    const ops = (helper: string): MountOp[] => [
      { op: 'overlay', dst: '/', writable: false, methods: ['fuse', 'skeleton'], fuseOverlayfs: helper },
      { op: 'bind', src, dst: '/not/in/image', readonly: true },
    ];
    const a = sh(plan({ mounts: ops(findTool('false')!) }, true), 'ls -d /not/in/image');
    expect([a.status, a.stdout]).to.deep.equal([0, '/not/in/image\n']);
    expect(usedMethod(a.stderr)).to.equal('skeleton tried: fuse(Transport endpoint is not connected)');
    const b = sh(plan({ mounts: ops('/nonexistent/fuse-overlayfs') }, true), 'ls -d /not/in/image');
    expect(b.status).to.equal(0);
    expect(usedMethod(b.stderr)).to.match(/^skeleton tried: fuse\(No such file or directory: \/nonexistent\/fuse-overlayfs cannot be executed\)$/);
    const c = sh(plan({ mounts: [{ op: 'overlay', dst: '/', writable: false, methods: ['fuse'], fuseOverlayfs: findTool('false')! }] }, true), 'true');
    expect(c.status).to.equal(101);
    expect(parseStatusRecords(c.stderr)[0]).to.include({ opIndex: 0, op: 'overlay', errno: 107 });
  });

});
