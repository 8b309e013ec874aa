/**
 * Unit tests of the directory walker behind addDirectoryTree, driving a
 * recording writer (the real squashfs writer is proven against the kernel,
 * squashfuse and squashfs-tools in test/integration/squashfs-writer-tools).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { HpccIOError } from '../../../../src/errors/index.js';
import { addDirectoryTree, splitRdev, type TreeEntryMeta, type TreeSink } from '../../../../src/formats/squashfs/from-dir.js';
import { xattrAddon } from '../../../../src/util/xattr.js';
import { IN_CI, IS_ROOT, makeTempDir, removeTree, testUserExists, testUserIds } from '../../../helpers/env.js';

interface Call {
  op: string;
  path: string;
  meta?: TreeEntryMeta;
  arg?: unknown;
  sha?: string;
  size?: number;
  chunks?: number;
}

class RecordingWriter implements TreeSink {
  calls: Call[] = [];
  byPath = new Map<string, Call>();
  /** Simulated compression time per file, so read-ahead has something to overlap with. */
  constructor(private readonly delayMs = 0) {}
  private rec(c: Call) {
    this.calls.push(c);
    this.byPath.set(c.path, c);
  }
  addDirectory(p: string, meta: TreeEntryMeta) {
    this.rec({ op: 'dir', path: p, meta });
  }
  async addFile(p: string, meta: TreeEntryMeta, data: AsyncIterable<Uint8Array> | Uint8Array) {
    const h = createHash('sha256');
    let size = 0;
    let chunks = 0;
    if (data instanceof Uint8Array) {
      h.update(data);
      size = data.length;
      chunks = 1;
    } else {
      for await (const c of data) {
        h.update(c);
        size += c.length;
        chunks++;
      }
    }
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    this.rec({ op: 'file', path: p, meta, sha: h.digest('hex'), size, chunks });
  }
  addSymlink(p: string, target: string, meta: TreeEntryMeta) {
    this.rec({ op: 'symlink', path: p, meta, arg: target });
  }
  addHardLink(p: string, existing: string) {
    expect(this.byPath.has(existing), `hard link target ${existing} added before ${p}`).to.equal(true);
    this.rec({ op: 'link', path: p, arg: existing });
  }
  addDevice(p: string, kind: 'char' | 'block', major: number, minor: number, meta: TreeEntryMeta) {
    this.rec({ op: kind, path: p, meta, arg: [major, minor] });
  }
  addFifo(p: string, meta: TreeEntryMeta) {
    this.rec({ op: 'fifo', path: p, meta });
  }
  addSocket(p: string, meta: TreeEntryMeta) {
    this.rec({ op: 'socket', path: p, meta });
  }
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('formats/squashfs/from-dir (walker)', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir('hpcc-fromdir-');
  });
  afterEach(() => removeTree(dir));

  it('splits glibc 64-bit dev_t values', () => {
    // makedev(major, minor) as glibc encodes it
    const makedev = (ma: bigint, mi: bigint) =>
      ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
    for (const [ma, mi] of [[1n, 3n], [8n, 0n], [259n, 1048575n], [4095n, 256n], [4096n, 300n], [0xfffffn, 0xfffffn]] as const) {
      expect(splitRdev(makedev(ma, mi))).to.deep.equal({ major: Number(ma), minor: Number(mi) });
    }
    expect(splitRdev(BigInt(fs.statSync('/dev/null', { bigint: true }).rdev))).to.deep.equal({ major: 1, minor: 3 });
  });

  it('adds every entry type in sorted order with metadata and data', async () => {
    fs.mkdirSync(path.join(dir, 'b/c'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a'), 'hello');
    fs.writeFileSync(path.join(dir, 'b/c/empty'), '');
    const big = Buffer.alloc(3 * 4096 * 8 + 17, 7); // > 8 blocks of 4 KiB: streamed
    big.write('tail', big.length - 4);
    fs.writeFileSync(path.join(dir, 'big'), big);
    fs.symlinkSync('../a', path.join(dir, 'b/link'));
    fs.chmodSync(path.join(dir, 'b'), 0o2755);
    fs.chmodSync(path.join(dir, 'a'), 0o4711);
    fs.utimesSync(path.join(dir, 'a'), 1000, 123456789);
    fs.lutimesSync(path.join(dir, 'b/link'), 5, 42);
    spawnSync('mkfifo', [path.join(dir, 'fifo')]);
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(path.join(dir, 'sock'), r));
    const r = await addDirectoryTree(new RecordingWriter(), dir, { blockSize: 4096 }).finally(
      () => new Promise<void>((res) => srv.close(() => res())),
    );
    expect(r.entries).to.equal(9);
    expect(r.bytes).to.equal(5 + big.length);
  });

  it('records calls faithfully', async () => {
    fs.mkdirSync(path.join(dir, 'b/c'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a'), 'hello');
    fs.writeFileSync(path.join(dir, 'é'), 'x');
    fs.writeFileSync(path.join(dir, 'Z'), '');
    const big = Buffer.alloc(3 * 4096 * 8 + 17, 7);
    fs.writeFileSync(path.join(dir, 'b/c/big'), big);
    fs.symlinkSync('../a', path.join(dir, 'b/link'));
    fs.chmodSync(path.join(dir, 'b'), 0o3755);
    fs.chmodSync(path.join(dir, 'a'), 0o4711);
    fs.utimesSync(path.join(dir, 'a'), 1000, 123456789.9);
    fs.lutimesSync(path.join(dir, 'b/link'), 5, 42);
    expect(spawnSync('mkfifo', [path.join(dir, 'fifo')]).status).to.equal(0);
    fs.utimesSync(dir, 1, 77);
    const w = new RecordingWriter();
    await addDirectoryTree(w, dir, { blockSize: 4096, xattrs: false });
    // Pre-order DFS, names in byte order ('Z' < 'a' < 'b' < 'fifo' < 'é').
    expect(w.calls.map((c) => `${c.op} ${c.path}`)).to.deep.equal([
      'dir ',
      'file Z',
      'file a',
      'dir b',
      'dir b/c',
      'file b/c/big',
      'symlink b/link',
      'fifo fifo',
      'file é',
    ]);
    const a = w.byPath.get('a')!;
    expect(a.meta!.mode).to.equal(0o4711);
    expect(a.meta!.mtime).to.equal(123456789);
    expect(a.sha).to.equal(sha('hello'));
    expect(w.byPath.get('b')!.meta!.mode).to.equal(0o3755);
    expect(w.byPath.get('')!.meta!.mtime).to.equal(77);
    expect(w.byPath.get('b/link')!.arg).to.equal('../a');
    expect(w.byPath.get('b/link')!.meta!.mtime).to.equal(42);
    const b = w.byPath.get('b/c/big')!;
    expect(b.size).to.equal(big.length);
    expect(b.sha).to.equal(sha(big));
    expect(b.chunks).to.be.greaterThan(1); // streamed, not read whole
    const st = fs.statSync(path.join(dir, 'a'));
    expect(a.meta!.uid).to.equal(st.uid);
    expect(a.meta!.gid).to.equal(st.gid);
    expect(a.meta!.xattrs).to.equal(undefined);
  });

  it('turns hard links (also across directories) into addHardLink to the first path', async () => {
    fs.mkdirSync(path.join(dir, 'x'));
    fs.mkdirSync(path.join(dir, 'y'));
    fs.writeFileSync(path.join(dir, 'x/orig'), 'data');
    fs.linkSync(path.join(dir, 'x/orig'), path.join(dir, 'y/l1'));
    fs.linkSync(path.join(dir, 'x/orig'), path.join(dir, 'a-first'));
    fs.symlinkSync('t', path.join(dir, 'sym'));
    fs.linkSync(path.join(dir, 'sym'), path.join(dir, 'sym2'));
    const w = new RecordingWriter(2);
    await addDirectoryTree(w, dir, { xattrs: false });
    expect(w.calls.filter((c) => c.op === 'file').map((c) => c.path)).to.deep.equal(['a-first']);
    expect(w.calls.filter((c) => c.op === 'link').map((c) => [c.path, c.arg])).to.deep.equal([
      ['sym2', 'sym'],
      ['x/orig', 'a-first'],
      ['y/l1', 'a-first'],
    ]);
  });

  it('passes xattrs, leaving out system.* with a warning', async function () {
    try {
      xattrAddon();
    } catch (e) {
      if (IN_CI) throw e;
      this.skip();
    }
    fs.writeFileSync(path.join(dir, 'f'), '');
    expect(spawnSync('setfattr', ['-n', 'user.k', '-v', 'v', path.join(dir, 'f')]).status).to.equal(0);
    expect(spawnSync('setfattr', ['-n', 'user.d', '-v', '0x00', dir]).status).to.equal(0);
    // A POSIX ACL appears as system.posix_acl_access
    const acl = spawnSync('setfacl', ['-m', 'u:0:r', path.join(dir, 'f')]);
    const warnings: string[] = [];
    const w = new RecordingWriter();
    await addDirectoryTree(w, dir, { onWarning: (m) => warnings.push(m) });
    expect(Buffer.from(w.byPath.get('f')!.meta!.xattrs!.get('user.k')!).toString()).to.equal('v');
    expect([...w.byPath.get('')!.meta!.xattrs!.get('user.d')!]).to.deep.equal([0]);
    if (acl.status === 0) {
      expect([...w.byPath.get('f')!.meta!.xattrs!.keys()]).to.deep.equal(['user.k']);
      expect(warnings.join('\n')).to.match(/system\.posix_acl_access/);
    }
  });

  it('decodes device numbers (root only)', async function () {
    if (!IS_ROOT) this.skip();
    expect(spawnSync('mknod', [path.join(dir, 'c'), 'c', '4095', '1048575']).status).to.equal(0);
    expect(spawnSync('mknod', [path.join(dir, 'b'), 'b', '8', '300']).status).to.equal(0);
    const w = new RecordingWriter();
    await addDirectoryTree(w, dir, { xattrs: false });
    expect(w.byPath.get('c')).to.include({ op: 'char' });
    expect(w.byPath.get('c')!.arg).to.deep.equal([4095, 1048575]);
    expect(w.byPath.get('b')).to.include({ op: 'block' });
    expect(w.byPath.get('b')!.arg).to.deep.equal([8, 300]);
  });

  it('reads many small files ahead with a bounded budget and keeps every byte', async () => {
    const want = new Map<string, string>();
    for (let i = 0; i < 300; i++) {
      const body = Buffer.alloc((i * 977) % 20000, i & 0xff);
      fs.writeFileSync(path.join(dir, `f${String(i).padStart(3, '0')}`), body);
      want.set(`f${String(i).padStart(3, '0')}`, sha(body));
    }
    const w = new RecordingWriter(1);
    const r = await addDirectoryTree(w, dir, { xattrs: false, readAheadBytes: 64 * 1024, readAheadFiles: 8 });
    expect(r.entries).to.equal(301);
    for (const [p, h] of want) expect(w.byPath.get(p)!.sha, p).to.equal(h);
  });

  it('places the tree under a prefix and can override mtimes', async () => {
    fs.writeFileSync(path.join(dir, 'f'), 'x');
    const w = new RecordingWriter();
    await addDirectoryTree(w, dir, { xattrs: false, prefix: '/opt/app/', mtime: 5 });
    expect(w.calls.map((c) => `${c.op} ${c.path} ${c.meta?.mtime}`)).to.deep.equal(['dir opt/app 5', 'file opt/app/f 5']);
  });

  it('fails with a typed error naming an unreadable file, or skips it on request', async function () {
    if (IS_ROOT && !testUserExists()) this.skip();
    fs.writeFileSync(path.join(dir, 'secret'), 'x'.repeat(10));
    fs.writeFileSync(path.join(dir, 'big-secret'), Buffer.alloc(2 * 1024 * 1024));
    fs.writeFileSync(path.join(dir, 'ok'), 'y');
    fs.chmodSync(path.join(dir, 'secret'), 0);
    fs.chmodSync(path.join(dir, 'big-secret'), 0);
    // Root reads everything; drop the effective uid to the test user for the walk.
    const drop = IS_ROOT ? testUserIds().uid : undefined;
    if (drop !== undefined) process.seteuid!(drop);
    try {
      const err = await addDirectoryTree(new RecordingWriter(), dir, { xattrs: false }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(HpccIOError);
      expect((err as HpccIOError).code).to.equal('HPCC_E_IO_EACCES');
      expect((err as HpccIOError).message).to.contain(path.join(dir, 'big-secret'));
      expect((err as HpccIOError).hint).to.be.a('string');
      const warnings: string[] = [];
      const w = new RecordingWriter();
      await addDirectoryTree(w, dir, { xattrs: false, skipUnreadable: true, onWarning: (m) => warnings.push(m) });
      expect(w.calls.map((c) => c.path)).to.deep.equal(['', 'ok']);
      expect(warnings.join('\n')).to.contain('secret');
    } finally {
      if (drop !== undefined) process.seteuid!(0);
    }
  });

  it('follows a symlink given as the root, but no symlink below it', async () => {
    fs.mkdirSync(path.join(dir, 'real'));
    fs.writeFileSync(path.join(dir, 'real/f'), 'x');
    fs.symlinkSync('real', path.join(dir, 'root-link'));
    fs.symlinkSync('..', path.join(dir, 'real/up'));
    const w = new RecordingWriter();
    await addDirectoryTree(w, path.join(dir, 'root-link'), { xattrs: false });
    expect(w.calls.map((c) => `${c.op} ${c.path}`)).to.deep.equal(['dir ', 'file f', 'symlink up']);
  });

  it('refuses a non-directory root', async () => {
    fs.writeFileSync(path.join(dir, 'f'), '');
    const err = await addDirectoryTree(new RecordingWriter(), path.join(dir, 'f')).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(HpccIOError);
    expect((err as HpccIOError).code).to.equal('HPCC_E_IO_ENOTDIR');
  });
});
