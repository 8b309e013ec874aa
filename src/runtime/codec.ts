/**
 * Launch plan wire format, version 3: what the C helper (native/launch/,
 * parser in plan.c) reads from `--plan-fd N` or `--plan FILE`. Pure
 * encode/decode on bytes; plan files live in plan-file.ts.
 *
 * Layout (all text is bytes; strings are UTF-8):
 *
 *   "HPCC-PLAN 4\n"                       magic + version (2 to 4 are read)
 *   then fields in the fixed order below, each:
 *       KEY " " LEN "\n" VALUE "\n"
 *   KEY   the expected field name (the helper rejects any other)
 *   LEN   VALUE's byte length in decimal: no sign, no leading zeros, ≤ 9 digits
 *   VALUE any bytes except NUL (so values may hold newlines, e.g. file content)
 *
 *   uid.inside uid.outside gid.inside gid.outside   decimal, 0..4294967294
 *   pidns                                          "0" | "1"
 *   rootfs                                         "squashfuse" | "dir"
 *     squashfuse: image, offset (decimal), fuse-helper, mountpoint, warm ("0" | "1" |
 *                 "2": required, --sharens); with warm 1 or 2: warm-dir (path), warm-key (16..64 hex digits),
 *                 warm-idle (seconds, 1..604800), warm-id (digits and ':')
 *     dir:        path
 *   stage
 *   mounts                                         count (≤ 1024), then per op:
 *     op = "bind":       src, dst, readonly (0|1), optional (0|1)
 *     op = "tmpfs":      dst, mode (octal), size (decimal bytes, 0 = default)
 *     op = "proc":       dst
 *     op = "mkdir":      dst, mode (octal)
 *     op = "file":       dst, mode (octal), content (≤ 4 MiB)
 *     op = "overlay":    dst, writable (0|1), methods (comma list of kernel, fuse,
 *                        skeleton: the order to try), fuse-overlayfs (a path when
 *                        fuse is a method, else empty); version 2: dst, writable only
 *     op = "remount-ro": dst
 *   cwd
 *   env   count (≤ 8192), then that many "e" fields, each KEY=VALUE
 *   argv  count (1..65536), then that many "a" fields
 *   command                                        decimal index into argv, 0..count-1:
 *                                                  where the user's command starts
 *                                                  (LaunchPlan.commandIndex)
 *   "end 0\n\n"                                    and nothing after it
 *
 * Version history: 1 had no `command` field (a command given to the helper
 * replaced all of argv, wrapper included); 2 adds it; 3 adds the overlay
 * op's `methods` and `fuse-overlayfs` (a version-2 overlay means kernel only);
 * 4 adds the squashfuse root's `warm` fields.
 *
 * Numbers: decimal (or octal for modes) without sign or leading zeros ("0"
 * itself is allowed). Paths (src, dst, image, fuse-helper, mountpoint, path,
 * stage, cwd) are absolute, ≤ 4095 bytes, without empty, "." or ".."
 * components (a lone "/" is fine). env/argv strings ≤ 128 KiB each; the
 * whole plan ≤ 16 MiB. Example: `uid.inside 4\n1001\n`.
 */
import { LaunchPlanError } from '../errors/index.js';
import { OVERLAY_METHODS, PLAN_VERSION, type LaunchPlan, type MountOp } from './plan.js';

export const PLAN_MAGIC = 'HPCC-PLAN';
export const PLAN_LIMITS = Object.freeze({
  bytes: 16 << 20,
  path: 4095,
  string: 128 << 10,
  content: 4 << 20,
  mounts: 1024,
  env: 8192,
  argv: 65536,
});

const enc = new TextEncoder();

class Writer {
  private parts: Uint8Array[] = [];
  private total = 0;
  raw(s: string): void {
    const b = enc.encode(s);
    this.parts.push(b);
    this.total += b.length;
    if (this.total > PLAN_LIMITS.bytes) throw new LaunchPlanError(`plan larger than ${PLAN_LIMITS.bytes} bytes`);
  }
  field(key: string, value: string | Uint8Array, max: number): void {
    const b = typeof value === 'string' ? enc.encode(value) : value;
    if (b.length > max) throw new LaunchPlanError(`field '${key}': ${b.length} bytes exceeds the limit of ${max}`);
    if (b.includes(0)) throw new LaunchPlanError(`field '${key}' contains a NUL byte`);
    this.raw(`${key} ${b.length}\n`);
    this.parts.push(b);
    this.total += b.length;
    this.raw('\n');
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

function checkPath(key: string, p: string): string {
  if (typeof p !== 'string' || !p.startsWith('/')) throw new LaunchPlanError(`${key}: path '${p}' is not absolute`);
  const comps = p.split('/').slice(1);
  if (p !== '/' && comps.some((c) => c === '' || c === '.' || c === '..')) {
    throw new LaunchPlanError(`${key}: path '${p}' has an empty, '.' or '..' component`);
  }
  return p;
}

function checkId(key: string, n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xfffffffe) throw new LaunchPlanError(`${key}: bad id ${n}`);
  return String(n);
}

function checkMode(key: string, n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0o7777) throw new LaunchPlanError(`${key}: bad mode ${n}`);
  return n.toString(8);
}

function checkUint(key: string, n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new LaunchPlanError(`${key}: bad number ${n}`);
  return String(n);
}

const bool = (b: boolean | undefined): string => (b ? '1' : '0');

function encodeOp(w: Writer, o: MountOp, i: number): void {
  const P = PLAN_LIMITS.path;
  const k = (f: string): string => `mounts[${i}].${f}`;
  w.field('op', o.op, 16);
  switch (o.op) {
    case 'bind':
      w.field('src', checkPath(k('src'), o.src), P);
      w.field('dst', checkPath(k('dst'), o.dst), P);
      w.field('readonly', bool(o.readonly), 1);
      w.field('optional', bool(o.optional), 1);
      return;
    case 'tmpfs':
      w.field('dst', checkPath(k('dst'), o.dst), P);
      w.field('mode', checkMode(k('mode'), o.mode), 20);
      w.field('size', checkUint(k('size'), o.size), 20);
      return;
    case 'proc':
    case 'remount-ro':
      w.field('dst', checkPath(k('dst'), o.dst), P);
      return;
    case 'mkdir':
      w.field('dst', checkPath(k('dst'), o.dst), P);
      w.field('mode', checkMode(k('mode'), o.mode), 20);
      return;
    case 'file':
      w.field('dst', checkPath(k('dst'), o.dst), P);
      w.field('mode', checkMode(k('mode'), o.mode), 20);
      w.field('content', o.content, PLAN_LIMITS.content);
      return;
    case 'overlay': {
      w.field('dst', checkPath(k('dst'), o.dst), P);
      w.field('writable', bool(o.writable), 1);
      const m = o.methods;
      if (!Array.isArray(m) || m.length === 0 || m.some((x, j) => !OVERLAY_METHODS.includes(x) || m.indexOf(x) !== j)) {
        throw new LaunchPlanError(`${k('methods')}: 1 to 3 distinct overlay methods (kernel, fuse, skeleton), got ${JSON.stringify(m)}`);
      }
      if (o.writable && m.includes('skeleton')) throw new LaunchPlanError(`${k('methods')}: a writable overlay cannot be a skeleton`);
      w.field('methods', m.join(','), 32);
      if (m.includes('fuse')) w.field('fuse-overlayfs', checkPath(k('fuseOverlayfs'), o.fuseOverlayfs ?? ''), P);
      else if (o.fuseOverlayfs !== undefined) throw new LaunchPlanError(`${k('fuseOverlayfs')}: given, but 'fuse' is not a method`);
      else w.field('fuse-overlayfs', '', 0);
      return;
    }
    default:
      throw new LaunchPlanError(`mounts[${i}]: unknown op '${(o as { op: string }).op}'`);
  }
}

/** Encode a plan in the helper's wire format (validates everything the helper checks). */
export function encodePlan(plan: LaunchPlan): Uint8Array {
  if (plan.version !== PLAN_VERSION) throw new LaunchPlanError(`plan version ${String(plan.version)} is not ${PLAN_VERSION}`);
  const w = new Writer();
  const P = PLAN_LIMITS.path;
  w.raw(`${PLAN_MAGIC} ${PLAN_VERSION}\n`);
  w.field('uid.inside', checkId('uid.inside', plan.uid.inside), 20);
  w.field('uid.outside', checkId('uid.outside', plan.uid.outside), 20);
  w.field('gid.inside', checkId('gid.inside', plan.gid.inside), 20);
  w.field('gid.outside', checkId('gid.outside', plan.gid.outside), 20);
  w.field('pidns', bool(plan.pidNamespace), 1);
  const r = plan.rootfs;
  w.field('rootfs', r.kind, 16);
  if (r.kind === 'squashfuse') {
    w.field('image', checkPath('rootfs.image', r.image), P);
    w.field('offset', checkUint('rootfs.offset', r.offset), 20);
    w.field('fuse-helper', checkPath('rootfs.fuseHelper', r.fuseHelper), P);
    w.field('mountpoint', checkPath('rootfs.mountpoint', r.mountpoint), P);
    const wm = r.warm;
    w.field('warm', wm ? (wm.required ? '2' : '1') : '0', 1);
    if (wm) {
      w.field('warm-dir', checkPath('rootfs.warm.dir', wm.dir), P);
      if (!/^[0-9a-f]{16,64}$/.test(wm.key)) throw new LaunchPlanError(`rootfs.warm.key: '${wm.key}' is not 16 to 64 hex digits`);
      w.field('warm-key', wm.key, 64);
      if (!Number.isInteger(wm.idleSeconds) || wm.idleSeconds < 1 || wm.idleSeconds > 604800) {
        throw new LaunchPlanError(`rootfs.warm.idleSeconds: ${wm.idleSeconds} is not 1..604800`);
      }
      w.field('warm-idle', String(wm.idleSeconds), 20);
      if (!/^[0-9:]+$/.test(wm.identity)) throw new LaunchPlanError(`rootfs.warm.identity: '${wm.identity}' is not an image identity`);
      w.field('warm-id', wm.identity, 256);
    }
  } else if (r.kind === 'dir') {
    w.field('path', checkPath('rootfs.path', r.path), P);
  } else {
    throw new LaunchPlanError(`unknown rootfs kind '${(r as { kind: string }).kind}'`);
  }
  if (checkPath('stage', plan.stage) === '/') throw new LaunchPlanError("stage may not be '/'");
  w.field('stage', plan.stage, P);
  if (plan.mounts.length > PLAN_LIMITS.mounts) throw new LaunchPlanError(`more than ${PLAN_LIMITS.mounts} mount ops`);
  w.field('mounts', String(plan.mounts.length), 20);
  plan.mounts.forEach((o, i) => encodeOp(w, o, i));
  w.field('cwd', checkPath('cwd', plan.cwd), P);
  if (plan.env.length > PLAN_LIMITS.env) throw new LaunchPlanError(`more than ${PLAN_LIMITS.env} env entries`);
  w.field('env', String(plan.env.length), 20);
  plan.env.forEach((e, i) => {
    if (typeof e !== 'string' || e.indexOf('=') <= 0) throw new LaunchPlanError(`env[${i}] is not KEY=VALUE`);
    w.field('e', e, PLAN_LIMITS.string);
  });
  if (plan.argv.length === 0 || plan.argv.length > PLAN_LIMITS.argv || plan.argv[0] === '') {
    throw new LaunchPlanError(`argv must hold 1..${PLAN_LIMITS.argv} entries with a non-empty argv[0]`);
  }
  w.field('argv', String(plan.argv.length), 20);
  for (const a of plan.argv) w.field('a', a, PLAN_LIMITS.string);
  const ci = plan.commandIndex;
  if (!Number.isInteger(ci) || ci < 0 || ci >= plan.argv.length) {
    throw new LaunchPlanError(`commandIndex ${String(ci)} is not an index into argv (0..${plan.argv.length - 1})`);
  }
  w.field('command', String(ci), 20);
  w.field('end', '', 0);
  return w.bytes();
}

export { decodePlan } from './codec-decode.js';
export { LaunchPlanError };
