/**
 * Extended attributes for the writer (squashfs-format.md §7).
 *
 * Only the user., trusted. and security. namespaces can be stored; other
 * names (system.posix_acl_*, …) are skipped and reported through the
 * writer's onWarning callback, as mksquashfs does. Identical sets are
 * interned so they share one xattr id; ids are assigned at finish() in the
 * order the tree walk first uses them (so deterministic images do not
 * depend on arrival order). Values are always stored inline (no OOL).
 */
import { createHash } from 'node:crypto';
import { splitXattrName, type XattrIdEntry } from '../layout.js';
import type { MetadataWriter } from './metadata.js';
import { writeError } from './paths.js';

/** Linux limits (XATTR_NAME_MAX, XATTR_SIZE_MAX). */
export const XATTR_NAME_MAX = 255;
export const XATTR_SIZE_MAX = 65536;

interface Pair {
  prefix: number;
  name: Buffer; // without the prefix
  value: Uint8Array;
}

export interface XattrSet {
  readonly pairs: readonly Pair[];
  /** Σ(len(full name) + 1 + value_len): the id table's `size` field, mksquashfs meaning (§7). */
  readonly size: number;
  /** Index into the xattr id table; -1 until written at finish(). */
  id: number;
}

/** Encode one key/value pair of the kv area (§7): u16 type, u16 name_size, name, u32 value_size, value. */
export function encodeXattrPair(prefix: number, name: Uint8Array, value: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(8 + name.length + value.length);
  buf.writeUInt16LE(prefix, 0);
  buf.writeUInt16LE(name.length, 2);
  buf.set(name, 4);
  buf.writeUInt32LE(value.length, 4 + name.length);
  buf.set(value, 8 + name.length);
  return buf;
}

export class XattrRegistry {
  private readonly sets = new Map<string, XattrSet>();

  constructor(private readonly warn: (code: string, message: string) => void) {}

  /** Validate and intern a set; null when nothing storable remains. */
  intern(map: ReadonlyMap<string, Uint8Array> | undefined, path: string): XattrSet | null {
    if (map === undefined || map === null) return null;
    if (typeof map !== 'object' || typeof (map as Map<string, Uint8Array>)[Symbol.iterator] !== 'function') {
      throw writeError('HPCC_E_SQFS_XATTR', `${path || '/'}: xattrs must be a Map of name → bytes`);
    }
    if (map.size === 0) return null;
    const pairs: Pair[] = [];
    let size = 0;
    for (const [full, value] of map) {
      const split = typeof full === 'string' ? splitXattrName(full) : null;
      if (split === null) {
        this.warn('HPCC_W_SQFS_XATTR_SKIPPED', `${path || '/'}: xattr ${JSON.stringify(String(full))} skipped (squashfs stores only user., trusted. and security.)`);
        continue;
      }
      if (!(value instanceof Uint8Array)) throw writeError('HPCC_E_SQFS_XATTR', `${path || '/'}: xattr ${full} value must be bytes`);
      const name = Buffer.from(split.suffix, 'utf8');
      const fullLen = Buffer.byteLength(full, 'utf8');
      if (fullLen > XATTR_NAME_MAX || full.includes('\0')) {
        throw writeError('HPCC_E_SQFS_XATTR', `${path || '/'}: xattr name ${JSON.stringify(full.slice(0, 40))} is invalid or longer than ${XATTR_NAME_MAX} bytes`);
      }
      if (value.length > XATTR_SIZE_MAX) {
        throw writeError('HPCC_E_SQFS_XATTR', `${path || '/'}: xattr ${full} value of ${value.length} bytes (max ${XATTR_SIZE_MAX})`);
      }
      pairs.push({ prefix: split.prefix, name, value });
      size += fullLen + 1 + value.length;
    }
    if (pairs.length === 0) return null;
    pairs.sort((a, b) => a.prefix - b.prefix || Buffer.compare(a.name, b.name));
    const h = createHash('sha256');
    for (const p of pairs) {
      const len = Buffer.allocUnsafe(10);
      len.writeUInt16LE(p.prefix, 0);
      len.writeUInt32LE(p.name.length, 2);
      len.writeUInt32LE(p.value.length, 6);
      h.update(len).update(p.name).update(p.value);
    }
    const key = h.digest('base64');
    const old = this.sets.get(key);
    if (old !== undefined) return old;
    const set: XattrSet = { pairs: pairs.map((p) => ({ ...p, value: Uint8Array.from(p.value) })), size, id: -1 };
    this.sets.set(key, set);
    return set;
  }

  /** Reset ids before a finish() walk. */
  resetIds(): void {
    for (const s of this.sets.values()) s.id = -1;
  }

  /** Give a set its id at first use, appending its pairs to the kv stream. */
  async use(set: XattrSet, kv: MetadataWriter, entries: XattrIdEntry[]): Promise<number> {
    if (set.id >= 0) return set.id;
    const ref = kv.ref();
    for (const p of set.pairs) await kv.write(encodeXattrPair(p.prefix, p.name, p.value));
    set.id = entries.length;
    entries.push({ ref, count: set.pairs.length, size: set.size });
    return set.id;
  }
}
