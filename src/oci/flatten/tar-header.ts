/**
 * Tar headers (pure). Layout of a 512-byte header block (POSIX.1-1988 ustar,
 * with the GNU and pax extensions that OCI layers use):
 *   name 0..100, mode 100, uid 108, gid 116, size 124 (12), mtime 136 (12),
 *   chksum 148 (8), typeflag 156, linkname 157..257, magic 257 (6),
 *   version 263 (2), uname 265 (32), gname 297 (32), devmajor 329 (8),
 *   devminor 337 (8), prefix 345..500 (ustar only; GNU keeps atime/ctime and
 *   the old sparse map there: 4 × {offset 12, numbytes 12} at 386, isextended
 *   482, realsize 483 (12)).
 * Numbers are NUL/space-terminated octal, or base-256 when the first byte
 * has its high bit set (GNU, for values that do not fit).
 * Pax extended records (POSIX.1-2001): "<len> <key>=<value>\n", len counting
 * the whole record; values are raw bytes (xattr values may be binary).
 */
import { OciError } from '../../errors/index.js';

export const BLOCK = 512;

export type TarType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo' | 'pax' | 'paxGlobal' | 'gnuLongName' | 'gnuLongLink' | 'gnuSparse' | 'other';

export interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  type: TarType;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  gnu: boolean;
  /** GNU old sparse: map in the header, more in extension blocks when isExtended */
  sparse?: { map: Array<[number, number]>; isExtended: boolean; realSize: number };
}

export function tarError(msg: string): OciError {
  return new OciError('HPCC_E_OCI_TAR', `layer tar: ${msg}`, { hint: 'The layer is not a valid tar archive (corrupt or truncated).' });
}

function cstr(b: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + off, end - off).toString('utf8');
}

/**
 * Parse a numeric field: octal text or base-256 (§ GNU). A negative base-256
 * value (first byte 0xff, two's complement) is an error unless `signed`
 * (mtimes: GNU tar writes pre-1970 times so); it saturates at
 * -MAX_SAFE_INTEGER.
 */
export function parseNumber(b: Uint8Array, off: number, len: number, field: string, signed = false): number {
  const first = b[off]!;
  if (first & 0x80) {
    if (first === 0xff) {
      if (!signed) throw tarError(`negative ${field}`);
      let m = 0;
      for (let i = 1; i < len; i++) {
        m = m * 256 + (0xff - b[off + i]!);
        if (m >= Number.MAX_SAFE_INTEGER) return -Number.MAX_SAFE_INTEGER;
      }
      return -(m + 1);
    }
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + b[off + i]!;
      if (v > Number.MAX_SAFE_INTEGER) throw tarError(`${field} too large`);
    }
    return v;
  }
  let i = off;
  const end = off + len;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) {
    if (b[i] === 0) return 0;
    i++;
  }
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw tarError(`bad octal digit in ${field}`);
    v = v * 8 + (c - 0x30);
    digits++;
  }
  if (digits > 18) throw tarError(`${field} too large`);
  return v;
}

function typeOf(flag: string): TarType {
  switch (flag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'link';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
      return 'dir';
    case '6':
      return 'fifo';
    case 'x':
      return 'pax';
    case 'g':
      return 'paxGlobal';
    case 'L':
      return 'gnuLongName';
    case 'K':
      return 'gnuLongLink';
    case 'S':
      return 'gnuSparse';
    default:
      return 'other';
  }
}

export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** Parse one header block; checks the checksum (unsigned or signed sum). */
export function parseHeader(b: Uint8Array): RawHeader {
  if (b.length < BLOCK) throw tarError('truncated header');
  const stored = parseNumber(b, 148, 8, 'checksum');
  let u = 0;
  let s = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i]!;
    u += c;
    s += c > 127 ? c - 256 : c;
  }
  if (stored !== u && stored !== s) throw tarError('header checksum mismatch');
  const magic = cstr(b, 257, 6);
  const gnu = magic === 'ustar ' || (b[257] === 0x75 && b[262] === 0x20);
  const ustar = magic === 'ustar';
  let name = cstr(b, 0, 100);
  if (ustar && !gnu) {
    const prefix = cstr(b, 345, 155);
    if (prefix.length > 0) name = `${prefix}/${name}`;
  }
  const typeflag = String.fromCharCode(b[156]!);
  const h: RawHeader = {
    name,
    mode: parseNumber(b, 100, 8, 'mode'),
    uid: parseNumber(b, 108, 8, 'uid'),
    gid: parseNumber(b, 116, 8, 'gid'),
    size: parseNumber(b, 124, 12, 'size'),
    mtime: parseNumber(b, 136, 12, 'mtime', true),
    typeflag,
    type: typeOf(typeflag),
    linkname: cstr(b, 157, 100),
    uname: cstr(b, 265, 32),
    gname: cstr(b, 297, 32),
    devmajor: ustar || gnu ? parseNumber(b, 329, 8, 'devmajor') : 0,
    devminor: ustar || gnu ? parseNumber(b, 337, 8, 'devminor') : 0,
    gnu,
  };
  if (h.type === 'gnuSparse') {
    h.sparse = { map: parseSparseEntries(b, 386, 4), isExtended: b[482] !== 0, realSize: parseNumber(b, 483, 12, 'realsize') };
  }
  return h;
}

/** GNU sparse map entries {offset 12, numbytes 12} × count at off; stops at an empty entry. */
export function parseSparseEntries(b: Uint8Array, off: number, count: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < count; i++) {
    const o = off + i * 24;
    if (b[o] === 0) break;
    out.push([parseNumber(b, o, 12, 'sparse offset'), parseNumber(b, o + 12, 12, 'sparse numbytes')]);
  }
  return out;
}

/** Parse pax records; repeated keys (GNU.sparse.offset/numbytes in 0.0) keep every value in order. */
export function parsePax(data: Uint8Array): Map<string, Buffer[]> {
  const out = new Map<string, Buffer[]>();
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] === 0) break; // NUL padding
    const sp = buf.indexOf(0x20, pos);
    if (sp < 0 || sp - pos > 20) throw tarError('bad pax record length');
    const len = Number(buf.toString('latin1', pos, sp));
    if (!Number.isSafeInteger(len) || len <= sp - pos + 1 || pos + len > buf.length || buf[pos + len - 1] !== 0x0a) {
      throw tarError('bad pax record');
    }
    const rec = buf.subarray(sp + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw tarError('pax record without key');
    const key = rec.toString('utf8', 0, eq);
    const val = Buffer.from(rec.subarray(eq + 1));
    const list = out.get(key);
    if (list) list.push(val);
    else out.set(key, [val]);
    pos += len;
  }
  return out;
}

/** Round up to a multiple of 512. */
export function padded(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}
