import { expect } from 'chai';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DigestMismatchError } from '../../../../src/errors/index.js';
import { acquireLock } from '../../../../src/oci/cache/lock.js';
import { BlobCache } from '../../../../src/oci/cache/store.js';
import { cleanCache, listCache } from '../../../../src/oci/cache/manage.js';
import { makeTempDir, removeTree } from '../../../helpers/env.js';
import { holdLockInChild } from '../../../helpers/lock-holder.js';

/** An early fetch (BlobCache.ensureBlob's { start }) writing `data`, counting its calls. */
function countingEarlyFetch(data: Buffer) {
  const n = { start: 0, into: 0, cancel: 0 };
  const fetch = {
    start() {
      n.start++;
      return {
        into: async (fh: import('node:fs/promises').FileHandle) => {
          n.into++;
          await fh.writeFile(data);
        },
        cancel: () => {
          n.cancel++;
        },
      };
    },
  };
  return { n, fetch };
}

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('cache locks and blob store', () => {
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir('hpcc-cache-');
  });
  afterEach(() => removeTree(dir));

  it('a lock held by a live process blocks; after that process is SIGKILLed it is taken over', async () => {
    const lockPath = path.join(dir, 'x.lock');
    const child = await holdLockInChild(lockPath);
    try {
      try {
        await acquireLock(lockPath, { timeoutMs: 300 });
        expect.fail('took a live lock');
      } catch (e) {
        expect((e as { code?: string }).code).to.equal('HPCC_E_CACHE_LOCK_TIMEOUT');
      }
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const t0 = Date.now();
      const held = await acquireLock(lockPath, { timeoutMs: 5000 });
      expect(Date.now() - t0).to.be.lessThan(2000);
      expect(JSON.parse(fs.readFileSync(lockPath, 'utf8')).pid).to.equal(process.pid);
      await held!.release();
      expect(fs.existsSync(lockPath)).to.equal(false);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a lock from another boot is stale; a lock from another host is respected until its heartbeat ages', async () => {
    const lockPath = path.join(dir, 'y.lock');
    fs.writeFileSync(lockPath, JSON.stringify({ pid: process.pid, boot: 'another-boot', start: '1', host: (await import('node:os')).hostname() }));
    const a = await acquireLock(lockPath, { timeoutMs: 1000 });
    await a!.release();
    fs.writeFileSync(lockPath, JSON.stringify({ pid: 1, boot: 'b', start: '1', host: 'elsewhere.example' }));
    try {
      await acquireLock(lockPath, { timeoutMs: 200 });
      expect.fail('took a fresh remote lock');
    } catch (e) {
      expect((e as { code?: string }).code).to.equal('HPCC_E_CACHE_LOCK_TIMEOUT');
    }
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(lockPath, old, old);
    const b = await acquireLock(lockPath, { timeoutMs: 1000 });
    await b!.release();
  });

  it('a live holder on this host keeps its lock even when its heartbeat is old (a long extraction)', async () => {
    const lockPath = path.join(dir, 'live.lock');
    const { processStartTime } = await import('../../../../src/oci/cache/lock.js');
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    fs.writeFileSync(lockPath, JSON.stringify({ pid: process.pid, boot, start: processStartTime(process.pid), host: (await import('node:os')).hostname() }));
    const old = new Date(Date.now() - 600_000);
    fs.utimesSync(lockPath, old, old);
    try {
      await acquireLock(lockPath, { timeoutMs: 200 });
      expect.fail('broke a live holder\'s lock');
    } catch (e) {
      expect((e as { code?: string }).code).to.equal('HPCC_E_CACHE_LOCK_TIMEOUT');
    }
    expect(fs.existsSync(lockPath)).to.equal(true);
  });

  it('ensureBlob: verified content lands once; concurrent callers fetch once', async () => {
    const cache = new BlobCache(dir);
    const data = Buffer.from('hello blob '.repeat(1000));
    const d = digestOf(data);
    let fetches = 0;
    const fetch = async (fh: import('node:fs/promises').FileHandle) => {
      fetches++;
      await new Promise((r) => setTimeout(r, 100));
      await fh.writeFile(data);
    };
    const rs = await Promise.all([cache.ensureBlob(d, data.length, fetch), cache.ensureBlob(d, data.length, fetch), cache.ensureBlob(d, data.length, fetch)]);
    expect(fetches).to.equal(1);
    expect(rs.filter((r) => r.fetched)).to.have.length(1);
    expect(fs.readFileSync(cache.blobPath(d))).to.deep.equal(data);
    expect(fs.readdirSync(cache.blobDir)).to.deep.equal([d.slice(7)]);
    const back: Buffer[] = [];
    for await (const c of cache.readBlob(d, data.length)) back.push(Buffer.from(c));
    expect(Buffer.concat(back)).to.deep.equal(data);
  });

  it('an early fetch starts before the lock is taken and is written once it is held', async () => {
    const cache = new BlobCache(dir);
    const data = Buffer.from('early '.repeat(500));
    const d = digestOf(data);
    const { n, fetch } = countingEarlyFetch(data);
    const r = await cache.ensureBlob(d, data.length, fetch);
    expect(r.fetched).to.equal(true);
    expect(n).to.deep.equal({ start: 1, into: 1, cancel: 0 });
    expect(fs.readFileSync(cache.blobPath(d))).to.deep.equal(data);
    // cached: not started again; concurrent callers in one process share one fetch
    const again = countingEarlyFetch(data);
    await cache.ensureBlob(d, data.length, again.fetch);
    expect(again.n.start).to.equal(0);
    const other = Buffer.from('other '.repeat(500));
    const shared = countingEarlyFetch(other);
    const rs = await Promise.all([1, 2, 3].map(() => cache.ensureBlob(digestOf(other), other.length, shared.fetch)));
    expect(shared.n).to.deep.equal({ start: 1, into: 1, cancel: 0 });
    expect(rs.filter((x) => x.fetched)).to.have.length(1);
  });

  it('an early fetch is dropped while another process holds the lock, and started afresh when that holder dies without the blob', async () => {
    const cache = new BlobCache(dir);
    const data = Buffer.from('held '.repeat(500));
    const d = digestOf(data);
    await cache.prepare();
    const child = await holdLockInChild(cache.lockPath('blob', d.slice(7)));
    try {
      const { n, fetch } = countingEarlyFetch(data);
      let waiting!: () => void;
      const waited = new Promise<void>((r) => (waiting = r));
      const result = cache.ensureBlob(d, data.length, fetch, () => waiting());
      await waited;
      expect(n).to.deep.equal({ start: 1, into: 0, cancel: 1 });
      child.kill('SIGKILL');
      const r = await result;
      expect(r.fetched).to.equal(true);
      expect(n).to.deep.equal({ start: 2, into: 1, cancel: 1 });
      expect(fs.readdirSync(cache.blobDir)).to.deep.equal([d.slice(7)]);
      expect(fs.readdirSync(cache.lockDir)).to.deep.equal([]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a holder killed after its rename but before its release: the next ensureBlob/ensureSif clears the dead lock', async () => {
    const cache = new BlobCache(dir);
    const data = Buffer.from('z'.repeat(300));
    const d = digestOf(data);
    await cache.putBytes(d, data);
    // a dead pid on this host and boot (pid_max is below 2^22 by default)
    const os = await import('node:os');
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const dead = JSON.stringify({ pid: 4_194_303, boot, start: '1', host: os.hostname() });
    const blobLock = cache.lockPath('blob', d.slice(7));
    fs.writeFileSync(blobLock, dead);
    const r = await cache.ensureBlob(d, data.length, async () => expect.fail('refetched a cached blob'));
    expect(r.fetched).to.equal(false);
    expect(fs.existsSync(blobLock)).to.equal(false);
    // a live holder's lock is left alone
    fs.writeFileSync(blobLock, JSON.stringify({ pid: process.pid, boot, start: (await import('../../../../src/oci/cache/lock.js')).processStartTime(process.pid), host: os.hostname() }));
    await cache.ensureBlob(d, data.length, async () => expect.fail('refetched a cached blob'));
    expect(fs.existsSync(blobLock)).to.equal(true);
    fs.rmSync(blobLock);
    const built = await cache.ensureSif(d, '', async (tmp) => fs.writeFileSync(tmp, 'sif'));
    expect(built.fetched).to.equal(true);
    const sifLock = cache.lockPath('sif', d.slice(7));
    fs.writeFileSync(sifLock, dead);
    const again = await cache.ensureSif(d, '', async () => expect.fail('rebuilt a cached SIF'));
    expect(again.fetched).to.equal(false);
    expect(fs.existsSync(sifLock)).to.equal(false);
  });

  it('a failed or short fetch leaves nothing (no blob, no temp, no lock)', async () => {
    const cache = new BlobCache(dir);
    const data = Buffer.from('x'.repeat(100));
    const d = digestOf(data);
    try {
      await cache.ensureBlob(d, 100, async (fh) => {
        await fh.writeFile(data.subarray(0, 50));
      });
      expect.fail('short blob accepted');
    } catch (e) {
      expect(e).to.be.instanceOf(DigestMismatchError);
    }
    expect(fs.readdirSync(cache.blobDir)).to.deep.equal([]);
    expect(fs.readdirSync(cache.lockDir)).to.deep.equal([]);
  });

  it('a corrupted cached blob is caught when read', async () => {
    const cache = new BlobCache(dir);
    const data = Buffer.from('y'.repeat(4096));
    const d = digestOf(data);
    await cache.putBytes(d, data);
    const p = cache.blobPath(d);
    fs.chmodSync(p, 0o644);
    const bad = Buffer.from(data);
    bad[10] = 0x7a;
    fs.writeFileSync(p, bad);
    try {
      for await (const _ of cache.readBlob(d, data.length)) void _;
      expect.fail('corruption not detected');
    } catch (e) {
      expect(e).to.be.instanceOf(DigestMismatchError);
    }
  });

  it('list and clean: --days keeps recent entries, temps of dead processes go, busy entries are kept', async () => {
    const cache = new BlobCache(dir);
    const a = Buffer.from('a'.repeat(10));
    const b = Buffer.from('b'.repeat(20));
    await cache.putBytes(digestOf(a), a);
    await cache.putBytes(digestOf(b), b);
    const old = new Date(Date.now() - 10 * 86_400_000);
    fs.utimesSync(cache.blobPath(digestOf(a)), old, old);
    fs.writeFileSync(path.join(cache.blobDir, `.tmp-${'c'.repeat(64)}-999999999-abcd`), 'partial');
    const list = await listCache(cache);
    expect(list.map((e) => e.type).sort()).to.deep.equal(['blob', 'blob', 'temp']);
    const dry = await cleanCache(cache, { days: 5, dryRun: true });
    expect(dry.removed.map((e) => e.type).sort()).to.deep.equal(['blob', 'temp']);
    expect((await listCache(cache)).length).to.equal(3);
    // b is "in use": its lock is held
    const held = await acquireLock(cache.lockPath('blob', digestOf(b).slice(7)));
    const r = await cleanCache(cache, {});
    await held!.release();
    expect(r.removed.map((e) => e.name).sort()).to.deep.equal([digestOf(a), `.tmp-${'c'.repeat(64)}-999999999-abcd`].sort());
    expect(r.busy.map((e) => e.name)).to.deep.equal([digestOf(b)]);
    expect(fs.readdirSync(cache.blobDir)).to.deep.equal([digestOf(b).slice(7)]);
  });
});
