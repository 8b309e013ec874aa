/**
 * Sparse files in layer tars (GNU 'S', pax GNU.sparse 0.0/0.1/1.0): map
 * checks, the hole budget and the expanded body.
 *
 * A sparse entry stores only its data segments; its map and real size come
 * from the header, so a few hundred bytes can claim a file of petabytes. Its
 * holes are not free downstream: the squashfs writer stores all-zero blocks
 * without data, but still copies, hashes and zero-checks every block and
 * keeps one block-list word per block. So every map is checked whole before
 * a byte is handed out (decimal, sorted, non-overlapping, inside the real
 * size) and the holes of every sparse file of an image are charged to one
 * budget: HPCC_SPARSE_LIMIT bytes (default 16 GiB). Over it, the entry is
 * refused with HPCC_E_OCI_SPARSE_LIMIT before any zero is streamed.
 */
import { OciError, UsageError } from '../../errors/index.js';
import type { ByteReader } from './byte-reader.js';
import { BLOCK, tarError } from './tar-header.js';

export const MAX_SEGMENTS = 65536;
export const SPARSE_LIMIT_ENV = 'HPCC_SPARSE_LIMIT';
/** Default hole budget of one image: 16 GiB of zeros (about a minute of hashing). */
export const SPARSE_LIMIT_DEFAULT = 16 * 1024 ** 3;
const ZERO_CHUNK = 1 << 20;

export type SparseMap = Array<[number, number]>;

/** Hole bytes allowed, and already used, across the layers of one image. */
export interface SparseBudget {
  limit: number;
  used: number;
}

/** A size: bytes, or a K/M/G/T suffix (powers of 1024). */
export function parseSparseLimit(s: string, what = SPARSE_LIMIT_ENV): number {
  const m = /^(\d{1,16})([KkMmGgTt]?)$/.exec(s.trim());
  const n = m ? Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase()) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new UsageError(`${what}: invalid size ${JSON.stringify(s)}`, { hint: `Use a number of bytes or a suffix: ${what}=64G.` });
  }
  return n;
}

/** The hole budget for one image, from HPCC_SPARSE_LIMIT or the default. */
export function newSparseBudget(env: NodeJS.ProcessEnv = process.env): SparseBudget {
  const v = env[SPARSE_LIMIT_ENV];
  return { limit: v !== undefined && v !== '' ? parseSparseLimit(v) : SPARSE_LIMIT_DEFAULT, used: 0 };
}

function fmt(n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GiB` : n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${n} bytes`;
}

/**
 * Check a sparse map against the entry (`stored` data bytes, `realSize`) and
 * charge its holes to `budget`. Throws before anything is streamed.
 */
export function checkSparse(path: string, map: SparseMap, realSize: number, stored: number, budget: SparseBudget): void {
  if (!Number.isSafeInteger(realSize) || realSize < 0) throw tarError(`${path}: bad sparse real size`);
  let end = 0;
  let data = 0;
  for (const [off, len] of map) {
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0) throw tarError(`${path}: bad sparse map entry`);
    if (off < end) throw tarError(`${path}: sparse map segments out of order or overlapping`);
    if (len > realSize - off) throw tarError(`${path}: sparse map segment beyond the real size ${realSize}`);
    end = off + len;
    data += len;
  }
  if (data !== stored) throw tarError(`sparse map covers ${data} bytes but the entry stores ${stored}`);
  const holes = realSize - data;
  if (holes > budget.limit - budget.used) {
    throw new OciError(
      'HPCC_E_OCI_SPARSE_LIMIT',
      `layer tar: sparse file ${path} has ${fmt(holes)} of holes (real size ${realSize}), over the image's limit of ${fmt(budget.limit)} (${fmt(budget.used)} used)`,
      { hint: `The image may be hostile; if you trust it, raise the limit, e.g. ${SPARSE_LIMIT_ENV}=1T.`, details: { path, realSize, holes, limit: budget.limit } },
    );
  }
  budget.used += holes;
}

/** Sparse body: data segments (stored back to back) spread over a file of realSize with zero holes. The map was checked. */
export async function* sparseBody(data: AsyncIterable<Buffer>, map: SparseMap, realSize: number): AsyncGenerator<Uint8Array> {
  const it = data[Symbol.asyncIterator]();
  let cur: Buffer = Buffer.alloc(0);
  let pos = 0;
  async function* zeros(n: number): AsyncGenerator<Uint8Array> {
    while (n > 0) {
      const k = Math.min(n, ZERO_CHUNK);
      yield Buffer.alloc(k);
      n -= k;
    }
  }
  for (const [off, len] of map) {
    yield* zeros(off - pos);
    let left = len;
    while (left > 0) {
      if (cur.length === 0) {
        const r = await it.next();
        if (r.done) throw tarError('sparse data shorter than its map');
        cur = r.value;
      }
      const take = Math.min(left, cur.length);
      yield cur.subarray(0, take);
      cur = cur.subarray(take);
      left -= take;
    }
    pos = off + len;
  }
  yield* zeros(realSize - pos);
}

/** Parse decimal numbers of a sparse map (pax 0.0 and 0.1 values, 1.0 lines). */
export function mapNumber(s: string, what: string): number {
  const n = /^\d{1,16}$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n)) throw tarError(`bad ${what}`);
  return n;
}

/** Read a GNU.sparse 1.0 map from the start of the data: decimal lines, padded to 512. */
export async function readSparse10Map(r: ByteReader, size: number): Promise<{ map: SparseMap; used: number }> {
  let used = 0;
  let pending = '';
  const nums: number[] = [];
  let want = -1;
  while (want < 0 || nums.length < 1 + 2 * want) {
    if (used + BLOCK > size) throw tarError('sparse 1.0 map runs past the entry');
    const blk = (await r.readExact(BLOCK)) ?? Buffer.alloc(0);
    if (blk.length < BLOCK) throw tarError('truncated sparse map');
    used += BLOCK;
    pending += blk.toString('latin1');
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const l of lines) {
      if (want >= 0 && nums.length >= 1 + 2 * want) break;
      nums.push(mapNumber(l, 'sparse 1.0 map'));
      if (nums.length === 1) {
        want = nums[0]!;
        if (want > MAX_SEGMENTS) throw tarError('sparse map too large');
      }
    }
  }
  const map: SparseMap = [];
  for (let i = 0; i < want; i++) map.push([nums[1 + 2 * i]!, nums[2 + 2 * i]!]);
  return { map, used };
}
