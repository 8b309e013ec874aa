/**
 * Extended attributes (spec §7): a 16-byte header at xattr_table_start
 * (kv_start, id count), an xattr id lookup table, and key/value pairs in
 * metadata blocks from kv_start. Values may be out of line (type bit 0x0100,
 * an 8-byte ref to a `u32 size + bytes` record).
 */
import { SquashfsFormatError } from '../../../errors/index.js';
import {
  INVALID32,
  XATTR_HEADER_SIZE,
  XATTR_ID_ENTRY_SIZE,
  XATTR_PREFIXES,
  XATTR_VALUE_OOL,
  decodeXattrIdEntry,
  decodeXattrTableHeader,
  getU64,
} from '../layout.js';
import { MetaCursor, type MetadataReader, type TableBounds } from './metadata.js';
import { type ImageSource, Lru } from './source.js';
import { LookupTable } from './tables.js';

/** Linux caps one value at 64 KiB (XATTR_SIZE_MAX) and a list at 64 KiB of names. */
const MAX_VALUE = 65536;
const MAX_PAIRS = 65536;
const MAX_TOTAL = 16 * 1024 * 1024;

const utf8 = new TextDecoder('utf-8');

function bad(msg: string): SquashfsFormatError {
  return new SquashfsFormatError('HPCC_E_SQFS_BAD_XATTR', msg);
}

function u32(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

function u16(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8);
}

export class XattrReader {
  private readonly ids: LookupTable;
  private readonly kv: TableBounds;
  readonly kvStart: number;

  constructor(
    src: ImageSource,
    private readonly meta: MetadataReader,
    tableStart: number,
    lowerBound: number,
    bytesUsed: number,
  ) {
    const hdr = decodeXattrTableHeader(src.read(tableStart, XATTR_HEADER_SIZE));
    if (hdr.idCount < 1) throw bad('xattr table header has xattr_id_count 0');
    if (hdr.kvStart === -1 || hdr.kvStart < lowerBound || hdr.kvStart >= tableStart) {
      throw bad(`xattr kv_start ${hdr.kvStart} is outside ${lowerBound}..${tableStart}`);
    }
    this.ids = new LookupTable(
      src,
      meta,
      'xattr id',
      tableStart + XATTR_HEADER_SIZE,
      hdr.idCount,
      XATTR_ID_ENTRY_SIZE,
      hdr.kvStart,
      bytesUsed,
    );
    this.kvStart = hdr.kvStart;
    this.kv = { name: 'xattr kv', start: hdr.kvStart, end: this.ids.firstBlock };
  }

  /** Decoded sets by xattr index (many inodes share one set). */
  private readonly cache = new Lru<number, Map<string, Uint8Array>>(8 * 1024 * 1024, (m) => {
    let n = 64;
    for (const [k, v] of m) n += k.length + v.length + 32;
    return n;
  });

  /** The attributes of xattr set `index` ("user.x" → value); a fresh copy the caller may keep. */
  read(index: number): Map<string, Uint8Array> {
    if (index === INVALID32) return new Map();
    let set = this.cache.get(index);
    if (set === undefined) {
      set = this.decode(index);
      this.cache.set(index, set);
    }
    return new Map([...set].map(([k, v]) => [k, v.slice()]));
  }

  private decode(index: number): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    const e = decodeXattrIdEntry(this.ids.entry(index));
    if (e.count > MAX_PAIRS) throw bad(`xattr set ${index} claims ${e.count} pairs`);
    if (e.count === 0) return out;
    const cur = new MetaCursor(this.meta, this.kv, e.ref);
    let total = 0;
    for (let i = 0; i < e.count; i++) {
      const h = cur.take(4);
      const type = u16(h, 0);
      const nameSize = u16(h, 2);
      const prefix = type & 0xff;
      if ((type & ~(0xff | XATTR_VALUE_OOL)) !== 0 || prefix >= XATTR_PREFIXES.length) {
        throw bad(`xattr set ${index}: pair ${i} has type 0x${type.toString(16)}`);
      }
      if (nameSize === 0) throw bad(`xattr set ${index}: pair ${i} has an empty name`);
      const name = XATTR_PREFIXES[prefix] + utf8.decode(cur.take(nameSize));
      const vsize = u32(cur.take(4));
      let value: Uint8Array;
      if (type & XATTR_VALUE_OOL) {
        if (vsize !== 8) throw bad(`xattr ${name}: out-of-line value reference of ${vsize} bytes (must be 8)`);
        const refBytes = cur.take(8);
        const ref = getU64(new DataView(refBytes.buffer, refBytes.byteOffset, 8), 0);
        const ool = new MetaCursor(this.meta, this.kv, ref);
        const osize = u32(ool.take(4));
        if (osize > MAX_VALUE) throw bad(`xattr ${name}: value of ${osize} bytes (max ${MAX_VALUE})`);
        value = ool.take(osize).slice();
      } else {
        if (vsize > MAX_VALUE) throw bad(`xattr ${name}: value of ${vsize} bytes (max ${MAX_VALUE})`);
        value = cur.take(vsize).slice();
      }
      total += value.length + name.length;
      if (total > MAX_TOTAL) throw bad(`xattr set ${index} is larger than ${MAX_TOTAL} bytes`);
      out.set(name, value);
    }
    return out;
  }
}
