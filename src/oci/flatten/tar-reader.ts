/**
 * A streaming tar reader for layer tars: yields one entry at a time with its
 * body as a bounded sub-stream; bodies the consumer does not read are
 * skipped. Applies GNU long names/links ('L'/'K'), pax extended and global
 * headers (path, linkpath, size, uid, gid, mtime, uname, gname; SCHILY.xattr.*
 * and LIBARCHIVE.xattr.* as raw bytes), and sparse files: GNU old format
 * ('S') and pax GNU.sparse 0.0, 0.1 and 1.0 — holes come out as zeros.
 * Times before 1970 become 0 (ReadTarOptions.onNegativeMtime).
 * Limits keep hostile input bounded: extended headers ≤ 1 MiB, sparse maps ≤
 * 65536 segments, checked whole before the body, and sparse holes within
 * ReadTarOptions.sparseBudget (HPCC_E_OCI_SPARSE_LIMIT).
 */
import { ByteReader } from './byte-reader.js';
import { MAX_SEGMENTS, checkSparse, mapNumber, newSparseBudget, readSparse10Map, sparseBody, type SparseBudget, type SparseMap } from './sparse.js';
import { BLOCK, isZeroBlock, padded, parseHeader, parsePax, parseSparseEntries, tarError, type RawHeader } from './tar-header.js';

export type EntryKind = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo' | 'other';

export interface TarEntry {
  path: string;
  kind: EntryKind;
  typeflag: string;
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** size of the file's contents (the real size for sparse files) */
  size: number;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Uint8Array>;
  sparse: boolean;
}

export interface TarItem {
  entry: TarEntry;
  body: AsyncIterable<Uint8Array>;
}

export interface ReadTarOptions {
  /**
   * Called for each entry whose mtime is before 1970 (GNU base-256 or pax
   * `mtime=-N`): its mtime becomes 0, as tar2sqfs does (squashfs times are
   * unsigned), instead of failing the whole layer.
   */
  onNegativeMtime?: (path: string, mtime: number) => void;
  /**
   * Hole bytes the sparse files may add (src/oci/flatten/sparse.ts); share
   * one across the layers of an image. Default: a fresh HPCC_SPARSE_LIMIT budget.
   */
  sparseBudget?: SparseBudget;
}

const MAX_EXT = 1 << 20;

function text(v: Buffer[] | undefined): string | undefined {
  return v === undefined ? undefined : v[v.length - 1]!.toString('utf8');
}

function num(v: Buffer[] | undefined, field: string, signed = false): number | undefined {
  const s = text(v);
  if (s === undefined) return undefined;
  if (!/^-?\d+(\.\d*)?$/.test(s)) throw tarError(`bad pax ${field} ${JSON.stringify(s.slice(0, 40))}`);
  const n = Math.floor(Number(s));
  if (signed && n < 0) return Number.isFinite(n) ? Math.max(n, -Number.MAX_SAFE_INTEGER) : -Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(n) || n < 0) throw tarError(`pax ${field} out of range`);
  return n;
}

function kindOf(h: RawHeader): EntryKind {
  switch (h.type) {
    case 'file':
    case 'gnuSparse':
      return 'file';
    case 'link':
    case 'symlink':
    case 'char':
    case 'block':
    case 'dir':
    case 'fifo':
      return h.type;
    default:
      return 'other';
  }
}

/** Iterate the entries of a tar stream (the whole stream is read, trailing data included). */
export async function* readTar(src: AsyncIterable<Uint8Array>, opts: ReadTarOptions = {}): AsyncGenerator<TarItem> {
  const r = new ByteReader(src);
  const budget = opts.sparseBudget ?? newSparseBudget();
  let global = new Map<string, Buffer[]>();
  let pax: Map<string, Buffer[]> | null = null;
  let longName: string | null = null;
  let longLink: string | null = null;
  try {
    for (;;) {
      const blk = await r.readExact(BLOCK);
      if (blk === null) break; // no end marker: accepted, as GNU tar does
      if (isZeroBlock(blk)) break;
      const h = parseHeader(blk);
      if (h.type === 'pax' || h.type === 'paxGlobal' || h.type === 'gnuLongName' || h.type === 'gnuLongLink') {
        if (h.size > MAX_EXT) throw tarError(`extended header of ${h.size} bytes (limit ${MAX_EXT})`);
        const data = (await r.readExact(padded(h.size))) ?? Buffer.alloc(0);
        if (data.length < h.size) throw tarError('truncated extended header');
        const body = data.subarray(0, h.size);
        if (h.type === 'pax') pax = parsePax(body);
        else if (h.type === 'paxGlobal') global = new Map([...global, ...parsePax(body)]);
        else {
          const nul = body.indexOf(0);
          const s = body.subarray(0, nul < 0 ? body.length : nul).toString('utf8');
          if (h.type === 'gnuLongName') longName = s;
          else longLink = s;
        }
        continue;
      }
      const ext = pax === null ? global : new Map([...global, ...pax]);
      pax = null;
      const entry: TarEntry = {
        path: text(ext.get('path')) ?? longName ?? h.name,
        kind: kindOf(h),
        typeflag: h.typeflag,
        linkname: text(ext.get('linkpath')) ?? longLink ?? h.linkname,
        mode: h.mode & 0o7777,
        uid: num(ext.get('uid'), 'uid') ?? h.uid,
        gid: num(ext.get('gid'), 'gid') ?? h.gid,
        mtime: num(ext.get('mtime'), 'mtime', true) ?? h.mtime,
        size: 0,
        devmajor: h.devmajor,
        devminor: h.devminor,
        xattrs: new Map(),
        sparse: false,
      };
      longName = null;
      longLink = null;
      if (entry.mtime < 0) {
        opts.onNegativeMtime?.(entry.path, entry.mtime);
        entry.mtime = 0;
      }
      for (const [k, v] of ext) {
        if (k.startsWith('SCHILY.xattr.')) entry.xattrs.set(k.slice(13), v[v.length - 1]!);
        else if (k.startsWith('LIBARCHIVE.xattr.')) {
          const name = decodeURIComponent(k.slice(17));
          if (!entry.xattrs.has(name)) entry.xattrs.set(name, Buffer.from(v[v.length - 1]!.toString('latin1'), 'base64'));
        }
      }
      const stored = num(ext.get('size'), 'size') ?? h.size;
      // Header-only types (links, devices, dirs, fifos) have no data blocks whatever their size field says.
      const dataLen = entry.kind === 'file' || h.type === 'other' ? stored : 0;
      let map: SparseMap | null = null;
      let realSize = stored;
      let used = 0;
      if (h.type === 'gnuSparse') {
        map = [...h.sparse!.map];
        realSize = h.sparse!.realSize;
        let extended = h.sparse!.isExtended;
        while (extended) {
          const eb = await r.readExact(BLOCK);
          if (eb === null || eb.length < BLOCK) throw tarError('truncated sparse extension');
          map.push(...parseSparseEntries(eb, 0, 21));
          if (map.length > MAX_SEGMENTS) throw tarError('sparse map too large');
          extended = eb[504] !== 0;
        }
      } else if (entry.kind === 'file' && (ext.has('GNU.sparse.major') || ext.has('GNU.sparse.map') || ext.has('GNU.sparse.offset'))) {
        const major = text(ext.get('GNU.sparse.major'));
        realSize = num(ext.get('GNU.sparse.realsize') ?? ext.get('GNU.sparse.size'), 'sparse size') ?? stored;
        const sname = text(ext.get('GNU.sparse.name'));
        if (sname !== undefined) entry.path = sname;
        if (major === '1') {
          const m = await readSparse10Map(r, stored);
          map = m.map;
          used = m.used;
        } else if (ext.has('GNU.sparse.map')) {
          const parts = text(ext.get('GNU.sparse.map'))!.split(',').filter((x) => x !== '');
          if (parts.length % 2 !== 0 || parts.length > 2 * MAX_SEGMENTS) throw tarError('bad GNU.sparse.map');
          map = [];
          for (let i = 0; i < parts.length; i += 2) map.push([mapNumber(parts[i]!, 'GNU.sparse.map'), mapNumber(parts[i + 1]!, 'GNU.sparse.map')]);
        } else {
          const offs = ext.get('GNU.sparse.offset') ?? [];
          const lens = ext.get('GNU.sparse.numbytes') ?? [];
          if (offs.length !== lens.length || offs.length > MAX_SEGMENTS) throw tarError('bad GNU.sparse 0.0 map');
          map = offs.map((o, i) => [mapNumber(o.toString('latin1'), 'GNU.sparse 0.0 map'), mapNumber(lens[i]!.toString('latin1'), 'GNU.sparse 0.0 map')] as [number, number]);
        }
      }
      const left = dataLen - used;
      if (left < 0) throw tarError('sparse map longer than the entry');
      let consumedBody = 0;
      const raw = (async function* (): AsyncGenerator<Buffer> {
        for await (const c of r.chunks(left)) {
          consumedBody += c.length;
          yield c;
        }
      })();
      if (map !== null) {
        checkSparse(entry.path, map, realSize, left, budget);
        entry.sparse = true;
        entry.size = realSize;
      } else {
        entry.size = entry.kind === 'file' ? left : 0;
      }
      const body: AsyncIterable<Uint8Array> = map !== null ? sparseBody(raw, map, realSize) : entry.kind === 'file' ? raw : (async function* () {})();
      yield { entry, body };
      await r.skip(left - consumedBody);
      // Padding after the last entry may be missing (umoci 0.4 writes such layers; Go's reader accepts them).
      const pad = padded(dataLen) - dataLen;
      if ((await r.skipUpTo(pad)) < pad) break;
    }
    await r.drain();
  } finally {
    await r.close();
  }
}
