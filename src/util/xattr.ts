/**
 * Extended attributes for Node, which has no xattr API: calls in process to
 * the Node-API addon dist/native/xattr.node (native/xattr/xattr.c), which
 * wraps llistxattr/lgetxattr/lsetxattr — symlinks are never followed. The
 * addon returns errno numbers; this module turns them into typed errors or
 * per-attribute failures.
 */
import { createRequire } from 'node:module';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { HpccError, HpccIOError, ioHint } from '../errors/index.js';

export type XattrMap = Map<string, Uint8Array>;

/** One attribute that `setXattrs` could not apply. */
export interface XattrFailure {
  path: string;
  name: string;
  /** Linux errno number, e.g. 1 for EPERM. */
  errno: number;
  /** Symbolic errno name, e.g. 'EPERM' ('E<number>' when unknown). */
  code: string;
}

export interface XattrAddon {
  /** errno, or [name, value, name, value, ...] */
  list(path: string): number | Array<string | Buffer>;
  /** 0 or errno */
  set(path: string, name: string, value: Uint8Array): number;
}

const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;
const MAX_VALUE_BYTES = 65536;
const ENOTSUP = os.constants.errno.ENOTSUP ?? 95;
const EOPNOTSUPP = os.constants.errno.EOPNOTSUPP ?? 95;

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(os.constants.errno)) if (!errnoNames.has(num)) errnoNames.set(num, name);

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** The addon is not built, or does not load. */
export class XattrAddonMissingError extends HpccIOError {
  constructor(tried: readonly string[], cause?: unknown) {
    super('HPCC_E_XATTR_TOOL_MISSING', `the xattr addon did not load (looked in ${tried.join(', ')})${cause instanceof Error ? `: ${cause.message}` : ''}`, {
      hint: 'Run `npm run build` to compile the native parts into dist/native/.',
      ...(cause !== undefined ? { cause } : {}),
    });
  }
}

/** A request the kernel interface cannot express, or a broken addon. */
export class XattrError extends HpccError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('HPCC_E_XATTR_TOOL', message, {
      exitCode: 80,
      hint: 'Attribute names are 1..255 bytes, values at most 64 KiB, paths at most 4096 bytes, none with NUL bytes; if the request was valid, rebuild with `npm run build` or report a bug.',
      ...opts,
    });
  }
}

/** Where the addon may be: next to compiled code (dist/src/util → dist/native) or from source (src/util → dist/native). */
export const XATTR_ADDON_PATHS: readonly string[] = [
  fileURLToPath(new URL('../../native/xattr.node', import.meta.url)),
  fileURLToPath(new URL('../../dist/native/xattr.node', import.meta.url)),
];

const require = createRequire(import.meta.url);
let cached: XattrAddon | undefined;

/** The loaded addon; throws XattrAddonMissingError when it is not built or does not load. */
export function xattrAddon(): XattrAddon {
  if (cached) return cached;
  let cause: unknown;
  for (const file of XATTR_ADDON_PATHS) {
    try {
      const addon = require(file) as XattrAddon;
      if (typeof addon.list === 'function' && typeof addon.set === 'function') return (cached = addon);
      cause = new Error(`${file} is not hpcc's xattr addon`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') cause = e;
    }
  }
  throw new XattrAddonMissingError(XATTR_ADDON_PATHS, cause);
}

function checkString(s: string, max: number, what: string, min = 1): void {
  if (s.includes('\0')) throw new XattrError(`${what} contains a NUL byte: ${JSON.stringify(s)}`);
  const n = Buffer.byteLength(s, 'utf8');
  if (n < min || n > max) throw new XattrError(`${what} length out of range (1..${max} bytes): ${JSON.stringify(s.slice(0, 80))}`);
}

/** The extended attributes of one path (symlinks not followed): errno, or the attributes (possibly none). */
function listOne(addon: XattrAddon, p: string): number | XattrMap {
  checkString(p, MAX_PATH_BYTES, 'path', 0); // an empty path is the kernel's ENOENT
  const r = addon.list(p);
  if (typeof r === 'number') return r;
  if (!Array.isArray(r) || r.length % 2 !== 0) throw new XattrError(`the xattr addon answered ${typeof r} for ${p}`);
  const out: XattrMap = new Map();
  for (let i = 0; i < r.length; i += 2) out.set(r[i] as string, new Uint8Array(r[i + 1] as Buffer));
  return out;
}

/**
 * The extended attributes of each path (symlinks not followed). Paths with no
 * attributes, or on filesystems without xattr support, are absent from the
 * result. Any other failure (ENOENT, EACCES, ...) is an HpccIOError naming the path.
 */
export async function getXattrs(paths: readonly string[]): Promise<Map<string, XattrMap>> {
  const result = new Map<string, XattrMap>();
  if (paths.length === 0) return result;
  const addon = xattrAddon();
  for (const p of paths) {
    const r = listOne(addon, p);
    if (typeof r === 'number') {
      if (r === ENOTSUP || r === EOPNOTSUPP) continue;
      const code = errnoName(r);
      throw new HpccIOError(`HPCC_E_IO_${code}`, `read extended attributes of ${p}: ${code}`, {
        hint: ioHint(code) ?? 'Check that the path exists and is readable.',
        details: { path: p, errno: r },
      });
    }
    if (r.size > 0) result.set(p, r);
  }
  return result;
}

/**
 * Applies attributes with lsetxattr (symlinks not followed). Every failure is
 * returned (never thrown), one per path and attribute, so one bad path does
 * not stop the batch. Invalid requests (empty or over-long names, values
 * over 64 KiB, paths over 4096 bytes, NUL bytes) throw before anything is applied.
 */
export async function setXattrs(entries: ReadonlyArray<{ path: string; xattrs: ReadonlyMap<string, Uint8Array> }>): Promise<XattrFailure[]> {
  const failures: XattrFailure[] = [];
  if (entries.length === 0) return failures;
  for (const e of entries) {
    checkString(e.path, MAX_PATH_BYTES, 'path');
    for (const [name, value] of e.xattrs) {
      checkString(name, MAX_NAME_BYTES, 'xattr name');
      if (value.length > MAX_VALUE_BYTES) throw new XattrError(`xattr ${name} on ${e.path} exceeds 64 KiB`);
    }
  }
  const addon = xattrAddon();
  for (const e of entries) {
    for (const [name, value] of e.xattrs) {
      const errno = addon.set(e.path, name, value);
      if (errno !== 0) failures.push({ path: e.path, name, errno, code: errnoName(errno) });
    }
  }
  return failures;
}
