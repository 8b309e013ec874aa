/**
 * Extended attributes for Node, which has no xattr API: batches of paths go
 * to the native helper dist/native/xattr (native/xattr.c documents its
 * binary protocol) in one process per call, streamed both ways so memory
 * holds only the attributes found, never the whole request or response.
 * Symlinks are never followed (llistxattr/lgetxattr/lsetxattr).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
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

const PROTO_MAGIC = 0x41585048; // "HPXA" read as a little-endian u32
const PROTO_VERSION = 1;
const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;
const MAX_VALUE_BYTES = 65536;
const WRITE_CHUNK = 64 * 1024;
const ENOTSUP = os.constants.errno.ENOTSUP ?? 95;
const EOPNOTSUPP = os.constants.errno.EOPNOTSUPP ?? 95;

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(os.constants.errno)) if (!errnoNames.has(num)) errnoNames.set(num, name);

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** The native helper is not built (or not executable). */
export class XattrToolMissingError extends HpccIOError {
  constructor(tried: string[]) {
    super('HPCC_E_XATTR_TOOL_MISSING', `the xattr helper is missing (looked in ${tried.join(', ')})`, {
      hint: 'Run `npm run build` to compile the native helpers into dist/native/.',
    });
  }
}

/** The helper broke its protocol or failed as a whole. */
export class XattrToolError extends HpccError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('HPCC_E_XATTR_TOOL', message, {
      exitCode: 80,
      hint: 'Rebuild the native helpers with `npm run build`; if it persists, report a bug.',
      ...opts,
    });
  }
}

let cachedTool: string | undefined;

/**
 * Where the helper binary lives: $HPCC_XATTR_BIN, else next to the compiled
 * module (dist/src/util/xattr.js → dist/native/xattr), else, when running from
 * source (src/util/xattr.ts), the build output dist/native/xattr.
 */
export function xattrToolPath(): string {
  if (cachedTool !== undefined) return cachedTool;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    ...(process.env.HPCC_XATTR_BIN ? [process.env.HPCC_XATTR_BIN] : []),
    path.resolve(here, '../../native/xattr'),
    path.resolve(here, '../../dist/native/xattr'),
  ];
  for (const c of candidates) {
    try {
      if (fs.statSync(c).isFile()) {
        fs.accessSync(c, fs.constants.X_OK);
        cachedTool = c;
        return c;
      }
    } catch {
      /* try the next one */
    }
  }
  throw new XattrToolMissingError(candidates);
}

/** Incremental reader over the helper's stdout chunks. */
class ByteQueue {
  private buf: Buffer = Buffer.alloc(0);
  private off = 0;

  push(chunk: Buffer): void {
    const rest = this.buf.subarray(this.off);
    this.buf = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
    this.off = 0;
  }
  available(): number {
    return this.buf.length - this.off;
  }
  /** u32 at `at` bytes past the read position (caller checked availability). */
  peekU32(at: number): number {
    return this.buf.readUInt32LE(this.off + at);
  }
  /** Copies n bytes out (so parsed values never pin the big chunk). */
  take(n: number): Uint8Array {
    const out = new Uint8Array(this.buf.subarray(this.off, this.off + n));
    this.off += n;
    return out;
  }
  skip(n: number): void {
    this.off += n;
  }
}

function encodePath(p: string): Buffer {
  if (p.includes('\0')) throw new XattrToolError(`path contains a NUL byte: ${JSON.stringify(p)}`);
  return Buffer.from(p, 'utf8');
}

/** Starts the helper and a collector for its stdout/stderr. */
function startTool(mode: 'list' | 'set', onData: (q: ByteQueue) => void) {
  const tool = xattrToolPath();
  const child: ChildProcessWithoutNullStreams = spawn(tool, [mode], { stdio: ['pipe', 'pipe', 'pipe'] });
  const q = new ByteQueue();
  let stderr = '';
  let parseError: unknown;
  let sawHeader = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (parseError !== undefined) return;
    q.push(chunk);
    try {
      if (!sawHeader) {
        if (q.available() < 8) return;
        const magic = q.peekU32(0);
        const version = q.peekU32(4);
        if (magic !== PROTO_MAGIC || version !== PROTO_VERSION) {
          throw new XattrToolError(`${tool} speaks an unknown protocol (magic ${magic}, version ${version})`);
        }
        q.skip(8);
        sawHeader = true;
      }
      onData(q);
    } catch (e) {
      parseError = e;
      child.kill('SIGKILL');
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    if (stderr.length < 4096) stderr += s;
  });
  child.stdin.on('error', () => {
    /* EPIPE when the helper died early; the exit status tells why */
  });
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => reject(new XattrToolError(`cannot run ${tool}: ${e.message}`, { cause: e })));
    child.on('close', (code, signal) => {
      if (parseError !== undefined) return reject(parseError);
      if (code !== 0) {
        return reject(new XattrToolError(`${tool} ${mode} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
      }
      if (!sawHeader) return reject(new XattrToolError(`${tool} ${mode} produced no output`));
      if (q.available() !== 0) return reject(new XattrToolError(`${tool} ${mode}: truncated output`));
      resolve();
    });
  });
  return { child, exited };
}

/** Writes byte pieces to the helper's stdin in 64 KiB writes, honouring backpressure. */
async function feed(child: ChildProcessWithoutNullStreams, pieces: Iterable<Buffer>): Promise<void> {
  try {
    await feedUnsafe(child, pieces);
  } catch (e) {
    // Our own validation errors abort the batch; stream errors (EPIPE when the
    // helper died) are explained by its exit status instead.
    if (e instanceof HpccError) {
      child.kill('SIGKILL');
      throw e;
    }
  }
}

async function feedUnsafe(child: ChildProcessWithoutNullStreams, pieces: Iterable<Buffer>): Promise<void> {
  const stdin = child.stdin;
  let batch: Buffer[] = [];
  let size = 0;
  const flush = async () => {
    if (size === 0) return;
    const data = batch.length === 1 ? batch[0]! : Buffer.concat(batch, size);
    batch = [];
    size = 0;
    if (!stdin.write(data) && !stdin.destroyed) {
      await Promise.race([once(stdin, 'drain'), once(child, 'close')]);
    }
  };
  for (const p of pieces) {
    if (stdin.destroyed || child.exitCode !== null) break;
    batch.push(p);
    size += p.length;
    if (size >= WRITE_CHUNK) await flush();
  }
  await flush();
  stdin.end();
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n, 0);
  return b;
}

/**
 * The extended attributes of each path (symlinks not followed). Paths with no
 * attributes, or on filesystems without xattr support, are absent from the
 * result. Any other failure (ENOENT, EACCES, ...) is an HpccIOError naming the path.
 */
export async function getXattrs(paths: readonly string[]): Promise<Map<string, XattrMap>> {
  const result = new Map<string, XattrMap>();
  if (paths.length === 0) return result;
  let next = 0;
  let failure: HpccError | undefined;
  const parse = (q: ByteQueue) => {
    for (;;) {
      if (q.available() < 12) return;
      const index = q.peekU32(0);
      const errno = q.peekU32(4);
      const count = q.peekU32(8);
      // Find the record's full length before consuming anything.
      let at = 12;
      for (let i = 0; i < count; i++) {
        if (q.available() < at + 4) return;
        const nlen = q.peekU32(at);
        if (nlen === 0 || nlen > MAX_NAME_BYTES) throw new XattrToolError(`bad attribute name length ${nlen}`);
        if (q.available() < at + 4 + nlen + 4) return;
        const vlen = q.peekU32(at + 4 + nlen);
        if (vlen > MAX_VALUE_BYTES) throw new XattrToolError(`bad attribute value length ${vlen}`);
        at += 8 + nlen + vlen;
      }
      if (q.available() < at) return;
      if (index !== next || index >= paths.length) {
        throw new XattrToolError(`out-of-sequence record ${index} (expected ${next})`);
      }
      next++;
      q.skip(12);
      const p = paths[index]!;
      if (errno !== 0 && errno !== ENOTSUP && errno !== EOPNOTSUPP) {
        const code = errnoName(errno);
        failure ??= new HpccIOError(`HPCC_E_IO_${code}`, `read extended attributes of ${p}: ${code}`, {
          hint: ioHint(code) ?? 'Check that the path exists and is readable.',
          details: { path: p, errno },
        });
      }
      if (count === 0) continue;
      const attrs: XattrMap = new Map();
      for (let i = 0; i < count; i++) {
        const nlen = q.peekU32(0);
        q.skip(4);
        const name = Buffer.from(q.take(nlen)).toString('utf8');
        const vlen = q.peekU32(0);
        q.skip(4);
        const value = q.take(vlen);
        attrs.set(name, value);
      }
      result.set(p, attrs);
    }
  };
  const { child, exited } = startTool('list', parse);
  const pieces = function* () {
    for (const p of paths) {
      const b = encodePath(p);
      yield Buffer.concat([b, Buffer.from([0])]);
    }
  };
  await Promise.all([feed(child, pieces()), exited]);
  if (next !== paths.length) throw new XattrToolError(`helper answered ${next} of ${paths.length} paths`);
  if (failure) throw failure;
  return result;
}

/**
 * Applies attributes with lsetxattr (symlinks not followed). Every failure is
 * returned (never thrown), one per path and attribute, so one bad path does
 * not stop the batch. Invalid requests (empty or over-long names, values
 * over 64 KiB, paths over 4096 bytes) throw before anything is applied.
 */
export async function setXattrs(
  entries: ReadonlyArray<{ path: string; xattrs: ReadonlyMap<string, Uint8Array> }>,
): Promise<XattrFailure[]> {
  const failures: XattrFailure[] = [];
  if (entries.length === 0) return failures;
  const encoded = entries.map((e) => {
    const p = encodePath(e.path);
    if (p.length === 0 || p.length > MAX_PATH_BYTES) throw new XattrToolError(`path length out of range: ${e.path}`);
    const attrs: Array<[Buffer, Uint8Array]> = [];
    for (const [name, value] of e.xattrs) {
      const n = encodePath(name);
      if (n.length === 0 || n.length > MAX_NAME_BYTES) throw new XattrToolError(`bad xattr name ${JSON.stringify(name)}`);
      if (value.length > MAX_VALUE_BYTES) throw new XattrToolError(`xattr ${name} on ${e.path} exceeds 64 KiB`);
      attrs.push([n, value]);
    }
    return { p, attrs };
  });
  const parse = (q: ByteQueue) => {
    for (;;) {
      if (q.available() < 12) return;
      const nlen = q.peekU32(8);
      if (nlen === 0 || nlen > MAX_NAME_BYTES) throw new XattrToolError(`bad attribute name length ${nlen}`);
      if (q.available() < 12 + nlen) return;
      const index = q.peekU32(0);
      const errno = q.peekU32(4);
      if (index >= entries.length) throw new XattrToolError(`failure record for unknown entry ${index}`);
      q.skip(12);
      const name = Buffer.from(q.take(nlen)).toString('utf8');
      failures.push({ path: entries[index]!.path, name, errno, code: errnoName(errno) });
    }
  };
  const { child, exited } = startTool('set', parse);
  const pieces = function* () {
    for (const { p, attrs } of encoded) {
      yield u32(p.length);
      yield p;
      yield u32(attrs.length);
      for (const [n, v] of attrs) {
        yield u32(n.length);
        yield n;
        yield u32(v.length);
        yield Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      }
    }
  };
  await Promise.all([feed(child, pieces()), exited]);
  return failures;
}
