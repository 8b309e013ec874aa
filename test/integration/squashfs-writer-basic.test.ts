/**
 * Quick real-tool smoke for the squashfs writer: small images checked with
 * unsquashfs (-stat, -lln, extraction) and, as root, sqfsdiff against
 * mksquashfs's image of the same tree materialised on disk.
 * The exhaustive corpus / kernel / squashfuse tests live elsewhere.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { open } from 'node:fs/promises';
import * as path from 'node:path';
import { SquashfsWriter, type SquashfsWriterOptions } from '../../src/formats/squashfs/writer/writer.js';
import { IS_ROOT, makeTempDir, removeTree, requireRoot, requireTools } from '../helpers/env.js';

const BS = 131072;
const T = 1_700_000_000;

interface Spec {
  path: string;
  kind: 'dir' | 'file' | 'symlink' | 'char' | 'block' | 'fifo' | 'link';
  mode: number;
  uid: number;
  gid: number;
  data?: Buffer;
  target?: string;
  dev?: [number, number];
  xattrs?: Map<string, Uint8Array>;
}

function pseudo(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = (x >>> 24) & (i % 3 === 0 ? 0xff : 0x3f); // some redundancy so blocks compress
  }
  return out;
}

/** The test tree: every inode type, sizes around the block size, sparse, duplicates, links, xattrs, a big dir. */
function treeSpec(): Spec[] {
  const s: Spec[] = [];
  const f = (p: string, data: Buffer, mode = 0o644, uid = 0, gid = 0, xattrs?: Map<string, Uint8Array>) =>
    s.push({ path: p, kind: 'file', mode, uid, gid, data, ...(xattrs ? { xattrs } : {}) });
  for (const n of [0, 1, BS - 1, BS, BS + 1, 3 * BS + 5]) f(`sizes/f${n}`, pseudo(n, n + 1));
  f('sparse', Buffer.concat([pseudo(100, 9), Buffer.alloc(3 * BS), pseudo(BS + 7, 10)]));
  f('dups/one', pseudo(2 * BS + 300, 77), 0o600, 1234, 5678);
  f('dups/two', pseudo(2 * BS + 300, 77), 0o640);
  f('suid', pseudo(5000, 3), 0o4755);
  f('xattr-file', Buffer.from('with xattrs\n'), 0o644, 0, 0, new Map([['user.comment', Buffer.from('hello')], ['user.bin', Buffer.from([0, 255, 1])]]));
  s.push({ path: 'links/a', kind: 'file', mode: 0o644, uid: 0, gid: 0, data: pseudo(70000, 5) });
  s.push({ path: 'links/sub/b', kind: 'link', mode: 0, uid: 0, gid: 0, target: 'links/a' });
  s.push({ path: 'sym', kind: 'symlink', mode: 0o777, uid: 0, gid: 0, target: 'sizes/f1' });
  s.push({ path: 'dev/null', kind: 'char', mode: 0o666, uid: 0, gid: 0, dev: [1, 3] });
  s.push({ path: 'dev/sda1', kind: 'block', mode: 0o660, uid: 0, gid: 6, dev: [8, 1] });
  s.push({ path: 'dev/fifo', kind: 'fifo', mode: 0o644, uid: 0, gid: 0 });
  s.push({ path: 'tmp', kind: 'dir', mode: 0o1777, uid: 0, gid: 0 });
  s.push({ path: 'nested/a/b/c/d/e', kind: 'dir', mode: 0o750, uid: 99, gid: 99, xattrs: new Map([['user.dir', Buffer.from('d')]]) });
  for (let i = 0; i < 600; i++) f(`many/${String(i).padStart(4, '0')}${'n'.repeat(96)}`, Buffer.from(`entry ${i}\n`));
  return s;
}

/** Parent directories that the spec creates implicitly (mode 0755, root, time T). */
function implicitDirs(spec: Spec[]): string[] {
  const dirs = new Set<string>();
  for (const e of spec) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const e of spec) if (e.kind === 'dir') dirs.delete(e.path);
  return [...dirs].sort();
}

async function writeSpec(file: string, spec: Spec[], opts: Partial<SquashfsWriterOptions> = {}): Promise<void> {
  const fh = await open(file, 'w+');
  try {
    const w = new SquashfsWriter({ handle: fh, ...opts });
    w.addDirectory('/', { mode: 0o755, uid: 0, gid: 0, mtime: T });
    for (const d of implicitDirs(spec)) w.addDirectory(d, { mode: 0o755, uid: 0, gid: 0, mtime: T });
    for (const e of spec) {
      const m = { mode: e.mode, uid: e.uid, gid: e.gid, mtime: T, ...(e.xattrs ? { xattrs: e.xattrs } : {}) };
      if (e.kind === 'file') await w.addFile(e.path, m, e.data!);
      else if (e.kind === 'dir') w.addDirectory(e.path, m);
      else if (e.kind === 'symlink') w.addSymlink(e.path, e.target!, m);
      else if (e.kind === 'link') w.addHardLink(e.path, e.target!);
      else if (e.kind === 'fifo') w.addFifo(e.path, m);
      else w.addDevice(e.path, e.kind, e.dev![0], e.dev![1], m);
    }
    await w.finish();
  } finally {
    await fh.close();
  }
}

/** Write a file leaving holes where whole 4 KiB pages are zero (as the corpus does with truncate). */
function writeSparse(p: string, data: Buffer): void {
  const fd = fs.openSync(p, 'w');
  try {
    const zero = Buffer.alloc(4096);
    for (let off = 0; off < data.length; off += 4096) {
      const chunk = data.subarray(off, off + 4096);
      if (!chunk.equals(zero.subarray(0, chunk.length))) fs.writeSync(fd, chunk, 0, chunk.length, off);
    }
    fs.ftruncateSync(fd, data.length);
  } finally {
    fs.closeSync(fd);
  }
}

/** The same tree on disk (root only: owners, devices). */
function materialise(root: string, spec: Spec[]): void {
  fs.mkdirSync(root, { recursive: true });
  for (const d of implicitDirs(spec)) fs.mkdirSync(path.join(root, d), { recursive: true });
  for (const e of spec) {
    const p = path.join(root, e.path);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (e.kind === 'file') writeSparse(p, e.data!);
    else if (e.kind === 'dir') fs.mkdirSync(p, { recursive: true });
    else if (e.kind === 'symlink') fs.symlinkSync(e.target!, p);
    else if (e.kind === 'link') fs.linkSync(path.join(root, e.target!), p);
    else if (e.kind === 'fifo') execFileSync('mkfifo', [p]);
    else execFileSync('mknod', [p, e.kind === 'char' ? 'c' : 'b', String(e.dev![0]), String(e.dev![1])]);
    if (e.kind !== 'link' && e.kind !== 'symlink') {
      fs.chmodSync(p, e.mode);
      fs.chownSync(p, e.uid, e.gid);
      fs.chmodSync(p, e.mode); // chown clears setuid
    }
    for (const [k, v] of e.xattrs ?? []) execFileSync('setfattr', ['-n', k, '-v', '0x' + Buffer.from(v).toString('hex'), p]);
  }
  // mtimes last, deepest first, so creating children does not touch them
  const all = [...spec.map((e) => e.path), ...implicitDirs(spec), ''].sort((a, b) => b.length - a.length);
  for (const p of all) fs.lutimesSync(path.join(root, p), T, T);
}

function typeChar(e: Spec, spec: Spec[]): string {
  if (e.kind === 'link') return typeChar(spec.find((x) => x.path === e.target)!, spec);
  return { dir: 'd', file: '-', symlink: 'l', char: 'c', block: 'b', fifo: 'p' }[e.kind];
}

function permString(mode: number): string {
  const r = ['r', 'w', 'x'];
  let s = '';
  for (let i = 8; i >= 0; i--) s += mode & (1 << i) ? r[(8 - i) % 3] : '-';
  const a = s.split('');
  if (mode & 0o4000) a[2] = a[2] === 'x' ? 's' : 'S';
  if (mode & 0o2000) a[5] = a[5] === 'x' ? 's' : 'S';
  if (mode & 0o1000) a[8] = a[8] === 'x' ? 't' : 'T';
  return a.join('');
}

describe('squashfs writer: real-tool smoke (unsquashfs, sqfsdiff)', function () {
  this.timeout(120000);
  let dir = '';
  let image = '';
  const spec = treeSpec();

  before(async function () {
    requireTools(this, 'unsquashfs');
    dir = makeTempDir('hpcc-sqw-int-');
    image = path.join(dir, 'ours.sqfs');
    await writeSpec(image, spec);
  });
  after(() => {
    if (dir) removeTree(dir);
  });

  it('passes unsquashfs -stat', () => {
    const r = spawnSync('unsquashfs', ['-stat', image], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const distinct = spec.filter((e) => e.kind !== 'link').length + implicitDirs(spec).length + 1;
    expect(r.stdout).to.include(`Number of inodes ${distinct}`);
    expect(r.stdout).to.include('Duplicates are removed');
    expect(r.stdout).to.include('Number of xattr ids 2');
  });

  it('lists exactly the entries added (unsquashfs -lln)', () => {
    const out = execFileSync('unsquashfs', ['-lln', image], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const got = new Map<string, string>();
    for (const line of out.trim().split('\n')) {
      const m = /^(\S+) (\d+)\/(\d+)\s+(\S+(?:,\s+\d+)?) \S+ \S+ squashfs-root\/?(.*?)(?: -> (.*))?$/.exec(line);
      expect(m, line).to.not.equal(null);
      got.set(m![5]!, `${m![1]} ${m![2]}/${m![3]} ${m![4]!.replace(/\s+/g, '')}${m![6] !== undefined ? ' -> ' + m![6] : ''}`);
    }
    const want = new Map<string, string>();
    const dirLine = (mode: number, uid = 0, gid = 0) => `d${permString(mode)} ${uid}/${gid}`;
    want.set('', dirLine(0o755));
    for (const d of implicitDirs(spec)) want.set(d, dirLine(0o755));
    for (const e of spec) {
      const base = e.kind === 'link' ? spec.find((x) => x.path === e.target)! : e;
      const head = `${typeChar(e, spec)}${permString(base.mode)} ${base.uid}/${base.gid}`;
      if (base.kind === 'dir') want.set(e.path, head);
      else if (base.kind === 'file') want.set(e.path, `${head} ${base.data!.length}`);
      else if (base.kind === 'symlink') want.set(e.path, `${head} ${base.target!.length} -> ${base.target}`);
      else if (base.kind === 'fifo') want.set(e.path, `${head} 0`);
      else want.set(e.path, `${head} ${base.dev![0]},${base.dev![1]}`);
    }
    // directory sizes depend on the listing: compare everything but them
    for (const [k, v] of got) if (v.startsWith('d')) got.set(k, v.split(' ').slice(0, 2).join(' '));
    expect([...got.keys()].sort()).to.deep.equal([...want.keys()].sort());
    for (const [k, v] of want) expect(got.get(k), k).to.equal(v);
  });

  it('extracts byte-identical files with owners, modes, links, devices and xattrs (unsquashfs -d)', function () {
    requireRoot(this);
    const out = path.join(dir, 'extract');
    execFileSync('unsquashfs', ['-d', out, '-no-progress', image], { stdio: 'pipe' });
    for (const e of spec) {
      const p = path.join(out, e.path);
      const st = fs.lstatSync(p);
      if (e.kind === 'file') expect(fs.readFileSync(p).equals(e.data!), e.path).to.equal(true);
      if (e.kind !== 'link' && e.kind !== 'symlink') {
        expect(st.mode & 0o7777, e.path).to.equal(e.mode);
        expect([st.uid, st.gid], e.path).to.deep.equal([e.uid, e.gid]);
      }
      if (e.kind === 'link') {
        expect(st.ino).to.equal(fs.lstatSync(path.join(out, e.target!)).ino);
        expect(st.nlink).to.equal(2);
      }
      if (e.kind === 'symlink') expect(fs.readlinkSync(p)).to.equal(e.target);
      if (e.kind === 'char' || e.kind === 'block') {
        expect(e.kind === 'char' ? st.isCharacterDevice() : st.isBlockDevice()).to.equal(true);
        expect(execFileSync('stat', ['-c', '%t:%T', p], { encoding: 'utf8' }).trim()).to.equal(`${e.dev![0].toString(16)}:${e.dev![1].toString(16)}`);
      }
      if (e.kind === 'fifo') expect(st.isFIFO()).to.equal(true);
      if (e.kind !== 'dir') expect(Math.floor(st.mtimeMs / 1000), e.path).to.equal(T);
      for (const [k, v] of e.xattrs ?? []) {
        const out = execFileSync('getfattr', ['--absolute-names', '-e', 'hex', '-n', k, p], { encoding: 'utf8' });
        expect(out, `${e.path} ${k}`).to.include(`${k}=0x${Buffer.from(v).toString('hex')}\n`);
      }
    }
  });

  it('matches mksquashfs of the same tree (sqfsdiff, including mtimes)', function () {
    requireRoot(this);
    requireTools(this, 'mksquashfs', 'sqfsdiff', 'setfattr', 'mknod');
    const src = path.join(dir, 'src');
    materialise(src, spec);
    const ref = path.join(dir, 'ref.sqfs');
    execFileSync('mksquashfs', [src, ref, '-noappend', '-quiet', '-no-progress', '-comp', 'gzip'], { stdio: 'pipe' });
    const r = spawnSync('sqfsdiff', ['-T', '-a', ref, '-b', image], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    // sqfsdiff 1.2 exits 0 on some differences (e.g. "has a different link target"): read its output too.
    expect(r.stdout.trim(), 'sqfsdiff reported differences').to.equal('');
  });

  it('writes deterministic images that the tools accept, identical for any arrival order', async function () {
    const a = path.join(dir, 'det-a.sqfs');
    const b = path.join(dir, 'det-b.sqfs');
    await writeSpec(a, spec, { deterministic: true, blockSize: 4096 });
    await writeSpec(b, [...spec.filter((e) => e.kind !== 'link')].reverse().concat(spec.filter((e) => e.kind === 'link')), {
      deterministic: true,
      blockSize: 4096,
    });
    expect(fs.readFileSync(a).equals(fs.readFileSync(b))).to.equal(true);
    expect(spawnSync('unsquashfs', ['-stat', a]).status).to.equal(0);
    if (IS_ROOT && spawnSync('sqfsdiff', ['--help']).status !== null) {
      const r = spawnSync('sqfsdiff', ['-T', '-a', image, '-b', a], { encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).to.equal(0);
    }
  });

  it('writes a file over 4 GiB (extended inode, u64 size; HPCC_TEST_LARGE=1)', async function () {
    if (process.env.HPCC_TEST_LARGE !== '1') this.skip();
    this.timeout(300000);
    const file = path.join(dir, 'large.sqfs');
    const fh = await open(file, 'w+');
    try {
      const w = new SquashfsWriter({ handle: fh, blockSize: 1 << 20 });
      const zero = Buffer.alloc(1 << 20);
      async function* src(): AsyncGenerator<Uint8Array> {
        yield Buffer.from('head');
        for (let i = 0; i < 4096; i++) yield zero;
        yield Buffer.from('tail!');
      }
      await w.addFile('big', { mode: 0o644, uid: 0, gid: 0, mtime: T }, src());
      await w.finish();
    } finally {
      await fh.close();
    }
    const out = execFileSync('unsquashfs', ['-lln', file], { encoding: 'utf8' });
    expect(out).to.match(/ 4294967305 \S+ \S+ squashfs-root\/big\n/);
    const ex = path.join(dir, 'large-out');
    execFileSync('unsquashfs', ['-d', ex, '-no-progress', file], { stdio: 'pipe' }); // unsquashfs writes holes
    const big = path.join(ex, 'big');
    expect(fs.statSync(big).size).to.equal(4294967305);
    const fd = fs.openSync(big, 'r');
    try {
      const b = Buffer.alloc(5);
      fs.readSync(fd, b, 0, 4, 0);
      expect(b.subarray(0, 4).toString()).to.equal('head');
      fs.readSync(fd, b, 0, 5, 4294967300);
      expect(b.toString()).to.equal('tail!');
      fs.readSync(fd, b, 0, 5, 3_000_000_000);
      expect([...b]).to.deep.equal([0, 0, 0, 0, 0]);
    } finally {
      fs.closeSync(fd);
      removeTree(ex);
    }
  });
});
