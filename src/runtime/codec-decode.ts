/**
 * Strict decoder of the launch plan wire format (layout: codec.ts; the C
 * parser in native/launch/plan.c accepts exactly the same inputs). Used to
 * read saved plan files back, and by tests as the oracle for the encoder.
 */
import { LaunchPlanError } from '../errors/index.js';
import { OVERLAY_METHODS, PLAN_VERSION, type LaunchPlan, type MountOp, type OverlayMethod, type RootfsSpec } from './plan.js';

const LIMITS = { bytes: 16 << 20, path: 4095, string: 128 << 10, content: 4 << 20, mounts: 1024, env: 8192, argv: 65536 };
const dec = new TextDecoder('utf-8', { fatal: false });

class Reader {
  pos = 0;
  constructor(private readonly b: Uint8Array) {}

  fail(msg: string): never {
    throw new LaunchPlanError(msg);
  }

  version = PLAN_VERSION as number;

  header(): void {
    const magic = 'HPCC-PLAN ';
    const nl = this.b.indexOf(10);
    if (this.b.length < magic.length || dec.decode(this.b.subarray(0, magic.length)) !== magic) {
      this.fail("not an hpcc launch plan (no 'HPCC-PLAN' header)");
    }
    if (nl < 0 || nl - magic.length > 12) this.fail('truncated plan header');
    const v = dec.decode(this.b.subarray(magic.length, nl));
    if (!['2', '3', String(PLAN_VERSION)].includes(v)) this.fail(`plan version '${v}' is not supported (this hpcc reads versions 2 to ${PLAN_VERSION})`);
    this.version = Number(v);
    this.pos = nl + 1;
  }

  bytes(key: string, max: number): Uint8Array {
    const k = new TextEncoder().encode(`${key} `);
    const b = this.b;
    if (b.length - this.pos < k.length || !k.every((c, i) => b[this.pos + i] === c)) {
      this.fail(`expected field '${key}' at byte ${this.pos}`);
    }
    this.pos += k.length;
    const start = this.pos;
    let n = 0;
    while (this.pos < b.length && b[this.pos]! >= 48 && b[this.pos]! <= 57) {
      if (this.pos - start >= 9) this.fail(`field '${key}': length has too many digits`);
      n = n * 10 + (b[this.pos]! - 48);
      this.pos++;
    }
    if (this.pos === start || this.pos >= b.length || b[this.pos] !== 10) this.fail(`field '${key}': bad or truncated length at byte ${start}`);
    if (this.pos - start > 1 && b[start] === 48) this.fail(`field '${key}': length has a leading zero`);
    this.pos++;
    if (n > max) this.fail(`field '${key}': ${n} bytes exceeds the limit of ${max}`);
    if (b.length - this.pos < n + 1) this.fail(`field '${key}': truncated (plan ends at byte ${b.length})`);
    const v = b.subarray(this.pos, this.pos + n);
    if (v.includes(0)) this.fail(`field '${key}' contains a NUL byte`);
    if (b[this.pos + n] !== 10) this.fail(`field '${key}': missing newline after ${n} bytes`);
    this.pos += n + 1;
    return v;
  }

  str(key: string, max: number): string {
    return dec.decode(this.bytes(key, max));
  }

  num(key: string, max: number, base = 10): number {
    const s = this.str(key, 20);
    const ok = base === 8 ? /^(0|[1-7][0-7]*)$/ : /^(0|[1-9][0-9]*)$/;
    if (!ok.test(s)) this.fail(`field '${key}': bad number '${s}'`);
    const v = parseInt(s, base);
    if (!Number.isSafeInteger(v) || v > max) this.fail(`field '${key}': ${s} out of range`);
    return v;
  }

  bool(key: string): boolean {
    return this.num(key, 1) === 1;
  }

  path(key: string): string {
    const p = this.str(key, LIMITS.path);
    if (!p.startsWith('/')) this.fail(`field '${key}': path '${p}' is not absolute`);
    if (p !== '/' && p.split('/').slice(1).some((c) => c === '' || c === '.' || c === '..')) {
      this.fail(`field '${key}': path '${p}' has an empty, '.' or '..' component`);
    }
    return p;
  }
}

function decodeOp(r: Reader): MountOp {
  const op = r.str('op', 16);
  switch (op) {
    case 'bind': {
      const src = r.path('src');
      const dst = r.path('dst');
      const readonly = r.bool('readonly');
      const optional = r.bool('optional');
      return optional ? { op, src, dst, readonly, optional } : { op, src, dst, readonly };
    }
    case 'tmpfs': {
      const dst = r.path('dst');
      const mode = r.num('mode', 0o7777, 8);
      return { op, dst, mode, size: r.num('size', Number.MAX_SAFE_INTEGER) };
    }
    case 'proc':
    case 'remount-ro':
      return { op, dst: r.path('dst') };
    case 'mkdir': {
      const dst = r.path('dst');
      return { op, dst, mode: r.num('mode', 0o7777, 8) };
    }
    case 'file': {
      const dst = r.path('dst');
      const mode = r.num('mode', 0o7777, 8);
      return { op, dst, mode, content: r.str('content', LIMITS.content) };
    }
    case 'overlay': {
      const dst = r.path('dst');
      const writable = r.bool('writable');
      if (r.version < 3) return { op, dst, writable, methods: ['kernel'] };
      const list = r.str('methods', 32).split(',');
      if (list.some((x, j) => !(OVERLAY_METHODS as readonly string[]).includes(x) || list.indexOf(x) !== j)) {
        r.fail(`field 'methods': bad overlay method list '${list.join(',')}'`);
      }
      const methods = list as OverlayMethod[];
      if (writable && methods.includes('skeleton')) r.fail('a writable overlay cannot be a skeleton');
      if (methods.includes('fuse')) return { op, dst, writable, methods, fuseOverlayfs: r.path('fuse-overlayfs') };
      r.bytes('fuse-overlayfs', 0);
      return { op, dst, writable, methods };
    }
    default:
      return r.fail(`unknown mount op '${op}'`);
  }
}

function list(r: Reader, countKey: string, key: string, max: number): string[] {
  const n = r.num(countKey, max);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(r.str(key, LIMITS.string));
  return out;
}

/** Decode (and fully validate) a plan; any defect is a LaunchPlanError. */
export function decodePlan(bytes: Uint8Array): LaunchPlan {
  if (bytes.length > LIMITS.bytes) throw new LaunchPlanError(`plan larger than ${LIMITS.bytes} bytes`);
  const r = new Reader(bytes);
  r.header();
  const uid = { inside: r.num('uid.inside', 0xfffffffe), outside: r.num('uid.outside', 0xfffffffe) };
  const gid = { inside: r.num('gid.inside', 0xfffffffe), outside: r.num('gid.outside', 0xfffffffe) };
  const pidNamespace = r.bool('pidns');
  const kind = r.str('rootfs', 16);
  let rootfs: RootfsSpec;
  if (kind === 'squashfuse') {
    const image = r.path('image');
    const offset = r.num('offset', Number.MAX_SAFE_INTEGER);
    const fuseHelper = r.path('fuse-helper');
    rootfs = { kind, image, offset, fuseHelper, mountpoint: r.path('mountpoint') };
    const warm = r.version >= 4 ? r.num('warm', 2) : 0;
    if (warm) {
      const dir = r.path('warm-dir');
      const key = r.str('warm-key', 64);
      if (!/^[0-9a-f]{16,64}$/.test(key)) r.fail("field 'warm-key': not 16 to 64 hex digits");
      const idleSeconds = r.num('warm-idle', 604800);
      if (idleSeconds === 0) r.fail("field 'warm-idle': 0 (no warm mount is written as warm 0)");
      const identity = r.str('warm-id', 256);
      if (!/^[0-9:]+$/.test(identity)) r.fail("field 'warm-id': not an image identity");
      rootfs.warm = { dir, key, idleSeconds, identity, ...(warm === 2 ? { required: true } : {}) };
    }
  } else if (kind === 'dir') {
    rootfs = { kind, path: r.path('path') };
  } else {
    return r.fail(`unknown rootfs kind '${kind}'`);
  }
  const stage = r.path('stage');
  if (stage === '/') r.fail("stage may not be '/'");
  const nm = r.num('mounts', LIMITS.mounts);
  const mounts: MountOp[] = [];
  for (let i = 0; i < nm; i++) mounts.push(decodeOp(r));
  const cwd = r.path('cwd');
  const env = list(r, 'env', 'e', LIMITS.env);
  env.forEach((e, i) => {
    if (e.indexOf('=') <= 0) r.fail(`env entry ${i} is not KEY=VALUE`);
  });
  const argv = list(r, 'argv', 'a', LIMITS.argv);
  if (argv.length === 0) r.fail('argv is empty');
  if (argv[0] === '') r.fail('argv[0] is empty');
  const commandIndex = r.num('command', argv.length - 1);
  r.bytes('end', 0);
  if (r.pos !== bytes.length) r.fail(`${bytes.length - r.pos} bytes of trailing data after 'end'`);
  return { version: PLAN_VERSION, uid, gid, pidNamespace, rootfs, stage, mounts, cwd, env, argv, commandIndex };
}
