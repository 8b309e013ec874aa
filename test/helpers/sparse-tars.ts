/**
 * Hand-made sparse tar entries for the sparse-limit tests, in the four
 * formats GNU tar writes: old GNU ('S' header with an in-header map), pax
 * GNU.sparse 0.0 (repeated offset/numbytes records), 0.1 (one map record)
 * and 1.0 (the map in the data, padded to 512). Nothing checks the map: the
 * point is to write hostile ones.
 */
import { base256, checksum, octal, pad, paxRecord } from './oci-layers.js';

export type SparseFormat = 'gnu' | 'pax0.0' | 'pax0.1' | 'pax1.0';
export const SPARSE_FORMATS: SparseFormat[] = ['gnu', 'pax0.0', 'pax0.1', 'pax1.0'];

export interface SparseSpec {
  name: string;
  realSize: number;
  /** [offset, length] segments; the data bytes are 'x' × the total length */
  map: Array<[number | string, number | string]>;
}

/** A 12-byte number field: octal, or GNU base-256 when it does not fit. */
function num12(h: Buffer, off: number, v: number): void {
  if (v < 8 ** 11) return octal(h, off, 12, v);
  base256(h, off, 12, v);
}

function header(name: string, type: string, size: number, gnu: boolean, fill?: (h: Buffer) => void): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  octal(h, 100, 8, 0o644);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, 1700000000);
  h.write(type, 156, 1, 'latin1');
  h.write(gnu ? 'ustar  \0' : 'ustar\x0000', 257, 8, 'latin1');
  fill?.(h);
  return checksum(h);
}

function paxHeader(records: Array<[string, string]>): Buffer {
  const p = Buffer.concat(records.map(([k, v]) => paxRecord(k, Buffer.from(v))));
  return Buffer.concat([header('PaxHeaders/x', 'x', p.length, false), pad(p)]);
}

/** One sparse entry (no end-of-archive blocks). */
export function sparseEntry(format: SparseFormat, s: SparseSpec): Buffer {
  const stored = s.map.reduce((n, [, l]) => n + Number(l), 0);
  const data = Buffer.alloc(stored, 'x');
  if (format === 'gnu') {
    if (s.map.length > 4) throw new Error('sparseEntry: the GNU format here holds 4 segments');
    const h = header(s.name, 'S', stored, true, (b) => {
      s.map.forEach(([o, l], i) => {
        num12(b, 386 + i * 24, Number(o));
        num12(b, 398 + i * 24, Number(l));
      });
      num12(b, 483, s.realSize);
    });
    return Buffer.concat([h, pad(data)]);
  }
  if (format === 'pax1.0') {
    const lines = [String(s.map.length), ...s.map.flatMap(([o, l]) => [String(o), String(l)])].join('\n') + '\n';
    const body = Buffer.concat([pad(Buffer.from(lines)), data]);
    const px = paxHeader([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.name', s.name], ['GNU.sparse.realsize', String(s.realSize)]]);
    return Buffer.concat([px, header('GNUSparseFile.0/x', '0', body.length, false), pad(body)]);
  }
  const recs: Array<[string, string]> = [['GNU.sparse.size', String(s.realSize)], ['GNU.sparse.numblocks', String(s.map.length)]];
  if (format === 'pax0.1') recs.push(['GNU.sparse.map', s.map.flatMap(([o, l]) => [String(o), String(l)]).join(',')]);
  else for (const [o, l] of s.map) recs.push(['GNU.sparse.offset', String(o)], ['GNU.sparse.numbytes', String(l)]);
  return Buffer.concat([paxHeader(recs), header(s.name, '0', stored, false), pad(data)]);
}

/** A tar of sparse entries, with its end blocks. */
export function sparseTar(format: SparseFormat, specs: SparseSpec[]): Buffer {
  return Buffer.concat([...specs.map((s) => sparseEntry(format, s)), Buffer.alloc(1024)]);
}
