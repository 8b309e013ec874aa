/**
 * The extraction fallback: when FUSE or squashfuse is unavailable, or on
 * --unsquash, the image's root filesystem is extracted with hpcc's own
 * squashfs reader into the user's cache and launched from there.
 *
 * One extraction per image: the cache key hashes the SIF's identity
 * (device, inode, size, mtime and ctime of the file, partition offset and
 * size), so a rebuilt, replaced or touched-back image gets a new entry. Made once and atomic: a
 * per-key lock (the cache's lock files, stale when the holder died) lets one
 * process extract while concurrent launches wait for its tree; the tree is
 * written into a private temporary directory and renamed into place, so a
 * reader never sees a half-written tree. Without the lock (a cache on a file
 * system refusing O_EXCL) the rename still decides: the loser removes its copy.
 *
 * Cache: the cache root (src/util/cache-root.ts); entries live in
 * rootfs/<key>. The key is computable by anyone who can read the image, so
 * an entry is used only when cache-root.ts's trust check passes (a
 * directory of ours, not a symbolic link, not writable by group or others,
 * in checked directories of the 0700 root); any other is moved aside and
 * the image extracted afresh.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HpccIOError, addContext } from '../errors/index.js';
import { extractTree } from '../formats/squashfs/index.js';
import type { OpenedImage } from './image.js';
import { removeTree } from '../util/remove-tree.js';
import { acquireLock } from '../oci/cache/lock.js';
import { cacheRoot, ensureCacheDir, entryState, moveAside } from '../util/cache-root.js';

/** Bump an entry's times on use: `hpcc cache clean --type extract --days N` removes trees unused for N days. */
export function markUsed(dir: string): void {
  try {
    const now = new Date();
    fs.utimesSync(dir, now, now);
  } catch {
    /* best effort: another user's tree, a read-only cache */
  }
}

/** The extracted root of the open image `img` (file `image`), extracting it first when the cache lacks it; `img` stays open. */
export async function extractedRoot(img: OpenedImage, image: string, onNotice: (msg: string) => void = () => undefined): Promise<string> {
  const st = img.stat;
  const part = img.sif.primaryPartition();
  const key = createHash('sha256')
    .update(JSON.stringify([st.dev, st.ino, st.size, Math.floor(st.mtimeMs), Math.floor(st.ctimeMs), part.offset, part.size]))
    .digest('hex')
    .slice(0, 32);
  const cache = cacheRoot();
  const root = ensureCacheDir(cache, 'rootfs');
  const final = path.join(root, key);
  // An existing tree of ours counts as a use (for `hpcc cache clean --days`); any other is moved aside.
  const ready = (): boolean => {
    const state = entryState(final, 'dir');
    if (state === 'missing') return false;
    if (state !== 'ok') {
      onNotice(`Ignoring the cached extraction ${final}: ${state}`);
      if (!moveAside(final)) {
        throw new HpccIOError('HPCC_E_CACHE_UNTRUSTED', `cached extraction ${final} is ${state} and cannot be moved aside: hpcc does not use it`, {
          hint: 'Remove it, or set HPCC_CACHEDIR to another absolute path.',
        });
      }
      return false;
    }
    markUsed(final);
    return true;
  };
  if (ready()) return final;
  const lockDir = ensureCacheDir(cache, 'locks');
  let waiting = false;
  const lock = await acquireLock(path.join(lockDir, `extract-${key}.lock`), {
    satisfied: async () => {
      if (!waiting) {
        waiting = true;
        onNotice(`Waiting for another hpcc process extracting ${image}`);
      }
      return ready();
    },
  });
  if (lock === null) return final;
  try {
    if (ready()) return final;
    const tmp = path.join(root, `.tmp-${key}-${process.pid}-${randomBytes(4).toString('hex')}`);
    onNotice(`Extracting ${image} into ${final} (once per image; FUSE mounts are unavailable or --unsquash was given)`);
    try {
      await extractTree(img.rootfs, tmp, { applyOwnership: false });
      // extractTree applies the image's directory modes; the root itself must be traversable.
      fs.chmodSync(tmp, 0o755);
      try {
        fs.renameSync(tmp, final);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
        removeTree(tmp); // another launch finished first: use its copy
      }
    } catch (e) {
      removeTree(tmp);
      throw addContext(`extract ${image} into the cache`, e);
    }
  } finally {
    await lock.release();
  }
  return final;
}
