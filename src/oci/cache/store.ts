/**
 * hpcc's content-addressed cache.
 *   $HPCC_CACHEDIR (default $XDG_CACHE_HOME/hpcc, else ~/.cache/hpcc)
 *     blobs/sha256/<hex>                 verified blobs (layers, configs)
 *     blobs/sha256/.tmp-<hex>-<pid>-<r>  downloads in progress (same dir: rename is atomic)
 *     sif/sha256/<hex>[-<variant>].sif   converted images, keyed by platform manifest digest
 *     locks/<kind>-<hex>.lock            per-entry locks (lock.ts)
 * A blob enters only after its sha256 and size were verified while streaming,
 * fsync'd, and renamed into place; its mtime is bumped on every use so
 * `hpcc cache clean --days N` removes what was not used for N days.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { DigestMismatchError, addContext } from '../../errors/index.js';
import { checkDigest } from '../registry/client.js';
import { acquireLock, breakIfStale, processStartTime } from './lock.js';

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HPCC_CACHEDIR) return path.resolve(env.HPCC_CACHEDIR);
  if (env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME)) return path.join(env.XDG_CACHE_HOME, 'hpcc');
  return path.join(env.HOME || os.homedir(), '.cache', 'hpcc');
}

const hexOf = (digest: string) => digest.slice('sha256:'.length);

export interface EnsureResult {
  path: string;
  /** false when it was already cached (or another process fetched it meanwhile) */
  fetched: boolean;
}

export class BlobCache {
  readonly root: string;
  constructor(root: string = cacheRoot()) {
    this.root = root;
  }

  get blobDir(): string {
    return path.join(this.root, 'blobs', 'sha256');
  }
  get sifDir(): string {
    return path.join(this.root, 'sif', 'sha256');
  }
  get lockDir(): string {
    return path.join(this.root, 'locks');
  }

  blobPath(digest: string): string {
    checkDigest(digest);
    return path.join(this.blobDir, hexOf(digest));
  }

  sifPath(manifestDigest: string, variant = ''): string {
    checkDigest(manifestDigest);
    if (variant !== '' && !/^[A-Za-z0-9._-]{1,64}$/.test(variant)) throw new Error(`bad SIF cache variant ${variant}`);
    return path.join(this.sifDir, `${hexOf(manifestDigest)}${variant ? `-${variant}` : ''}.sif`);
  }

  lockPath(kind: 'blob' | 'sif', key: string): string {
    return path.join(this.lockDir, `${kind}-${key}.lock`);
  }

  private async mkdirs(): Promise<void> {
    for (const d of [this.blobDir, this.sifDir, this.lockDir]) {
      await fsp.mkdir(d, { recursive: true, mode: 0o755 }).catch((e) => {
        throw addContext(`create cache directory ${d}`, e);
      });
    }
  }

  /** True when the blob is cached with the right size (its mtime is bumped: "used"). */
  async hasBlob(digest: string, size: number): Promise<boolean> {
    const p = this.blobPath(digest);
    try {
      const st = await fsp.stat(p);
      if (!st.isFile() || st.size !== size) return false;
      const now = new Date();
      await fsp.utimes(p, now, now).catch(() => undefined);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Make sure a blob is cached: if not, take its lock and call `fetch` with a
   * fresh temp file; `fetch` must write the verified bytes (the client checks
   * digest and size while streaming). Size and digest are checked again from
   * the file before the rename. Concurrent callers wait for one download.
   */
  async ensureBlob(
    digest: string,
    size: number,
    fetch: (fh: fsp.FileHandle) => Promise<void>,
    onWait?: () => void,
  ): Promise<EnsureResult> {
    const final = this.blobPath(digest);
    if (await this.hasBlob(digest, size)) {
      // A holder killed between its rename and its release leaves a stale lock behind.
      await breakIfStale(this.lockPath('blob', hexOf(digest)));
      return { path: final, fetched: false };
    }
    await this.mkdirs();
    let waited = false;
    const lock = await acquireLock(this.lockPath('blob', hexOf(digest)), {
      satisfied: async () => {
        if (!waited) {
          waited = true;
          onWait?.();
        }
        return this.hasBlob(digest, size);
      },
    });
    if (lock === null) return { path: final, fetched: false };
    try {
      if (await this.hasBlob(digest, size)) return { path: final, fetched: false };
      await fsp.rm(final, { force: true }); // a wrong-sized leftover
      await removeDeadTemps(this.blobDir, `.tmp-${hexOf(digest)}-`);
      const tmp = path.join(this.blobDir, `.tmp-${hexOf(digest)}-${process.pid}-${randomBytes(4).toString('hex')}`);
      const fh = await fsp.open(tmp, 'wx', 0o644);
      try {
        await fetch(fh);
        await fh.sync();
        await fh.close();
        await verifyFile(tmp, digest, size);
        await fsp.rename(tmp, final);
        await syncDir(this.blobDir);
      } catch (e) {
        await fh.close().catch(() => undefined);
        await fsp.rm(tmp, { force: true });
        throw e;
      }
      return { path: final, fetched: true };
    } finally {
      await lock.release();
    }
  }

  /** Store small verified bytes (e.g. a config) under their digest. */
  async putBytes(digest: string, bytes: Uint8Array): Promise<string> {
    const r = await this.ensureBlob(digest, bytes.length, async (fh) => {
      await fh.writeFile(bytes);
    });
    return r.path;
  }

  /** Read a cached blob as a stream, verifying digest and size at the end. */
  async *readBlob(digest: string, size: number): AsyncGenerator<Uint8Array> {
    const p = this.blobPath(digest);
    const hash = createHash('sha256');
    let n = 0;
    const rs = fs.createReadStream(p, { highWaterMark: 1 << 20 });
    for await (const chunk of rs) {
      const b = chunk as Buffer;
      n += b.length;
      if (n > size) {
        rs.destroy();
        throw new DigestMismatchError(`cached blob ${digest} is larger than ${size} bytes`, digest, `size > ${size}`);
      }
      hash.update(b);
      yield b;
    }
    const got = `sha256:${hash.digest('hex')}`;
    if (n !== size || got !== digest) {
      throw new DigestMismatchError(`cached blob ${p} does not match ${digest} (${n} bytes, ${got})`, digest, got, {
        hint: `Remove it (hpcc cache clean --type blob) and pull again.`,
      });
    }
  }

  /**
   * Produce a cached SIF once: if missing, take its lock and call `build` with a
   * temp path in the same directory, then rename. Returns the SIF path.
   */
  async ensureSif(manifestDigest: string, variant: string, build: (tmpPath: string) => Promise<void>): Promise<EnsureResult> {
    const final = this.sifPath(manifestDigest, variant);
    const exists = async () => {
      try {
        const st = await fsp.stat(final);
        if (!st.isFile()) return false;
        const now = new Date();
        await fsp.utimes(final, now, now).catch(() => undefined);
        return true;
      } catch {
        return false;
      }
    };
    if (await exists()) {
      await breakIfStale(this.lockPath('sif', path.basename(final, '.sif')));
      return { path: final, fetched: false };
    }
    await this.mkdirs();
    const lock = await acquireLock(this.lockPath('sif', path.basename(final, '.sif')), { satisfied: exists });
    if (lock === null) return { path: final, fetched: false };
    try {
      if (await exists()) return { path: final, fetched: false };
      await removeDeadTemps(this.sifDir, `.tmp-${path.basename(final)}-`);
      const tmp = path.join(this.sifDir, `.tmp-${path.basename(final)}-${process.pid}-${randomBytes(4).toString('hex')}`);
      try {
        await build(tmp);
        await fsp.rename(tmp, final);
        await syncDir(this.sifDir);
      } catch (e) {
        await fsp.rm(tmp, { force: true });
        throw e;
      }
      return { path: final, fetched: true };
    } finally {
      await lock.release();
    }
  }
}

async function verifyFile(p: string, digest: string, size: number): Promise<void> {
  const st = await fsp.stat(p);
  if (st.size !== size) {
    throw new DigestMismatchError(`blob ${digest}: wrote ${st.size} bytes, expected ${size}`, digest, `size ${st.size}`);
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await fsp.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* best effort (some file systems refuse fsync on directories) */
  }
}

/** Remove `<prefix><pid>-<rand>` temp files left by processes that no longer exist (e.g. after SIGKILL). */
export async function removeDeadTemps(dir: string, prefix: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const m = /^(\d+)-[a-f0-9]+$/.exec(n.slice(prefix.length));
    if (m && (Number(m[1]) === process.pid || processStartTime(Number(m[1])) === null)) {
      await fsp.rm(path.join(dir, n), { force: true });
    }
  }
}
