/**
 * The one cache root (src/util/cache-root.ts): where it is, how it is made,
 * and the trust check on its directories and on cached blobs and SIFs. The
 * attacks by another user, and the native front's agreement with cacheRoot,
 * are in test/e2e/cache-trust.test.ts.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BlobCache } from '../../../src/oci/cache/store.js';
import { cacheRoot, ensureCacheDir, ensureCacheRoot, entryState, homeDir } from '../../../src/util/cache-root.js';
import { IS_ROOT, makeTempDir, removeTree, testUserIds } from '../../helpers/env.js';

const code = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
};
const mode = (p: string) => fs.lstatSync(p).mode & 0o7777;

describe('util/cache-root', () => {
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir('hpcc-cache-root-');
  });
  afterEach(() => removeTree(dir));

  it('HPCC_CACHEDIR, else XDG_CACHE_HOME/hpcc, else HOME/.cache/hpcc; HOME from the password database when unset or relative, never /tmp', () => {
    const pw = () => '/home/pw';
    expect(cacheRoot({ HPCC_CACHEDIR: '/c/', XDG_CACHE_HOME: '/x', HOME: '/h' }, pw)).to.equal('/c');
    expect(cacheRoot({ XDG_CACHE_HOME: '/x', HOME: '/h' }, pw)).to.equal('/x/hpcc');
    expect(cacheRoot({ HOME: '/h' }, pw)).to.equal('/h/.cache/hpcc');
    expect(cacheRoot({}, pw)).to.equal('/home/pw/.cache/hpcc');
    expect(cacheRoot({ HOME: '' }, pw)).to.equal('/home/pw/.cache/hpcc');
    expect(cacheRoot({ HOME: 'rel' }, pw)).to.equal('/home/pw/.cache/hpcc');
    expect(cacheRoot({ HPCC_CACHEDIR: '', XDG_CACHE_HOME: '' }, pw)).to.equal('/home/pw/.cache/hpcc');
    expect(code(() => homeDir({}, () => ''))).to.equal('HPCC_E_USAGE');
    expect(code(() => homeDir({}, () => 'relative'))).to.equal('HPCC_E_USAGE');
    // the real password database entry of this process
    expect(cacheRoot({})).to.match(/^\/.*\/\.cache\/hpcc$/).and.not.match(/^\/tmp/);
  });

  it('a relative HPCC_CACHEDIR or XDG_CACHE_HOME is refused with a usage error naming it', () => {
    for (const env of [{ HPCC_CACHEDIR: 'cache' }, { XDG_CACHE_HOME: './x', HOME: '/h' }]) {
      try {
        cacheRoot(env);
        expect.fail(`accepted ${JSON.stringify(env)}`);
      } catch (e) {
        expect((e as { code?: string }).code).to.equal('HPCC_E_USAGE');
        expect((e as Error).message).to.contain(Object.keys(env)[0]).and.contain('relative');
      }
    }
  });

  it('the root is created 0700 with its parents; an older root of ours is tightened to 0700', () => {
    const root = path.join(dir, 'a', 'b', 'hpcc');
    expect(ensureCacheRoot(root)).to.equal(root);
    expect(mode(root)).to.equal(0o700);
    expect(mode(path.dirname(root))).to.equal(0o700);
    const old = path.join(dir, 'old');
    fs.mkdirSync(old, { mode: 0o755 });
    fs.chmodSync(old, 0o755);
    ensureCacheRoot(old);
    expect(mode(old)).to.equal(0o700);
  });

  it('a root that is a symbolic link, writable by others or not ours is refused (HPCC_E_CACHE_UNTRUSTED)', function () {
    const target = path.join(dir, 'target');
    fs.mkdirSync(target, { mode: 0o700 });
    fs.symlinkSync(target, path.join(dir, 'link'));
    expect(code(() => ensureCacheRoot(path.join(dir, 'link')))).to.equal('HPCC_E_CACHE_UNTRUSTED');
    fs.symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
    expect(code(() => ensureCacheRoot(path.join(dir, 'dangling')))).to.equal('HPCC_E_CACHE_UNTRUSTED');
    const gw = path.join(dir, 'gw');
    fs.mkdirSync(gw);
    fs.chmodSync(gw, 0o770);
    expect(code(() => ensureCacheRoot(gw))).to.equal('HPCC_E_CACHE_UNTRUSTED');
    expect(mode(gw), 'left as it was').to.equal(0o770);
    if (!IS_ROOT) return this.skip();
    const foreign = path.join(dir, 'foreign');
    fs.mkdirSync(foreign, { mode: 0o700 });
    fs.chownSync(foreign, testUserIds().uid, testUserIds().gid);
    expect(code(() => ensureCacheRoot(foreign))).to.equal('HPCC_E_CACHE_UNTRUSTED');
  });

  it('a cache directory that fails the check is moved aside and made again', () => {
    const root = ensureCacheRoot(path.join(dir, 'hpcc'));
    const elsewhere = path.join(dir, 'elsewhere');
    fs.mkdirSync(elsewhere);
    fs.symlinkSync(elsewhere, path.join(root, 'rootfs'));
    fs.mkdirSync(path.join(root, 'launch'));
    fs.chmodSync(path.join(root, 'launch'), 0o777);
    fs.writeFileSync(path.join(root, 'launch', 'planted'), '');
    for (const sub of ['rootfs', 'launch']) {
      expect(ensureCacheDir(root, sub)).to.equal(path.join(root, sub));
      expect(entryState(path.join(root, sub), 'dir')).to.equal('ok');
      expect(mode(path.join(root, sub))).to.equal(0o700);
      expect(fs.readdirSync(path.join(root, sub))).to.deep.equal([]);
    }
    expect(fs.existsSync(elsewhere), 'a symlink target is not removed').to.equal(true);
  });

  it('blobs and SIFs: written 0600 in 0700 directories; one that is a symbolic link, not ours or writable by others is fetched or built again', async function () {
    const cache = new BlobCache(path.join(dir, 'hpcc'));
    const data = Buffer.from('the real blob');
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const p = await cache.putBytes(digest, data);
    expect(mode(p)).to.equal(0o600);
    for (const d of [cache.root, cache.blobDir, path.dirname(cache.blobDir), cache.sifDir, cache.lockDir]) expect(mode(d), d).to.equal(0o700);
    // planted in place of the blob: a link to a file of the same size, a file writable by others
    const decoy = path.join(dir, 'decoy');
    fs.writeFileSync(decoy, Buffer.alloc(data.length, 0x41));
    const plants: Array<() => void> = [
      () => fs.symlinkSync(decoy, p),
      () => {
        fs.writeFileSync(p, Buffer.alloc(data.length, 0x42));
        fs.chmodSync(p, 0o666);
      },
    ];
    if (IS_ROOT) {
      plants.push(() => {
        fs.writeFileSync(p, Buffer.alloc(data.length, 0x43), { mode: 0o600 });
        fs.chownSync(p, testUserIds().uid, testUserIds().gid);
      });
    }
    for (const plant of plants) {
      fs.rmSync(p, { force: true });
      plant();
      expect(await cache.hasBlob(digest, data.length)).to.equal(false);
      const r = await cache.ensureBlob(digest, data.length, async (fh) => {
        await fh.writeFile(data);
      });
      expect(r.fetched).to.equal(true);
      expect(fs.readFileSync(p)).to.deep.equal(data);
      expect(entryState(p, 'file')).to.equal('ok');
    }
    expect(fs.readFileSync(decoy)).to.deep.equal(Buffer.alloc(data.length, 0x41));
    // a SIF planted with group write is built again
    const md = `sha256:${'1'.repeat(64)}`;
    await cache.prepare();
    fs.writeFileSync(cache.sifPath(md, ''), 'planted');
    fs.chmodSync(cache.sifPath(md, ''), 0o664);
    expect(await cache.hasSif(md, '')).to.equal(false);
    const s = await cache.ensureSif(md, '', async (tmp) => fs.writeFileSync(tmp, 'built', { mode: 0o644 }));
    expect([s.fetched, fs.readFileSync(s.path, 'utf8'), mode(s.path)]).to.deep.equal([true, 'built', 0o600]);
  });
});
