/**
 * The cache against another local user (src/util/cache-root.ts): a second
 * unprivileged user (hpcctest2, scripts/setup-host.sh) plants extracted root
 * filesystems and memo directories where the victim (hpcctest) would look,
 * and reads what the victim cached. Also: a memo never holds a credential,
 * a relative cache variable is refused, and the native front finds its memos
 * in the directory cacheRoot() names under every environment (drift check).
 */
import { expect } from 'chai';
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cacheRoot } from '../../src/util/cache-root.js';
import { HPCC_BIN, IN_CI, REPO_ROOT, TEST_USER, removeTree, requireRoot } from '../helpers/env.js';
import { makeE2eImage, type E2eImage } from './launch-fixture.js';

const FRONT = path.join(REPO_ROOT, 'dist/native/hpcc');
const OTHER = process.env.HPCC_TEST_USER2 ?? 'hpcctest2';
const ids = (user: string) => ({
  uid: Number(execFileSync('id', ['-u', user], { encoding: 'utf8' })),
  gid: Number(execFileSync('id', ['-g', user], { encoding: 'utf8' })),
});
const homeOf = (user: string) => execFileSync('getent', ['passwd', user], { encoding: 'utf8' }).trim().split(':')[5]!;

/** Run as `user` with exactly PATH, USER, LOGNAME and `env` (no HOME unless given). */
function runAs(user: string, cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): SpawnSyncReturns<string> {
  const { uid, gid } = ids(user);
  return spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', cmd, ...args], {
    cwd,
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', USER: user, LOGNAME: user, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
}
const hpcc = (user: string, args: string[], cwd: string, env: Record<string, string> = {}) => runAs(user, process.execPath, [HPCC_BIN, ...args], cwd, env);
/** The planted tree prints this; the real image has no /planted. */
const PROBE = ['sh', '-c', 'cat /planted 2>/dev/null || echo clean'];

describe('e2e: the cache against another local user', function () {
  this.timeout(300_000);
  let img: E2eImage;
  let work: string; // a directory both users can write below (sticky, like /tmp)

  before(function () {
    requireRoot(this);
    if (spawnSync('id', ['-u', OTHER]).status !== 0) {
      if (IN_CI) throw new Error(`second test user ${OTHER} missing (scripts/setup-host.sh creates it)`);
      execFileSync('useradd', ['--create-home', '--shell', '/bin/bash', OTHER]);
    }
    img = makeE2eImage(this, 'hpcc-e2e-cache-trust-');
    work = path.join(img.tmp, 'work');
    fs.mkdirSync(work);
    fs.chmodSync(work, 0o1777);
  });
  after(() => {
    if (img?.tmp) removeTree(img.tmp);
  });

  /** As the other user: extract the image into `cache` and plant /planted in every extracted tree, readable by all. */
  function plantExtraction(cache: string): void {
    let r = hpcc(OTHER, ['exec', '--unsquash', img.sif, 'true'], work, { HPCC_CACHEDIR: cache });
    expect(r.status, r.stderr).to.equal(0);
    r = runAs(OTHER, 'sh', ['-c', 'for d in "$1"/rootfs/*/; do echo planted > "$d/planted"; done; chmod -R go+rX "$1"', 'sh', cache], work);
    expect(r.status, r.stderr).to.equal(0);
  }
  /** The extraction a launch reported making ("Extracting X into DIR (...)"). */
  const extractedInto = (stderr: string) => /Extracting \S+ into (\S+)/.exec(stderr)?.[1];

  it('HOME unset: a root filesystem another user planted in /tmp/.cache/hpcc is not run; the cache is under the password database home', function () {
    const shared = '/tmp/.cache';
    if (fs.existsSync(path.join(shared, 'hpcc'))) return this.skip(); // someone else's: leave it alone
    const madeShared = !fs.existsSync(shared);
    if (madeShared) {
      fs.mkdirSync(shared, { mode: 0o755 });
      fs.chownSync(shared, ids(OTHER).uid, ids(OTHER).gid);
    }
    let made: string | undefined;
    try {
      plantExtraction(path.join(shared, 'hpcc'));
      const r = hpcc(TEST_USER, ['exec', '--unsquash', img.sif, ...PROBE], work);
      expect([r.status, r.stdout], r.stderr).to.deep.equal([0, 'clean\n']);
      made = extractedInto(r.stderr);
      expect(made, r.stderr).to.match(new RegExp(`^${homeOf(TEST_USER)}/\\.cache/hpcc/rootfs/[a-f0-9]+$`));
      expect(fs.statSync(path.dirname(path.dirname(made!))).mode & 0o777).to.equal(0o700);
      // what the victim extracted is not readable by the other user
      expect(runAs(OTHER, 'ls', [made!], work).status).to.not.equal(0);
    } finally {
      removeTree(madeShared ? shared : path.join(shared, 'hpcc'));
      if (made) removeTree(made);
    }
  });

  it("HPCC_CACHEDIR naming another user's cache (a group cache): refused, the planted tree never runs", () => {
    const theirs = path.join(work, 'theirs');
    plantExtraction(theirs);
    const r = hpcc(TEST_USER, ['exec', '--unsquash', img.sif, ...PROBE], work, { HPCC_CACHEDIR: theirs });
    expect(r.stdout).to.not.contain('planted');
    expect(r.status, r.stderr).to.equal(80);
    expect(r.stderr).to.contain('HPCC_E_CACHE_UNTRUSTED');
    // a link to it is refused too
    fs.symlinkSync(theirs, path.join(work, 'link'));
    const l = hpcc(TEST_USER, ['exec', '--unsquash', img.sif, ...PROBE], work, { HPCC_CACHEDIR: path.join(work, 'link') });
    expect([l.status, l.stdout], l.stderr).to.deep.equal([80, '']);
  });

  it("a cache directory others can write (rootfs 0777 in the victim's cache): the tree planted in it is moved aside, the image extracted afresh", () => {
    const theirs = path.join(work, 'theirs-2');
    plantExtraction(theirs);
    const mine = path.join(work, 'mine');
    let r = runAs(TEST_USER, 'sh', ['-c', 'mkdir -m 755 "$1" && mkdir -m 777 "$1/rootfs" && chmod 777 "$1/rootfs"', 'sh', mine], work);
    expect(r.status, r.stderr).to.equal(0);
    // the other user copies its planted tree into the writable directory, under the victim's key
    r = runAs(OTHER, 'sh', ['-c', 'cp -a "$1"/rootfs/* "$2/rootfs/"', 'sh', theirs, mine], work);
    expect(r.status, r.stderr).to.equal(0);
    r = hpcc(TEST_USER, ['exec', '--unsquash', img.sif, ...PROBE], work, { HPCC_CACHEDIR: mine });
    expect([r.status, r.stdout], r.stderr).to.deep.equal([0, 'clean\n']);
    expect(fs.statSync(path.join(mine, 'rootfs')).mode & 0o777).to.equal(0o700);
  });

  it('a launch directory that is a link into another user\'s directory: no memo read from it or written into it', () => {
    const evil = path.join(work, 'evil');
    expect(runAs(OTHER, 'mkdir', ['-m', '777', evil], work).status).to.equal(0);
    fs.chmodSync(evil, 0o777);
    const mine = path.join(work, 'mine-memo');
    expect(runAs(TEST_USER, 'sh', ['-c', 'mkdir -m 700 "$1" && ln -s "$2" "$1/launch"', 'sh', mine, evil], work).status).to.equal(0);
    const env = { HPCC_CACHEDIR: mine, HPCC_DEBUG: '1', HOME: homeOf(TEST_USER) };
    let r = runAs(TEST_USER, FRONT, ['exec', img.sif, 'echo', 'hi'], work, env);
    expect([r.status, r.stdout], r.stderr).to.deep.equal([0, 'hi\n']);
    expect(fs.readdirSync(evil), 'nothing written into the other user\'s directory').to.deep.equal([]);
    expect(fs.lstatSync(path.join(mine, 'launch')).isDirectory()).to.equal(true);
    r = runAs(TEST_USER, FRONT, ['exec', img.sif, 'echo', 'hi'], work, env);
    expect(r.stderr).to.match(/launch memo \S+: used/);
  });

  it('blobs: the cache root is 0700 and a cached blob 0600, unreadable by another user', () => {
    const cache = path.join(work, 'blobs');
    const script =
      `const { BlobCache } = await import(${JSON.stringify(path.join(REPO_ROOT, 'dist/src/oci/cache/store.js'))});` +
      `const { createHash } = await import('node:crypto'); const b = Buffer.from('private layer');` +
      `console.log(await new BlobCache().putBytes('sha256:' + createHash('sha256').update(b).digest('hex'), b));`;
    const r = runAs(TEST_USER, process.execPath, ['--input-type=module', '-e', script], work, { HPCC_CACHEDIR: cache });
    expect(r.status, r.stderr).to.equal(0);
    const blob = r.stdout.trim();
    expect(fs.statSync(cache).mode & 0o777).to.equal(0o700);
    expect(fs.statSync(blob).mode & 0o777).to.equal(0o600);
    expect(runAs(OTHER, 'cat', [blob], work).stdout).to.equal('');
    fs.chmodSync(cache, 0o755); // even with the root opened up, the blob stays private
    for (const d of ['blobs', 'blobs/sha256']) fs.chmodSync(path.join(cache, d), 0o755);
    const c = runAs(OTHER, 'cat', [blob], work);
    expect([c.status, c.stdout]).to.deep.equal([1, '']);
  });

  it('a launch with APPTAINER_DOCKER_PASSWORD set writes no memo: the value is in no cache file', () => {
    const cache = path.join(work, 'cred');
    const secret = 'xyz-very-secret-4711';
    const env = { HPCC_CACHEDIR: cache, HPCC_DEBUG: '1', HOME: homeOf(TEST_USER), APPTAINER_DOCKER_PASSWORD: secret, SINGULARITYENV_API_TOKEN: secret };
    for (let i = 0; i < 2; i++) {
      const r = runAs(TEST_USER, FRONT, ['exec', img.sif, 'echo', 'hi'], work, env);
      expect([r.status, r.stdout], r.stderr).to.deep.equal([0, 'hi\n']);
      expect(r.stderr).to.not.match(/launch memo \S+: used/);
    }
    const g = spawnSync('grep', ['-rl', secret, cache], { encoding: 'utf8' });
    expect(g.stdout, 'files holding the value').to.equal('');
    // the same launch without it is memoised
    const { APPTAINER_DOCKER_PASSWORD: _, SINGULARITYENV_API_TOKEN: __, ...plain } = env;
    runAs(TEST_USER, FRONT, ['exec', img.sif, 'echo', 'hi'], work, plain);
    expect(runAs(TEST_USER, FRONT, ['exec', img.sif, 'echo', 'hi'], work, plain).stderr).to.match(/launch memo \S+: used/);
  });

  it('a relative XDG_CACHE_HOME or HPCC_CACHEDIR is refused with a usage error; nothing is made below the working directory', () => {
    for (const v of ['XDG_CACHE_HOME', 'HPCC_CACHEDIR']) {
      const r = hpcc(TEST_USER, ['exec', '--unsquash', img.sif, 'true'], work, { [v]: 'rel-cache', HOME: homeOf(TEST_USER) });
      expect(r.status, r.stderr).to.equal(2);
      expect(r.stderr).to.contain('HPCC_E_USAGE').and.contain(`${v}=rel-cache is a relative path`);
      expect(fs.existsSync(path.join(work, 'rel-cache'))).to.equal(false);
    }
  });

  it('the native front looks for memos in the directory cacheRoot() names, under every environment (drift check)', () => {
    const home = homeOf(TEST_USER);
    const cases: Array<Record<string, string>> = [
      { HOME: home },
      {},
      { HOME: 'relative/home' },
      { HOME: '' },
      { HOME: '/nonexistent/h' },
      { HOME: home, XDG_CACHE_HOME: '/nonexistent/xdg/' },
      { XDG_CACHE_HOME: 'xdg-rel' },
      { HPCC_CACHEDIR: '/nonexistent//c/', XDG_CACHE_HOME: 'xdg-rel' },
      { HPCC_CACHEDIR: 'rel' },
      { HPCC_CACHEDIR: '', XDG_CACHE_HOME: '', HOME: '' },
    ];
    for (const env of cases) {
      let want: string | null;
      try {
        want = path.join(cacheRoot(env, () => home), 'launch');
      } catch {
        want = null;
      }
      // a missing image: Node fails before it writes anything
      const r = runAs(TEST_USER, FRONT, ['exec', path.join(work, 'no-such.sif'), 'true'], work, { ...env, HPCC_DEBUG: '1' });
      const m = /hpcc: launch memo (\/\S+)\/[a-f0-9]{16}\.memo: /.exec(r.stderr);
      const got = m ? path.resolve(m[1]!) : /hpcc: launch memo: none \(cache directory: [^)]*\)/.test(r.stderr) ? null : 'no report';
      expect(got, `${JSON.stringify(env)}: ${r.stderr}`).to.equal(want);
    }
  });
});
