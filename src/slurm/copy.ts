/**
 * Copy a file while hashing it (one read of the source): the new file is made
 * O_EXCL with mode 0600, written, fsynced and closed; the caller compares the
 * SHA-256 and renames it into place. Any error leaves the partial copy for the
 * caller to remove (src/slurm/stage.ts).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';

export function hashCopy(src: string, dst: string): { sha256: string; size: number } {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  // O_NONBLOCK: a FIFO put in the image's place must not hang the rank (refused below)
  const inFd = fs.openSync(src, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    if (!fs.fstatSync(inFd).isFile()) throw Object.assign(new Error(`${src} is not a regular file`), { code: 'EINVAL' });
    const outFd = fs.openSync(dst, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      let size = 0;
      for (;;) {
        const n = fs.readSync(inFd, buf, 0, buf.length, size);
        if (n === 0) break;
        h.update(buf.subarray(0, n));
        for (let off = 0; off < n; ) off += fs.writeSync(outFd, buf, off, n - off);
        size += n;
      }
      fs.fsyncSync(outFd);
      return { sha256: h.digest('hex'), size };
    } finally {
      fs.closeSync(outFd);
    }
  } finally {
    fs.closeSync(inFd);
  }
}
