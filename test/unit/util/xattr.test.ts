import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HpccIOError } from '../../../src/errors/index.js';
import { getXattrs, setXattrs, xattrAddon, XattrError } from '../../../src/util/xattr.js';
import { findTool, IN_CI, IS_ROOT, makeTempDir, removeTree, requireTools } from '../../helpers/env.js';

const enc = (s: string) => new Uint8Array(Buffer.from(s));

/** Independent check through attr's getfattr (hex values, no dereference). */
function getfattr(p: string): Map<string, string> {
  const r = spawnSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', p], { encoding: 'utf8' });
  const out = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

describe('util/xattr (in-process addon)', function () {
  this.timeout(60_000);
  let dir: string;

  before(function () {
    try {
      xattrAddon();
    } catch (e) {
      if (IN_CI) throw e; // test/run.sh always builds it (npm run build)
      this.skip();
    }
  });
  beforeEach(() => {
    dir = makeTempDir('hpcc-xattr-');
  });
  afterEach(() => removeTree(dir));

  it('round-trips user.* attributes including binary and 64 KiB values', async function () {
    const f = path.join(dir, 'f');
    fs.writeFileSync(f, 'x');
    const big = new Uint8Array(4000).map((_, i) => (i * 7) & 0xff);
    const attrs = new Map<string, Uint8Array>([
      ['user.empty', new Uint8Array(0)],
      ['user.bin', new Uint8Array([0, 255, 0, 1])],
      ['user.big', big],
      ['user.utf8', enc('日本語 é')],
    ]);
    expect(await setXattrs([{ path: f, xattrs: attrs }])).to.deep.equal([]);
    const got = await getXattrs([f]);
    expect([...got.get(f)!.keys()].sort()).to.deep.equal([...attrs.keys()].sort());
    for (const [k, v] of attrs) expect(Buffer.from(got.get(f)!.get(k)!).equals(Buffer.from(v)), k).to.equal(true);
    if (findTool('getfattr')) {
      const ref = getfattr(f);
      expect(ref.get('user.bin')).to.equal('00ff0001');
      expect(ref.get('user.big')).to.equal(Buffer.from(big).toString('hex'));
    }
  });

  it('reads attributes set by setfattr, and does not follow symlinks', async function () {
    requireTools(this, 'setfattr');
    const f = path.join(dir, 'target');
    fs.writeFileSync(f, '');
    fs.symlinkSync('target', path.join(dir, 'link'));
    expect(spawnSync('setfattr', ['-n', 'user.k', '-v', '0x0102', f]).status).to.equal(0);
    const got = await getXattrs([f, path.join(dir, 'link')]);
    expect([...got.get(f)!.get('user.k')!]).to.deep.equal([1, 2]);
    expect(got.has(path.join(dir, 'link'))).to.equal(false);
  });

  it('streams a large batch in input order with bounded output (5000 paths)', async function () {
    const paths: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const p = path.join(dir, `f${i}-${'n'.repeat(100)}`);
      fs.writeFileSync(p, '');
      paths.push(p);
    }
    const entries = paths.filter((_, i) => i % 3 === 0).map((p, i) => ({ path: p, xattrs: new Map([['user.i', enc(String(i))]]) }));
    expect(await setXattrs(entries)).to.deep.equal([]);
    const got = await getXattrs(paths);
    expect(got.size).to.equal(entries.length);
    entries.forEach((e, i) => expect(Buffer.from(got.get(e.path)!.get('user.i')!).toString()).to.equal(String(i)));
  });

  it('throws a typed error naming a missing path', async () => {
    const missing = path.join(dir, 'nope');
    const err = await getXattrs([path.join(dir), missing]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(HpccIOError);
    expect((err as HpccIOError).code).to.equal('HPCC_E_IO_ENOENT');
    expect((err as HpccIOError).message).to.contain(missing);
  });

  it('reports per-attribute failures without stopping the batch', async () => {
    const ok = path.join(dir, 'ok');
    const link = path.join(dir, 'link');
    fs.writeFileSync(ok, '');
    fs.symlinkSync('ok', link);
    const failures = await setXattrs([
      { path: path.join(dir, 'missing'), xattrs: new Map([['user.a', enc('1')]]) },
      // user.* on a symlink is refused by the kernel (EPERM)
      { path: link, xattrs: new Map([['user.a', enc('1')]]) },
      { path: ok, xattrs: new Map([['user.a', enc('1')], ['bogusns.a', enc('2')]]) },
    ]);
    const E = os.constants.errno;
    expect(failures.map((f) => [path.basename(f.path), f.name, f.errno])).to.deep.equal([
      ['missing', 'user.a', E.ENOENT],
      ['link', 'user.a', E.EPERM],
      ['ok', 'bogusns.a', E.EOPNOTSUPP],
    ]);
    expect(failures[0]!.code).to.equal('ENOENT');
    const got = await getXattrs([ok]);
    expect(Buffer.from(got.get(ok)!.get('user.a')!).toString()).to.equal('1');
  });

  it('sets and reads security.capability and trusted.* as root', async function () {
    if (!IS_ROOT) this.skip();
    const f = path.join(dir, 'cap');
    fs.writeFileSync(f, '');
    // vfs_cap_data v2: magic_etc 0x02000001 (effective), permitted lo = CAP_NET_RAW (bit 13)
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    const failures = await setXattrs([{ path: f, xattrs: new Map([['security.capability', cap], ['trusted.t', enc('v')]]) }]);
    expect(failures).to.deep.equal([]);
    const got = (await getXattrs([f])).get(f)!;
    expect(Buffer.from(got.get('security.capability')!).equals(cap)).to.equal(true);
    expect(Buffer.from(got.get('trusted.t')!).toString()).to.equal('v');
  });

  it('rejects invalid requests before running anything', async () => {
    const f = path.join(dir, 'f');
    fs.writeFileSync(f, '');
    for (const bad of [
      new Map([['', enc('x')]]),
      new Map([['user.' + 'n'.repeat(251), enc('x')]]),
      new Map([['user.big', new Uint8Array(65537)]]),
    ]) {
      const err = await setXattrs([{ path: f, xattrs: bad }]).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(XattrError);
    }
    expect(await getXattrs([f])).to.deep.equal(new Map());
  });

  it('refuses NUL bytes and over-long paths; the addon itself answers errno numbers and refuses wrong types', async () => {
    const f = path.join(dir, 'f');
    fs.writeFileSync(f, '');
    for (const p of [`${f}\0x`, `/${'p'.repeat(5000)}`]) {
      expect(await getXattrs([p]).then(() => null, (e: unknown) => e)).to.be.instanceOf(XattrError);
    }
    expect(await setXattrs([{ path: f, xattrs: new Map([['user.a\0b', enc('x')]]) }]).then(() => null, (e: unknown) => e)).to.be.instanceOf(XattrError);
    const addon = xattrAddon();
    expect(addon.list(path.join(dir, 'missing'))).to.equal(os.constants.errno.ENOENT);
    expect(addon.list(f)).to.deep.equal([]);
    expect(addon.set(f, 'user.k', new Uint8Array([1]))).to.equal(0);
    expect(addon.list(f)).to.deep.equal(['user.k', Buffer.from([1])]);
    expect(() => addon.list(5 as unknown as string)).to.throw(TypeError);
    expect(() => addon.set(f, 'user.k', 'text' as unknown as Uint8Array)).to.throw(TypeError);
  });
});
