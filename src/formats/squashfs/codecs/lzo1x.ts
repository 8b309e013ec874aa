/**
 * LZO1X decompressor (squashfs compressor 3, §2 "lzo: a bare lzo1x block"),
 * written from the bitstream description (Linux Documentation/staging/lzo.rst).
 * Every lzo1x_* compressor mksquashfs offers (lzo1x_1, _1_11, _1_12, _1_15,
 * _999) produces this one format. Output is bounded by `maxOut`; hostile
 * input raises Lzo1xError.
 *
 * Instructions (state = literals copied after the previous instruction,
 * 0..3, or 4 after a literal run of 4 or more):
 *   0000LLLL state 0  literal run of 3+L bytes (L=0: 18 + zero-run extension)
 *   0000DDSS state 1-3 2-byte match, next byte H: distance (H<<2)+D+1
 *   0000DDSS state 4  3-byte match, next byte H: distance (H<<2)+D+2049
 *   0001HLLL          match of 2+L (L=0: 9 + ext), u16 LE next: D=v>>2, S=v&3,
 *                     distance 16384+(H<<14)+D; distance 16384 ends the stream
 *   001LLLLL          match of 2+L (L=0: 33 + ext), u16 LE: distance (v>>2)+1
 *   01LDDDSS          match of 3+L, next byte H: distance (H<<3)+D+1
 *   1LLDDDSS          match of 5+L, next byte H: distance (H<<3)+D+1
 * after a match, S (0..3) literals follow directly. A first byte above 17
 * is a literal run of (byte-17) bytes.
 */

export class Lzo1xError extends Error {}

/** Decode one lzo1x block into at most maxOut bytes. */
export function lzo1xDecode(src: Uint8Array, maxOut: number): Uint8Array {
  const out = new Uint8Array(maxOut);
  const n = src.length;
  let ip = 0;
  let op = 0;
  let state = 0;

  const need = (k: number): void => {
    if (n - ip < k) throw new Lzo1xError('truncated lzo1x stream');
  };
  // zero-run length extension: each 0 byte adds 255, the final byte adds itself
  const extend = (base: number): number => {
    let len = base;
    for (;;) {
      need(1);
      const b = src[ip++]!;
      if (b !== 0) return len + b;
      len += 255;
      if (len > maxOut + 255) throw new Lzo1xError('lzo1x length runs past the output limit');
    }
  };
  const literals = (len: number): void => {
    need(len);
    if (len > maxOut - op) throw new Lzo1xError(`lzo1x block decodes to more than ${maxOut} bytes`);
    out.set(src.subarray(ip, ip + len), op);
    ip += len;
    op += len;
  };
  const copyMatch = (dist: number, len: number): void => {
    if (dist > op) throw new Lzo1xError(`lzo1x match distance ${dist} before the start of the output`);
    if (len > maxOut - op) throw new Lzo1xError(`lzo1x block decodes to more than ${maxOut} bytes`);
    let from = op - dist;
    if (dist >= len) {
      out.copyWithin(op, from, from + len);
      op += len;
    } else {
      const end = op + len;
      while (op < end) out[op++] = out[from++]!;
    }
  };

  need(1);
  if (src[0]! > 17) {
    const t = src[0]! - 17;
    ip = 1;
    literals(t);
    state = t < 4 ? t : 4;
  }
  for (;;) {
    need(1);
    const inst = src[ip++]!;
    let s: number;
    if (inst < 16) {
      if (state === 0) {
        const len = inst === 0 ? extend(15) + 3 : inst + 3;
        literals(len);
        state = 4;
        continue;
      }
      need(1);
      const h = src[ip++]!;
      s = inst & 3;
      if (state === 4) copyMatch((h << 2) + (inst >> 2) + 2049, 3);
      else copyMatch((h << 2) + (inst >> 2) + 1, 2);
    } else if (inst < 32) {
      const len = (inst & 7) === 0 ? extend(7) + 2 : (inst & 7) + 2;
      need(2);
      const v = src[ip]! | (src[ip + 1]! << 8);
      ip += 2;
      const dist = 16384 + ((inst & 8) << 11) + (v >> 2);
      if (dist === 16384) {
        if (len !== 3) throw new Lzo1xError('malformed lzo1x end-of-stream marker');
        if (ip !== n) throw new Lzo1xError(`${n - ip} bytes of trailing data after the lzo1x stream`);
        return out.subarray(0, op);
      }
      s = v & 3;
      copyMatch(dist, len);
    } else if (inst < 64) {
      const len = (inst & 31) === 0 ? extend(31) + 2 : (inst & 31) + 2;
      need(2);
      const v = src[ip]! | (src[ip + 1]! << 8);
      ip += 2;
      s = v & 3;
      copyMatch((v >> 2) + 1, len);
    } else {
      need(1);
      const h = src[ip++]!;
      const len = inst < 128 ? 3 + ((inst >> 5) & 1) : 5 + ((inst >> 5) & 3);
      s = inst & 3;
      copyMatch((h << 3) + ((inst >> 2) & 7) + 1, len);
    }
    if (s > 0) literals(s);
    state = s;
  }
}
