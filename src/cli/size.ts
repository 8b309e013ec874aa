/**
 * Block sizes given on the command line (`hpcc build|pull --block-size`), in a
 * module of its own so the lean pull path can use it without loading oclif.
 */
import { UsageError } from '../errors/index.js';

/** A squashfs block size: bytes or a K/M suffix, a power of two from 4K to 1M. */
export function parseBlockSize(s: string): number {
  const m = /^(\d+)([KkMm]?)$/.exec(s.trim());
  if (!m) throw new UsageError(`invalid size "${s}"`, { hint: 'Use a number of bytes or a suffix: 4K, 128K, 1M.' });
  const n = Number(m[1]) * (m[2] === '' ? 1 : /[Kk]/.test(m[2]!) ? 1024 : 1024 * 1024);
  if (n < 4096 || n > 1048576 || (n & (n - 1)) !== 0) {
    throw new UsageError(`block size ${s} is not a power of two between 4K and 1M`, { hint: 'Use 128K (the default) or 1M.' });
  }
  return n;
}
