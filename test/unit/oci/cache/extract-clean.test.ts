import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMounted, listExtractions } from '../../../../src/oci/cache/extract.js';
import { cleanCache, listCache } from '../../../../src/oci/cache/manage.js';
import { BlobCache } from '../../../../src/oci/cache/store.js';
import { makeTempDir, removeTree, requireTools } from '../../../helpers/env.js';

const KEY_A = 'a'.repeat(32);
const KEY_B = 'b'.repeat(32);

/** A pid that no process has now (a child that already exited). */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(String(r.stdout).trim());
}

/** An extracted tree like the launcher's: files, a symlink and a read-only directory. */
function makeTree(dir: string, bytes: number): void {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'ro'));
  fs.writeFileSync(path.join(dir, 'bin', 'f'), Buffer.alloc(bytes, 1));
  fs.writeFileSync(path.join(dir, 'ro', 'g'), 'xy');
  fs.symlinkSync('bin/f', path.join(dir, 'link'));
  fs.chmodSync(path.join(dir, 'ro'), 0o555);
}

describe('cache: the launcher extraction cache (--type extract)', () => {
  let dir: string;
  let cache: BlobCache;
  let holder: ChildProcess | undefined;
  beforeEach(() => {
    dir = makeTempDir('hpcc-extract-cache-');
    cache = new BlobCache(path.join(dir, 'cache'));
  });
  afterEach(() => {
    if (holder && holder.exitCode === null) holder.kill('SIGKILL');
    holder = undefined;
    spawnSync('chmod', ['-R', 'u+w', dir]);
    removeTree(dir);
  });

  it('lists finished trees with their bytes and temp trees of dead processes; skips live temps and foreign names', async () => {
    const rootfs = path.join(cache.root, 'rootfs');
    makeTree(path.join(rootfs, KEY_A), 1000);
    makeTree(path.join(rootfs, `.tmp-${KEY_B}-${deadPid()}-0123abcd`), 10);
    makeTree(path.join(rootfs, `.tmp-${KEY_B}-${process.pid}-0123abcd`), 10); // in progress
    fs.mkdirSync(path.join(rootfs, 'not-a-key'));
    fs.writeFileSync(path.join(rootfs, 'b'.repeat(40)), 'a file, not a tree');
    const l = listExtractions(cache.root);
    expect(l.map((e) => [e.type, e.name.slice(0, 8), e.size])).to.deep.equal([
      ['temp', `.tmp-${'b'.repeat(3)}`, 12],
      ['extract', 'a'.repeat(8), 1002],
    ]);
    const all = await listCache(cache, 'all');
    expect(all.filter((e) => e.type === 'extract')).to.have.length(1);
    expect(await listCache(cache, 'blob')).to.deep.equal([]);
  });

  it('clean --days keeps recently used trees, removes old ones (read-only directories too); --dry-run removes nothing', async () => {
    const rootfs = path.join(cache.root, 'rootfs');
    makeTree(path.join(rootfs, KEY_A), 100);
    makeTree(path.join(rootfs, KEY_B), 200);
    const dead = `.tmp-${KEY_B}-${deadPid()}-0123abcd`;
    makeTree(path.join(rootfs, dead), 5);
    // Used now: --days 1 removes only the dead process's temp tree.
    let r = await cleanCache(cache, { type: 'extract', days: 1 });
    expect(r.removed.map((e) => e.name)).to.deep.equal([dead]);
    expect(fs.readdirSync(rootfs).sort()).to.deep.equal([KEY_A, KEY_B]);
    // Seen from 3 days later: both are unused for 2 days.
    const later = Date.now() + 3 * 86_400_000;
    r = await cleanCache(cache, { type: 'extract', days: 2, dryRun: true, now: later });
    expect(r.dryRun).to.equal(true);
    expect(r.removed.map((e) => e.name).sort()).to.deep.equal([KEY_A, KEY_B]);
    expect(r.bytes).to.equal(102 + 202);
    expect(fs.readdirSync(rootfs).sort()).to.deep.equal([KEY_A, KEY_B]);
    r = await cleanCache(cache, { type: 'sif', days: 2, now: later });
    expect(r.removed).to.deep.equal([]);
    r = await cleanCache(cache, { type: 'extract', days: 4, now: later });
    expect(r.removed).to.deep.equal([]);
    r = await cleanCache(cache, { type: 'all', days: 2, now: later });
    expect(r.removed.map((e) => e.type)).to.deep.equal(['extract', 'extract']);
    expect(fs.readdirSync(rootfs)).to.deep.equal([]);
  });

  it('a tree mounted in another mount namespace is in use: kept by clean (and dry-run), removed once unmounted', async function () {
    requireTools(this, 'unshare');
    const rootfs = path.join(cache.root, 'rootfs');
    const entry = path.join(rootfs, KEY_A);
    makeTree(entry, 10);
    makeTree(path.join(rootfs, KEY_B), 10);
    const mnt = path.join(dir, 'mnt');
    fs.mkdirSync(mnt);
    // What the launcher does: bind the extracted tree (here: a directory inside it) in a private mount namespace.
    holder = spawn('unshare', ['-rm', 'sh', '-c', 'mount --bind "$0/bin" "$1" && echo ready && exec sleep 60', entry, mnt], { stdio: ['ignore', 'pipe', 'pipe'] });
    const ready = await new Promise<string>((resolve) => {
      let out = '';
      holder!.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve('ready');
      });
      holder!.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      holder!.on('exit', () => resolve(out));
    });
    if (ready !== 'ready') {
      if (/Operation not permitted|cannot|unshare failed/i.test(ready)) this.skip(); // no user namespaces here
      throw new Error(`bind mount failed: ${ready}`);
    }
    expect(isMounted(entry)).to.equal(true);
    expect(isMounted(path.join(rootfs, KEY_B))).to.equal(false);
    let r = await cleanCache(cache, { type: 'extract', dryRun: true });
    expect(r.busy.map((e) => e.name)).to.deep.equal([KEY_A]);
    expect(r.removed.map((e) => e.name)).to.deep.equal([KEY_B]);
    r = await cleanCache(cache, { type: 'extract' });
    expect(r.busy.map((e) => e.name)).to.deep.equal([KEY_A]);
    expect(r.removed.map((e) => e.name)).to.deep.equal([KEY_B]);
    expect(fs.readdirSync(rootfs)).to.deep.equal([KEY_A]);
    expect(fs.readFileSync(path.join(entry, 'ro', 'g'), 'utf8')).to.equal('xy');
    holder.kill('SIGKILL');
    await new Promise((resolve) => (holder!.exitCode !== null ? resolve(null) : holder!.once('exit', resolve)));
    r = await cleanCache(cache, { type: 'extract' });
    expect(r.removed.map((e) => e.name)).to.deep.equal([KEY_A]);
    expect(fs.readdirSync(rootfs)).to.deep.equal([]);
  });
});
