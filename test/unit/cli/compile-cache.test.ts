/**
 * Node's compile cache (bin/run.js, module.enableCompileCache): V8 runs the code
 * it finds there, so hpcc keeps it in the user's own hpcc cache
 * (HPCC_CACHEDIR/node-compile-cache), made private, and does not use a directory
 * there that another user owns or may write.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HPCC_BIN, IS_ROOT, makeTempDir, removeTree, testUserExists, testUserIds } from '../../helpers/env.js';

describe('cli: Node compile cache', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir('hpcc-compile-cache-');
  });
  afterEach(() => removeTree(dir));

  /** `hpcc exec` of a missing image (loads the whole launch path) with HPCC_CACHEDIR=dir/cache. */
  const run = (extra: NodeJS.ProcessEnv = {}) => {
    const env: NodeJS.ProcessEnv = { ...process.env, HPCC_CACHEDIR: path.join(dir, 'cache'), ...extra };
    delete env.NODE_COMPILE_CACHE;
    delete env.NODE_DISABLE_COMPILE_CACHE;
    const r = spawnSync(process.execPath, [HPCC_BIN, 'exec', path.join(dir, 'none.sif'), '/bin/true'], { encoding: 'utf8', env });
    expect(r.stderr).to.match(/^Error \(HPCC_E_/);
    return r;
  };
  const entries = (d: string) => fs.readdirSync(d, { recursive: true });

  it('is made private in the user\'s hpcc cache and filled there', () => {
    run();
    const cc = path.join(dir, 'cache', 'node-compile-cache');
    const st = fs.lstatSync(cc);
    expect(st.isDirectory()).to.equal(true);
    expect(st.mode & 0o777).to.equal(0o700);
    expect(st.uid).to.equal(process.getuid!());
    expect(entries(cc).length, 'cache entries').to.be.greaterThan(0);
  });

  it('is not used when others may write to it', () => {
    const cc = path.join(dir, 'cache', 'node-compile-cache');
    fs.mkdirSync(cc, { recursive: true });
    fs.chmodSync(cc, 0o777);
    run();
    expect(entries(cc)).to.deep.equal([]);
  });

  it('is not used when another user owns it', function () {
    if (!IS_ROOT || !testUserExists()) this.skip(); // needs a second user to own it
    const cc = path.join(dir, 'cache', 'node-compile-cache');
    fs.mkdirSync(cc, { recursive: true, mode: 0o755 });
    const { uid, gid } = testUserIds();
    fs.chownSync(cc, uid, gid);
    run();
    expect(entries(cc)).to.deep.equal([]);
  });

  it('is not used when a symlink stands in its place', () => {
    const elsewhere = path.join(dir, 'elsewhere');
    fs.mkdirSync(elsewhere, { mode: 0o700 });
    fs.mkdirSync(path.join(dir, 'cache'));
    fs.symlinkSync(elsewhere, path.join(dir, 'cache', 'node-compile-cache'));
    run();
    expect(entries(elsewhere)).to.deep.equal([]);
  });
});
