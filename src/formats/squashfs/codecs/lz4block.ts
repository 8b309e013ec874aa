/**
 * LZ4 raw block format (squashfs compressor 5, §2 "lz4: a raw LZ4 block, not
 * the frame format"), decoded in TypeScript so that the output is bounded by
 * the caller's limit and hostile input can only raise an error.
 *
 * Format (lz4 block format description): a block is a series of sequences.
 * Each sequence is a token byte (high nibble = literal length, low nibble =
 * match length - 4), literal-length extension bytes when the nibble is 15
 * (each adds 0..255, a byte below 255 ends it), the literals, a u16 LE match
 * offset (1..65535), then match-length extension bytes when the low nibble is
 * 15. The last sequence has literals only and ends the block.
 */

/** Thrown for malformed input; the codec wrapper turns it into a typed error. */
export class Lz4BlockError extends Error {}

/**
 * Decode one raw LZ4 block. Returns the decoded bytes (a view into a buffer
 * of at most `maxOut` bytes). Throws Lz4BlockError when the block is corrupt
 * or would decode to more than `maxOut` bytes.
 */
export function lz4DecodeBlock(src: Uint8Array, maxOut: number): Uint8Array {
  const out = new Uint8Array(maxOut);
  let ip = 0;
  let op = 0;
  const iend = src.length;
  if (iend === 0) throw new Lz4BlockError('empty lz4 block');
  for (;;) {
    if (ip >= iend) throw new Lz4BlockError('truncated lz4 sequence');
    const token = src[ip++]!;
    // literal length
    let litLen = token >>> 4;
    if (litLen === 15) {
      let b: number;
      do {
        if (ip >= iend) throw new Lz4BlockError('truncated literal length');
        b = src[ip++]!;
        litLen += b;
      } while (b === 255);
    }
    if (litLen > iend - ip) throw new Lz4BlockError('literals run past the end of the block');
    if (litLen > maxOut - op) throw new Lz4BlockError(`lz4 block decodes to more than ${maxOut} bytes`);
    if (litLen < 32) {
      // short runs: a byte loop beats creating a subarray view
      for (let k = 0; k < litLen; k++) out[op + k] = src[ip + k]!;
    } else {
      out.set(src.subarray(ip, ip + litLen), op);
    }
    ip += litLen;
    op += litLen;
    if (ip === iend) break; // last sequence: literals only
    // match
    if (iend - ip < 2) throw new Lz4BlockError('truncated match offset');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) throw new Lz4BlockError(`invalid lz4 match offset ${offset} at output ${op}`);
    let matchLen = token & 15;
    if (matchLen === 15) {
      let b: number;
      do {
        if (ip >= iend) throw new Lz4BlockError('truncated match length');
        b = src[ip++]!;
        matchLen += b;
      } while (b === 255);
    }
    matchLen += 4;
    if (matchLen > maxOut - op) throw new Lz4BlockError(`lz4 block decodes to more than ${maxOut} bytes`);
    let from = op - offset;
    if (offset >= matchLen && matchLen >= 32) {
      out.copyWithin(op, from, from + matchLen);
      op += matchLen;
    } else {
      // short or overlapping copy (overlap repeats the last `offset` bytes)
      const end = op + matchLen;
      while (op < end) out[op++] = out[from++]!;
    }
  }
  return out.subarray(0, op);
}

const MIN_MATCH = 4;
const LAST_LITERALS = 5; // the last 5 bytes are always literals
const MF_LIMIT = 12; // no match may start within the last 12 bytes
const HASH_LOG = 16;

function writeLength(dst: Uint8Array, p: number, len: number): number {
  while (len >= 255) {
    dst[p++] = 255;
    len -= 255;
  }
  dst[p++] = len;
  return p;
}

/** Worst-case size of an encoded block of n bytes. */
export function lz4Bound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

function emitSequence(
  dst: Uint8Array,
  p: number,
  src: Uint8Array,
  litStart: number,
  litLen: number,
  offset: number,
  matchLen: number,
): number {
  const tokenPos = p++;
  const litNib = litLen >= 15 ? 15 : litLen;
  if (litLen >= 15) p = writeLength(dst, p, litLen - 15);
  dst.set(src.subarray(litStart, litStart + litLen), p);
  p += litLen;
  if (matchLen === 0) {
    dst[tokenPos] = litNib << 4;
    return p;
  }
  dst[p++] = offset & 0xff;
  dst[p++] = offset >>> 8;
  const ml = matchLen - MIN_MATCH;
  dst[tokenPos] = (litNib << 4) | (ml >= 15 ? 15 : ml);
  if (ml >= 15) p = writeLength(dst, p, ml - 15);
  return p;
}

/**
 * Encode one raw LZ4 block. `hc` enables a deeper match search (hash chains
 * over the whole 64 KiB window), which gives the smaller "high compression"
 * output that mksquashfs -Xhc produces; the format is the same either way.
 * Synchronous; callers run it in a worker.
 */
export function lz4EncodeBlock(src: Uint8Array, hc = false): Uint8Array {
  const n = src.length;
  const dst = new Uint8Array(lz4Bound(n));
  let p = 0;
  let anchor = 0;
  if (n < MF_LIMIT + 1) {
    p = emitSequence(dst, p, src, 0, n, 0, 0);
    return dst.slice(0, p);
  }
  const head = new Int32Array(1 << HASH_LOG).fill(-1);
  const chain = hc ? new Int32Array(65536).fill(-1) : null;
  const maxAttempts = hc ? 256 : 1;
  const matchLimit = n - LAST_LITERALS;
  const hashAt = (i: number): number =>
    (Math.imul(src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16) | (src[i + 3]! << 24), 2654435761) >>> (32 - HASH_LOG));
  const insert = (i: number): void => {
    const h = hashAt(i);
    if (chain) chain[i & 0xffff] = head[h]!;
    head[h] = i;
  };
  let i = 0;
  let nextInsert = 0;
  let misses = 0;
  while (i < n - MF_LIMIT) {
    while (nextInsert < i) insert(nextInsert++);
    let cand = head[hashAt(i)]!;
    let bestLen = 0;
    let bestOff = 0;
    for (let attempts = 0; cand >= 0 && i - cand <= 65535 && attempts < maxAttempts; attempts++) {
      if (src[cand + bestLen] === src[i + bestLen] && src[cand] === src[i] && src[cand + 1] === src[i + 1] &&
          src[cand + 2] === src[i + 2] && src[cand + 3] === src[i + 3]) {
        let len = 4;
        while (i + len < matchLimit && src[cand + len] === src[i + len]) len++;
        if (len > bestLen) {
          bestLen = len;
          bestOff = i - cand;
        }
      }
      if (!chain) break;
      const next = chain[cand & 0xffff]!;
      if (next >= cand) break;
      cand = next;
    }
    if (bestLen < MIN_MATCH) {
      // skip faster through incompressible data (fast mode only)
      i += hc ? 1 : 1 + (misses++ >> 6);
      continue;
    }
    misses = 0;
    // extend backwards over pending literals
    while (i > anchor && i - bestOff > 0 && src[i - 1] === src[i - 1 - bestOff]) {
      i--;
      bestLen++;
    }
    p = emitSequence(dst, p, src, anchor, i - anchor, bestOff, bestLen);
    i += bestLen;
    anchor = i;
  }
  p = emitSequence(dst, p, src, anchor, n - anchor, 0, 0);
  return dst.slice(0, p);
}
