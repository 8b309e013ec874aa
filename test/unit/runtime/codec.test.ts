/**
 * The launch plan wire format (src/runtime/codec.ts): golden bytes, round
 * trips of every op kind, and strict rejection of malformed input (each
 * truncation, bad header, bad numbers, paths, trailing data). The C parser
 * reads the same format; test/integration/launch-helper.test.ts feeds it
 * the encoder's output and broken plans.
 */
import { expect } from 'chai';
import { LaunchPlanError } from '../../../src/errors/index.js';
import { PLAN_LIMITS, decodePlan, encodePlan } from '../../../src/runtime/codec.js';
import type { LaunchPlan } from '../../../src/runtime/plan.js';
import { parseInfoRecords, parseStatusRecords, setupErrorFromStatus } from '../../../src/runtime/spawn.js';

const small: LaunchPlan = {
  version: 4,
  uid: { inside: 1001, outside: 1001 },
  gid: { inside: 100, outside: 100 },
  pidNamespace: false,
  rootfs: { kind: 'dir', path: '/r' },
  stage: '/s',
  mounts: [{ op: 'proc', dst: '/proc' }],
  cwd: '/',
  env: ['PATH=/bin'],
  argv: ['true'],
  commandIndex: 0,
};

const full: LaunchPlan = {
  version: 4,
  uid: { inside: 0, outside: 4294967294 },
  gid: { inside: 7, outside: 0 },
  pidNamespace: true,
  rootfs: { kind: 'squashfuse', image: '/images/a b.sif', offset: 2 ** 40, fuseHelper: '/usr/bin/squashfuse_ll',
    mountpoint: '/tmp/s/image',
    warm: { dir: '/tmp/hpcc-1001/warm', key: '0123456789abcdef0123456789abcdef', idleSeconds: 300, identity: '2049:12:4096:1700000000123456789:1700000000123456789:4096' },
  },
  stage: '/tmp/s',
  mounts: [
    { op: 'overlay', dst: '/', writable: true, methods: ['kernel', 'fuse'], fuseOverlayfs: '/usr/bin/fuse-overlayfs' },
    { op: 'overlay', dst: '/opt', writable: false, methods: ['skeleton'] },
    { op: 'bind', src: '/home/u', dst: '/home/u', readonly: false },
    { op: 'bind', src: '/opt/x', dst: '/opt/x', readonly: true, optional: true },
    { op: 'tmpfs', dst: '/tmp', mode: 0o1777, size: 64 << 20 },
    { op: 'proc', dst: '/proc' },
    { op: 'mkdir', dst: '/scratch', mode: 0o755 },
    { op: 'file', dst: '/etc/passwd', mode: 0o644, content: 'root:x:0:0::/root:/bin/sh\nü:x:1:1::/:/bin/sh\n\n' },
    { op: 'remount-ro', dst: '/usr' },
  ],
  cwd: '/home/u',
  env: ['PATH=/usr/bin:/bin', 'MULTI=line1\nline2', 'EMPTY=', 'UTF=é'],
  argv: ['sh', '-c', 'echo "$@"', 'sh', '', 'a\nb'],
  commandIndex: 4,
};

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

function rejects(bytes: Uint8Array | string, re?: RegExp): void {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  let err: unknown;
  try {
    decodePlan(b);
  } catch (e) {
    err = e;
  }
  expect(err, `accepted: ${JSON.stringify(text(b).slice(0, 80))}`).to.be.instanceOf(LaunchPlanError);
  expect((err as LaunchPlanError).code).to.equal('HPCC_E_PLAN_INVALID');
  expect((err as LaunchPlanError).exitCode).to.equal(98);
  if (re) expect((err as Error).message).to.match(re);
}

describe('runtime/codec: launch plan wire format v4', () => {
  it('encodes a small plan to the documented bytes (golden)', () => {
    expect(text(encodePlan(small))).to.equal(
      [
        'HPCC-PLAN 4',
        'uid.inside 4', '1001', 'uid.outside 4', '1001', 'gid.inside 3', '100', 'gid.outside 3', '100',
        'pidns 1', '0', 'rootfs 3', 'dir', 'path 2', '/r', 'stage 2', '/s',
        'mounts 1', '1', 'op 4', 'proc', 'dst 5', '/proc',
        'cwd 1', '/', 'env 1', '1', 'e 9', 'PATH=/bin', 'argv 1', '1', 'a 4', 'true',
        'command 1', '0', 'end 0', '', '',
      ].join('\n'),
    );
  });

  it('round-trips every op kind, newlines, empty strings and UTF-8', () => {
    expect(decodePlan(encodePlan(full))).to.deep.equal(full);
    expect(decodePlan(encodePlan(small))).to.deep.equal(small);
  });

  it('writes modes in octal and lengths in bytes', () => {
    const t = text(encodePlan(full));
    expect(t).to.include('mode 4\n1777\n');
    expect(t).to.include('offset 13\n1099511627776\n');
    expect(t).to.include('a 3\na\nb\ncommand 1\n4\nend 0\n\n'); // after the argv list
    expect(t).to.include('e 6\nUTF=\u00e9\n'); // 5 characters, 6 bytes (é is 2)
  });

  it('rejects every truncation of a valid plan', () => {
    const b = encodePlan(full);
    for (let n = 0; n < b.length; n++) rejects(b.subarray(0, n));
  });

  it('rejects a wrong magic, another version, and trailing data', () => {
    const t = text(encodePlan(small));
    rejects(t.replace('HPCC-PLAN', 'HPCC-PLAM'), /not an hpcc launch plan/);
    rejects(t.replace('HPCC-PLAN 4', 'HPCC-PLAN 5'), /version '5' is not supported/);
    // a version-1 plan (no `command` field) is refused, not read with a guessed command index
    rejects(t.replace('HPCC-PLAN 4', 'HPCC-PLAN 1').replace('command 1\n0\n', ''), /version '1' is not supported/);
    rejects(t + 'x', /trailing data/);
    rejects(t + 'end 0\n\n', /trailing data/);
  });

  it('rejects bad lengths, numbers, booleans and field order', () => {
    const t = text(encodePlan(small));
    rejects(t.replace('uid.inside 4\n', 'uid.inside 04\n'), /leading zero/);
    rejects(t.replace('uid.inside 4\n', 'uid.inside 5\n'), /missing newline|bad/);
    rejects(t.replace('uid.inside 4\n', 'uid.inside 1234567890\n'), /too many digits/);
    rejects(t.replace('uid.inside 4\n', 'uid.inside -4\n'), /bad or truncated length/);
    rejects(t.replace('uid.inside 4\n1001', 'uid.inside 4\n0101'), /bad number/);
    rejects(t.replace('uid.inside 4\n1001', 'uid.inside 10\n4294967295'), /out of range/);
    rejects(t.replace('pidns 1\n0', 'pidns 1\n2'), /out of range/);
    rejects(t.replace('uid.outside', 'gid.outside'), /expected field 'uid.outside'/);
    rejects(t.replace('op 4\nproc', 'op 4\nnope'), /unknown mount op/);
    rejects(t.replace('rootfs 3\ndir', 'rootfs 3\nzip'), /unknown rootfs kind/);
    rejects(t.replace('mounts 1\n1', 'mounts 4\n1025'), /out of range/);
    rejects(t.replace('e 9\nPATH=/bin', 'e 9\nPATH-/bin'), /KEY=VALUE/);
    rejects(t.replace('argv 1\n1\na 4\ntrue', 'argv 1\n0'), /argv is empty/);
    rejects(t.replace('command 1\n0', 'command 1\n1'), /out of range/); // must index into argv
    rejects(t.replace('command 1\n0\n', ''), /expected field 'command'/);
  });

  it('rejects NUL bytes and unsafe paths', () => {
    const t = text(encodePlan(small));
    rejects(t.replace('e 9\nPATH=/bin', 'e 9\nPATH=/b\0n'), /NUL/);
    rejects(t.replace('dst 5\n/proc', 'dst 5\nproc/'), /not absolute/);
    rejects(t.replace('dst 5\n/proc', 'dst 5\n/../x'), /'\.\.' component/);
    rejects(t.replace('dst 5\n/proc', 'dst 5\n/a//b'), /empty/);
    rejects(t.replace('stage 2\n/s', 'stage 1\n/'), /stage may not be/);
  });

  it('refuses to encode what the helper would refuse', () => {
    const bad: Array<[string, LaunchPlan]> = [
      ['relative dst', { ...small, mounts: [{ op: 'proc', dst: 'proc' }] }],
      ['dot-dot', { ...small, cwd: '/a/../b' }],
      ['NUL', { ...small, argv: ['a\0b'] }],
      ['empty argv', { ...small, argv: [] }],
      ['env without =', { ...small, env: ['X'] }],
      ['uid', { ...small, uid: { inside: -1, outside: 0 } }],
      ['mode', { ...small, mounts: [{ op: 'mkdir', dst: '/x', mode: 0o10000 }] }],
      ['path length', { ...small, cwd: '/' + 'a'.repeat(PLAN_LIMITS.path) }],
      ['version', { ...small, version: 1 as 4 }],
      ['no overlay method', { ...small, mounts: [{ op: 'overlay', dst: '/', writable: false, methods: [] }] }],
      ['repeated method', { ...small, mounts: [{ op: 'overlay', dst: '/', writable: false, methods: ['kernel', 'kernel'] }] }],
      ['unknown method', { ...small, mounts: [{ op: 'overlay', dst: '/', writable: false, methods: ['zfs' as 'kernel'] }] }],
      ['writable skeleton', { ...small, mounts: [{ op: 'overlay', dst: '/', writable: true, methods: ['kernel', 'skeleton'] }] }],
      ['fuse without its path', { ...small, mounts: [{ op: 'overlay', dst: '/', writable: false, methods: ['fuse'] }] }],
      ['a path without fuse', { ...small, mounts: [{ op: 'overlay', dst: '/', writable: false, methods: ['kernel'], fuseOverlayfs: '/bin/x' }] }],
      ['commandIndex past argv', { ...small, commandIndex: 1 }],
      ['negative commandIndex', { ...small, commandIndex: -1 }],
      ['fractional commandIndex', { ...small, commandIndex: 0.5 }],
      ['stage /', { ...small, stage: '/' }],
    ];
    for (const [what, p] of bad) expect(() => encodePlan(p), what).to.throw(LaunchPlanError);
  });

  it('overlay ops: methods in order, fuse-overlayfs path only with fuse; version-2 plans still decode (kernel only)', () => {
    const t = text(encodePlan(full));
    expect(t).to.include('op 7\noverlay\ndst 1\n/\nwritable 1\n1\nmethods 11\nkernel,fuse\nfuse-overlayfs 23\n/usr/bin/fuse-overlayfs\n');
    expect(t).to.include('op 7\noverlay\ndst 4\n/opt\nwritable 1\n0\nmethods 8\nskeleton\nfuse-overlayfs 0\n\n');
    const ovl = text(encodePlan({ ...small, mounts: [{ op: 'overlay', dst: '/', writable: false, methods: ['kernel'] }] }));
    const v2 = ovl.replace('HPCC-PLAN 4', 'HPCC-PLAN 2').replace('methods 6\nkernel\nfuse-overlayfs 0\n\n', '');
    expect(decodePlan(Buffer.from(v2)).mounts).to.deep.equal([{ op: 'overlay', dst: '/', writable: false, methods: ['kernel'] }]);
    rejects(ovl.replace('methods 6\nkernel', 'methods 6\nkernal'), /overlay method/);
    rejects(ovl.replace('methods 6\nkernel', 'methods 13\nkernel,kernel'), /overlay method/);
    rejects(ovl.replace('fuse-overlayfs 0\n\n', 'fuse-overlayfs 2\n/x\n'), /exceeds the limit of 0/);
  });

  it('warm fields (version 4): written after the mount point, checked both ways; a version-3 squashfuse plan has none', () => {
    const t = text(encodePlan(full));
    expect(t).to.include('mountpoint 12\n/tmp/s/image\nwarm 1\n1\nwarm-dir 19\n/tmp/hpcc-1001/warm\nwarm-key 32\n0123456789abcdef0123456789abcdef\nwarm-idle 3\n300\nwarm-id ');
    const r = full.rootfs as Extract<LaunchPlan['rootfs'], { kind: 'squashfuse' }>;
    const without = { ...full, rootfs: { ...r, warm: undefined } };
    delete (without.rootfs as { warm?: unknown }).warm;
    const t0 = text(encodePlan(without));
    expect(t0).to.include('mountpoint 12\n/tmp/s/image\nwarm 1\n0\nstage');
    expect(decodePlan(Buffer.from(t0.replace('HPCC-PLAN 4', 'HPCC-PLAN 3').replace('warm 1\n0\n', ''))).rootfs).to.deep.equal(without.rootfs);
    for (const warm of [
      { ...r.warm!, key: 'ABC' },
      { ...r.warm!, key: '0123' },
      { ...r.warm!, idleSeconds: 0 },
      { ...r.warm!, idleSeconds: 604801 },
      { ...r.warm!, identity: '1:2\n' },
      { ...r.warm!, dir: 'rel' },
    ]) {
      expect(() => encodePlan({ ...full, rootfs: { ...r, warm } }), JSON.stringify(warm)).to.throw(LaunchPlanError);
    }
    rejects(t.replace('warm-idle 3\n300', 'warm-idle 1\n0'), /warm-idle/);
    rejects(t.replace('warm-key 32\n0123456789abcdef0123456789abcdef', 'warm-key 32\n0123456789abcdef0123456789abcdeF'), /warm-key/);
  });

  it('decodes hostile random bytes to a typed error in bounded time', () => {
    let seed = 12345;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const valid = encodePlan(full);
    for (let i = 0; i < 2000; i++) {
      const b = Uint8Array.from(valid);
      for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      try {
        decodePlan(b);
      } catch (e) {
        expect(e).to.be.instanceOf(LaunchPlanError);
      }
    }
  });
});

describe('runtime/spawn: helper status records', () => {
  it('parses records and maps them to typed errors with hints', () => {
    const recs = parseStatusRecords('noise\nstatus/1 fail -1 unshare 1 99 unshare(CLONE_NEWUSER|CLONE_NEWNS)\n');
    expect(recs).to.deep.equal([{ opIndex: -1, op: 'unshare', errno: 1, exitCode: 99, message: 'unshare(CLONE_NEWUSER|CLONE_NEWNS)' }]);
    const e = setupErrorFromStatus(recs[0]!);
    expect(e.code).to.equal('HPCC_E_LAUNCH_USERNS');
    expect(e.exitCode).to.equal(99);
    expect(e.errno).to.equal('EPERM');
    expect(e.hint).to.match(/AppArmor.*hpcc doctor/);
    const b = setupErrorFromStatus(parseStatusRecords('status/1 fail 3 bind 2 101 bind source /x\n')[0]!);
    expect([b.code, b.opIndex, b.op, b.errno]).to.deep.equal(['HPCC_E_LAUNCH_BIND', 3, 'bind', 'ENOENT']);
    expect(b.message).to.match(/mount op 3 \(bind\)/);
    const x = setupErrorFromStatus(parseStatusRecords('status/1 fail -1 exec 2 127 execute \'nope\'\n')[0]!);
    expect([x.code, x.exitCode]).to.deep.equal(['HPCC_E_LAUNCH_EXEC_NOT_FOUND', 127]);
    const f = setupErrorFromStatus(parseStatusRecords('status/1 fail -1 fuse-device 13 100 open /dev/fuse\n')[0]!);
    expect(f.hint).to.match(/0666/);
    const o = setupErrorFromStatus(parseStatusRecords('status/1 fail 0 overlay 22 101 no overlay method worked on /: kernel(Invalid argument)\n')[0]!);
    expect([o.code, o.exitCode]).to.deep.equal(['HPCC_E_LAUNCH_OVERLAY', 101]);
    expect(o.hint).to.match(/hpcc doctor/);
  });

  it('info records are read apart from failures', () => {
    const text = 'status/1 info 0 overlay fuse tried: kernel(Invalid argument)\nstatus/1 fail -1 exec 2 127 x\n';
    expect(parseInfoRecords(text)).to.deep.equal([{ opIndex: 0, step: 'overlay', message: 'fuse tried: kernel(Invalid argument)' }]);
    expect(parseStatusRecords(text).map((r) => r.op)).to.deep.equal(['exec']);
  });
});
