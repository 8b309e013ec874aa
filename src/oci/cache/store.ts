/**
 * hpcc's content-addressed cache.
 *   the cache root (src/util/cache-root.ts: $HPCC_CACHEDIR, else
 *   $XDG_CACHE_HOME/hpcc, else ~/.cache/hpcc; 0700, private to its user)
 *     blobs/sha256/<hex>                 verified blobs (layers, configs)
 *     blobs/sha256/.tmp-<hex>-<pid>-<r>  downloads in progress (same dir: rename is atomic)
 *     sif/sha256/<hex>[-<variant>].sif   converted images, keyed by platform manifest digest
 *     locks/<kind>-<hex>.lock            per-entry locks (lock.ts)
 * A blob enters only after its sha256 and size were verified while streaming,
 * fsync'd, and renamed into place; its mtime is bumped on every use so
 * `hpcc cache clean --days N` removes what was not used for N days.
 * Directories are 0700 and files 0600; an entry that is not ours (owner,
 * mode, a symbolic link: cache-root.ts's trust check) counts as missing and
 * is replaced.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { DigestMismatchError } from '../../errors/index.js';
import { cacheRoot, ensureCacheDir, entryState } from '../../util/cache-root.js';
import { checkDigest } from '../registry/client.js';
import { acquireLock, breakIfStale, processStartTime, type HeldLock } from './lock.js';

const hexOf = (digest: string) => digest.slice('sha256:'.length);

export interface EnsureResult {
  path: string;
  /** false when it was already cached (or another process fetched it meanwhile) */
  fetched: boolean;
}

/** A download started before its lock is held: into() writes it, cancel() drops it unread. */
export interface EarlyFetch {
  into(fh: fsp.FileHandle): Promise<void>;
  cancel(): void;
}

/** Writes a blob's verified bytes into the temp file; or starts that early (see ensureBlob). */
export type BlobFetch = ((fh: fsp.FileHandle) => Promise<void>) | { start(): EarlyFetch };

/** ensureBlob calls running in this process, by blob path */
const inflight = new Map<string, Promise<EnsureResult>>();

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

  private dirsMade: Promise<void> | undefined;
  /**
   * Create the cache's directories, once per cache object (a pull calls it as
   * it starts, so the layers' downloads find them made).
   */
  prepare(): Promise<void> {
    this.dirsMade ??= (async () => {
      for (const d of [this.blobDir, this.sifDir, this.lockDir]) ensureCacheDir(this.root, ...path.relative(this.root, d).split(path.sep));
    })();
    return this.dirsMade;
  }

  /** 'ok' when the blob is cached, ours, with the right size (its mtime is bumped: "used"). */
  private async blobState(digest: string, size: number): Promise<'ok' | 'missing' | 'wrong'> {
    const p = this.blobPath(digest);
    let st: fs.Stats;
    try {
      st = await fsp.lstat(p);
    } catch {
      return 'missing';
    }
    if (entryState(p, 'file') !== 'ok' || st.size !== size) return 'wrong';
    const now = new Date();
    await fsp.utimes(p, now, now).catch(() => undefined);
    return 'ok';
  }

  /** True when the blob is cached with the right size (its mtime is bumped: "used"). */
  async hasBlob(digest: string, size: number): Promise<boolean> {
    return (await this.blobState(digest, size)) === 'ok';
  }

  /**
   * Make sure a blob is cached: if not, take its lock and have `fetch` write
   * the verified bytes into a fresh temp file (the client checks digest and
   * size while streaming). Size is checked again from the file before the
   * rename. Concurrent callers wait for one download.
   * An early fetch ({ start }) is started before the lock is taken (a GET
   * sent while the lock and temp file are made) and cancelled when the lock
   * is not free at once: a download another process is doing is waited for
   * without a request held open, and started afresh if that process fails.
   */
  async ensureBlob(digest: string, size: number, fetch: BlobFetch, onWait?: () => void): Promise<EnsureResult> {
    const final = this.blobPath(digest);
    // One download per blob in this process; the others wait for it (and try themselves if it fails).
    const prior = inflight.get(final);
    if (prior) {
      onWait?.();
      if (await prior.then(() => true, () => false)) return { path: final, fetched: false };
    }
    const p = this.ensureBlobOnce(digest, size, fetch, onWait);
    if (!inflight.has(final)) {
      inflight.set(final, p);
      const forget = () => inflight.get(final) === p && inflight.delete(final);
      p.then(forget, forget);
    }
    return p;
  }

  private async ensureBlobOnce(digest: string, size: number, fetch: BlobFetch, onWait?: () => void): Promise<EnsureResult> {
    const final = this.blobPath(digest);
    if ((await this.blobState(digest, size)) === 'ok') {
      // A holder killed between its rename and its release leaves a stale lock behind.
      await breakIfStale(this.lockPath('blob', hexOf(digest)));
      return { path: final, fetched: false };
    }
    let early = typeof fetch === 'function' ? undefined : fetch.start();
    const dropEarly = () => {
      early?.cancel();
      early = undefined;
    };
    let lock: HeldLock | null;
    try {
      await this.prepare();
      let waited = false;
      lock = await acquireLock(this.lockPath('blob', hexOf(digest)), {
        satisfied: async () => {
          if (!waited) {
            waited = true;
            dropEarly();
            onWait?.();
          }
          return this.hasBlob(digest, size);
        },
      });
    } catch (e) {
      dropEarly();
      throw e;
    }
    if (lock === null) return { path: final, fetched: false };
    let sweep: Promise<void> | undefined;
    try {
      // Another process may have finished it between the first look and the lock.
      const now = await this.blobState(digest, size);
      if (now === 'ok') return { path: final, fetched: false };
      if (now === 'wrong') await fsp.rm(final, { force: true }); // a wrong-sized leftover
      const tmp = path.join(this.blobDir, `.tmp-${hexOf(digest)}-${process.pid}-${randomBytes(4).toString('hex')}`);
      const fh = await fsp.open(tmp, 'wx', 0o600);
      // Temp files of dead processes for this blob go while the download runs.
      sweep = removeDeadTemps(this.blobDir, `.tmp-${hexOf(digest)}-`, path.basename(tmp));
      try {
        if (typeof fetch === 'function') await fetch(fh);
        else {
          const run = early ?? fetch.start();
          early = undefined;
          await run.into(fh);
        }
        await fh.sync();
        await verifySize(fh, digest, size);
        await fh.close();
        await fsp.rename(tmp, final);
        await syncDir(this.blobDir);
      } catch (e) {
        await fh.close().catch(() => undefined);
        await fsp.rm(tmp, { force: true });
        throw e;
      }
      return { path: final, fetched: true };
    } finally {
      dropEarly();
      await sweep?.catch(() => undefined);
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
    const fh = await fsp.open(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    const rs = fh.createReadStream({ highWaterMark: 1 << 20 });
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

  /** True when the SIF is cached and ours (its mtime is bumped: "used"). */
  async hasSif(manifestDigest: string, variant: string): Promise<boolean> {
    const p = this.sifPath(manifestDigest, variant);
    if (entryState(p, 'file') !== 'ok') return false;
    const now = new Date();
    await fsp.utimes(p, now, now).catch(() => undefined);
    return true;
  }

  /**
   * Produce a cached SIF once: if missing, take its lock and call `build` with a
   * temp path in the same directory, then rename. Returns the SIF path.
   */
  async ensureSif(manifestDigest: string, variant: string, build: (tmpPath: string) => Promise<void>): Promise<EnsureResult> {
    const final = this.sifPath(manifestDigest, variant);
    const exists = () => this.hasSif(manifestDigest, variant);
    if (await exists()) {
      await breakIfStale(this.lockPath('sif', path.basename(final, '.sif')));
      return { path: final, fetched: false };
    }
    await this.prepare();
    const lock = await acquireLock(this.lockPath('sif', path.basename(final, '.sif')), { satisfied: exists });
    if (lock === null) return { path: final, fetched: false };
    try {
      if (await exists()) return { path: final, fetched: false };
      await removeDeadTemps(this.sifDir, `.tmp-${path.basename(final)}-`);
      const tmp = path.join(this.sifDir, `.tmp-${path.basename(final)}-${process.pid}-${randomBytes(4).toString('hex')}`);
      try {
        await build(tmp);
        await fsp.chmod(tmp, 0o600);
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

async function verifySize(fh: fsp.FileHandle, digest: string, size: number): Promise<void> {
  const st = await fh.stat();
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

/**
 * Remove `<prefix><pid>-<rand>` temp files left by processes that no longer
 * exist (e.g. after SIGKILL) or by this one, except `keep`.
 */
export async function removeDeadTemps(dir: string, prefix: string, keep?: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(prefix) || n === keep) continue;
    const m = /^(\d+)-[a-f0-9]+$/.exec(n.slice(prefix.length));
    if (m && (Number(m[1]) === process.pid || processStartTime(Number(m[1])) === null)) {
      await fsp.rm(path.join(dir, n), { force: true });
    }
  }
}
