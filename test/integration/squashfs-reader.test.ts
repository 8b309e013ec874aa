/**
 * The squashfs reader against images made by the real tools (mksquashfs for
 * every codec and layout, tar2sqfs), compared with the source tree itself:
 * lstat fields, sha256 of every file, link targets, getfattr's xattrs; then
 * extractTree compared the same way.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { expect } from 'chai';
import { HpccError } from '../../src/errors/index.js';
import { CODEC_IDS, type CodecName, createDecoder } from '../../src/formats/squashfs/codecs/index.js';
import { addDirectoryTree } from '../../src/formats/squashfs/from-dir.js';
import { SquashfsReader, SquashfsWriter, extractTree } from '../../src/formats/squashfs/index.js';
import { Flag, INVALID64 } from '../../src/formats/squashfs/layout.js';
import { xattrAddon } from '../../src/util/xattr.js';
import { IN_CI, IS_ROOT, makeTempDir, removeTree, requireTools } from '../helpers/env.js';
import { type SourceEntry, buildTree, scanTree, scanXattrs, sha256 } from '../fixtures/squashfs/tree.js';

interface ImageCase {
  name: string;
  tool: 'mksquashfs' | 'tar2sqfs' | 'hpcc';
  codec: CodecName;
  args: string[];
  many?: boolean; // use the tree with the 600-entry directory
  noXattrs?: boolean;
  check?: (r: SquashfsReader) => void;
}

const CASES: ImageCase[] = [
  { name: 'gzip default', tool: 'mksquashfs', codec: 'gzip', args: [], many: true },
  { name: 'gzip -b 4K', tool: 'mksquashfs', codec: 'gzip', args: ['-b', '4K'], many: true, check: (r) => expect(r.superblock.blockSize).to.equal(4096) },
  { name: 'gzip -b 1M', tool: 'mksquashfs', codec: 'gzip', args: ['-b', '1M'], check: (r) => expect(r.superblock.blockSize).to.equal(1 << 20) },
  {
    name: 'gzip -noI -noD -noF -noX',
    tool: 'mksquashfs',
    codec: 'gzip',
    args: ['-noI', '-noD', '-noF', '-noX'],
    check: (r) => expect(r.superblock.flags & (Flag.NOI | Flag.NOD | Flag.NOF | Flag.NOX)).to.equal(0x10b),
  },
  { name: 'gzip -no-fragments', tool: 'mksquashfs', codec: 'gzip', args: ['-no-fragments'], check: (r) => expect(r.superblock.fragmentCount).to.equal(0) },
  { name: 'gzip -always-use-fragments', tool: 'mksquashfs', codec: 'gzip', args: ['-always-use-fragments'] },
  { name: 'gzip -no-exports', tool: 'mksquashfs', codec: 'gzip', args: ['-no-exports'], check: (r) => expect(r.superblock.exportTableStart).to.equal(INVALID64) },
  { name: 'gzip -no-xattrs', tool: 'mksquashfs', codec: 'gzip', args: ['-no-xattrs'], noXattrs: true, check: (r) => expect(r.superblock.xattrTableStart).to.equal(INVALID64) },
  {
    name: 'gzip level 5 window 12 filtered',
    tool: 'mksquashfs',
    codec: 'gzip',
    args: ['-Xcompression-level', '5', '-Xwindow-size', '12', '-Xstrategy', 'filtered'],
    check: (r) => expect(r.superblock.flags & Flag.COMP_OPT).to.equal(Flag.COMP_OPT),
  },
  { name: 'lzo default', tool: 'mksquashfs', codec: 'lzo', args: [] },
  { name: 'lzo -Xalgorithm lzo1x_1', tool: 'mksquashfs', codec: 'lzo', args: ['-Xalgorithm', 'lzo1x_1'] },
  { name: 'lz4 default', tool: 'mksquashfs', codec: 'lz4', args: [] },
  { name: 'lz4 -Xhc', tool: 'mksquashfs', codec: 'lz4', args: ['-Xhc'] },
  { name: 'xz default', tool: 'mksquashfs', codec: 'xz', args: [] },
  { name: 'xz dict 64K bcj x86,arm', tool: 'mksquashfs', codec: 'xz', args: ['-Xdict-size', '64K', '-Xbcj', 'x86,arm'] },
  { name: 'zstd default', tool: 'mksquashfs', codec: 'zstd', args: [] },
  { name: 'zstd level 19', tool: 'mksquashfs', codec: 'zstd', args: ['-Xcompression-level', '19'] },
  { name: 'lzma default (unsquashfs-only codec)', tool: 'mksquashfs', codec: 'lzma', args: [] },
  { name: 'hpcc writer gzip -b 4K', tool: 'hpcc', codec: 'gzip', args: ['4096'], many: true },
  { name: 'hpcc writer zstd', tool: 'hpcc', codec: 'zstd', args: [] },
  { name: 'tar2sqfs gzip', tool: 'tar2sqfs', codec: 'gzip', args: [], many: true, check: (r) => expect(r.superblock.exportTableStart).to.equal(INVALID64) },
  { name: 'tar2sqfs xz', tool: 'tar2sqfs', codec: 'xz', args: [] },
];

async function codecSupported(codec: CodecName): Promise<boolean> {
  try {
    await createDecoder(CODEC_IDS[codec], null, 131072);
    return true;
  } catch (e) {
    if (e instanceof HpccError && e.code === 'HPCC_E_CODEC_UNSUPPORTED') return false;
    return true; // e.g. options required: let the real open decide
  }
}

async function makeImage(c: ImageCase, src: string, out: string): Promise<void> {
  if (c.tool === 'hpcc') {
    // The project's own writer: the reader and writer must agree with the source tree, not just each other.
    const fh = await fsp.open(out, 'w+');
    try {
      const w = new SquashfsWriter({ handle: fh, compressor: c.codec, ...(c.args[0] ? { blockSize: Number(c.args[0]) } : {}) });
      await addDirectoryTree(w, src);
      await w.finish();
    } finally {
      await fh.close();
    }
    return;
  }
  if (c.tool === 'mksquashfs') {
    execFileSync('mksquashfs', [src, out, '-noappend', '-quiet', '-no-progress', '-comp', c.codec, ...c.args], { stdio: 'pipe' });
    return;
  }
  const tar = spawnSync('tar', ['--xattrs', '--xattrs-include=*', '-C', src, '-cf', '-', '.'], { maxBuffer: 256 * 1024 * 1024 });
  expect(tar.status, String(tar.stderr)).to.equal(0);
  const r = spawnSync('tar2sqfs', ['-q', '-c', c.codec, ...c.args, out], { input: tar.stdout, maxBuffer: 16 * 1024 * 1024 });
  expect(r.status, String(r.stderr)).to.equal(0);
}

function hex(v: Uint8Array): string {
  return Buffer.from(v).toString('hex');
}

/** The walk order the reader promises: pre-order depth-first, siblings sorted by name bytes. */
function expectedOrder(src: Map<string, SourceEntry>): string[] {
  const kids = new Map<string, string[]>();
  for (const p of src.keys()) {
    if (p === '/') continue;
    const parent = p.slice(0, p.lastIndexOf('/')) || '/';
    if (!kids.has(parent)) kids.set(parent, []);
    kids.get(parent)!.push(p);
  }
  const out: string[] = [];
  const visit = (p: string) => {
    out.push(p);
    const k = (kids.get(p) ?? []).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const c of k) visit(c);
  };
  visit('/');
  return out;
}

/** Compare the reader's view of the whole image with the source tree. */
async function compareWithSource(r: SquashfsReader, src: Map<string, SourceEntry>, xattrs: Map<string, Map<string, string>>, c: ImageCase) {
  const seen = new Set<string>();
  const byInode = new Map<number, number>(); // image inode number → source ino
  for await (const { path: p, stat } of r.walk()) {
    const s = src.get(p);
    expect(s, `${c.name}: unexpected entry ${p}`).to.not.equal(undefined);
    seen.add(p);
    const want = { type: s!.type, mode: s!.mode, uid: s!.uid, gid: s!.gid, mtime: s!.mtime };
    expect({ type: stat.type, mode: stat.mode, uid: stat.uid, gid: stat.gid, mtime: stat.mtime }, `${c.name}: ${p}`).to.deep.equal(want);
    if (stat.type === 'file' || stat.type === 'symlink') expect(stat.size, `${c.name}: size of ${p}`).to.equal(s!.size);
    if (stat.type !== 'dir') expect(stat.nlink, `${c.name}: nlink of ${p}`).to.equal(s!.nlink);
    if (stat.type === 'char' || stat.type === 'block') {
      expect([stat.rdevMajor, stat.rdevMinor], `${c.name}: rdev of ${p}`).to.deep.equal([s!.rdevMajor, s!.rdevMinor]);
    }
    // Hard links: one image inode number per source inode and vice versa.
    if (stat.type !== 'dir') {
      const prev = byInode.get(stat.inodeNumber);
      if (prev !== undefined) expect(prev, `${c.name}: hard link ${p}`).to.equal(s!.ino);
      byInode.set(stat.inodeNumber, s!.ino);
    }
    if (stat.type === 'file') {
      const data = await r.readFile(p);
      expect(sha256(data), `${c.name}: bytes of ${p}`).to.equal(s!.sha256);
    }
    if (stat.type === 'symlink') expect(await r.readlink(p), `${c.name}: target of ${p}`).to.equal(s!.target);
    const got = new Map([...(await r.getXattrs(p))].map(([k, v]) => [k, hex(v)]));
    const exp = c.noXattrs ? new Map() : (xattrs.get(p) ?? new Map());
    expect(Object.fromEntries(got), `${c.name}: xattrs of ${p}`).to.deep.equal(Object.fromEntries(exp));
  }
  // Depth-first, children in byte order of their names (as stored, §6).
  const order: string[] = [];
  for await (const e of r.walk()) order.push(e.path);
  expect(order, `${c.name}: walk order`).to.deep.equal(expectedOrder(src));
  const missing = [...src.keys()].filter((k) => !seen.has(k));
  expect(missing, `${c.name}: entries missing from the walk`).to.deep.equal([]);
  expect(new Set(byInode.values()).size, `${c.name}: distinct inodes`).to.equal(byInode.size);
}

/** Compare an extracted tree with the source (modes, owners, mtimes, bytes, links, hard links, xattrs). */
function xattrHelperBuilt(): boolean {
  try {
    xattrAddon();
    return true;
  } catch (e) {
    if (IN_CI) throw e; // CI builds native/ first; a missing helper is a failure there
    return false;
  }
}

function compareExtracted(out: string, src: Map<string, SourceEntry>, xattrs: Map<string, Map<string, string>>, c: ImageCase, owned: boolean) {
  const got = scanTree(out);
  const inoMap = new Map<number, number>();
  for (const [p, s] of src) {
    if ((s.type === 'char' || s.type === 'block') && !IS_ROOT) continue;
    const g = got.get(p);
    expect(g, `${c.name}: extracted ${p}`).to.not.equal(undefined);
    expect(g!.type, `${c.name}: type of ${p}`).to.equal(s.type);
    if (s.type !== 'symlink') expect(g!.mode.toString(8), `${c.name}: mode of ${p}`).to.equal(s.mode.toString(8));
    if (owned) expect([g!.uid, g!.gid], `${c.name}: owner of ${p}`).to.deep.equal([s.uid, s.gid]);
    expect(g!.mtime, `${c.name}: mtime of ${p}`).to.equal(s.mtime);
    if (s.type === 'file') expect(g!.sha256, `${c.name}: bytes of ${p}`).to.equal(s.sha256);
    if (s.type === 'symlink') expect(g!.target, `${c.name}: target of ${p}`).to.equal(s.target);
    if (s.type === 'char' || s.type === 'block') expect([g!.rdevMajor, g!.rdevMinor]).to.deep.equal([s.rdevMajor, s.rdevMinor]);
    if (s.type !== 'dir') {
      expect(g!.nlink, `${c.name}: nlink of ${p}`).to.equal(s.nlink);
      const prev = inoMap.get(s.ino);
      if (prev !== undefined) expect(g!.ino, `${c.name}: hard link ${p}`).to.equal(prev);
      inoMap.set(s.ino, g!.ino);
    }
  }
  expect(got.size, `${c.name}: extracted entry count`).to.equal(IS_ROOT ? src.size : [...src.values()].filter((s) => s.type !== 'char' && s.type !== 'block').length);
  const sparse = fs.statSync(path.join(out, 'sizes', 'sparse'));
  expect(sparse.blocks * 512, `${c.name}: sparse file keeps its holes`).to.be.below(sparse.size);
  if (!c.noXattrs && xattrHelperBuilt()) {
    const gx = scanXattrs(out);
    expect(Object.fromEntries([...gx].map(([k, v]) => [k, Object.fromEntries(v)]))).to.deep.equal(
      Object.fromEntries([...xattrs].map(([k, v]) => [k, Object.fromEntries(v)])),
    );
  }
}

describe('squashfs reader on mksquashfs, tar2sqfs and hpcc-written images', function () {
  this.timeout(120_000);
  let tmp: string;
  const trees: Record<'small' | 'many', { dir: string; entries: Map<string, SourceEntry>; xattrs: Map<string, Map<string, string>> }> =
    {} as never;

  before(function () {
    requireTools(this, 'mksquashfs', 'tar2sqfs', 'setfattr', 'getfattr', 'truncate', 'mkfifo', 'tar');
    tmp = makeTempDir('hpcc-sqfs-reader-');
    for (const kind of ['small', 'many'] as const) {
      const dir = path.join(tmp, `src-${kind}`);
      buildTree(dir, { many: kind === 'many' });
      trees[kind] = { dir, entries: scanTree(dir), xattrs: scanXattrs(dir) };
    }
  });

  after(() => {
    if (tmp) removeTree(tmp);
  });

  it('resolves paths inside the image only, with typed lookup errors', async function () {
    const tree = trees.small;
    const img = path.join(tmp, 'api.sqfs');
    await makeImage({ name: 'api', tool: 'mksquashfs', codec: 'gzip', args: [] }, tree.dir, img);
    const r = await SquashfsReader.open(img);
    const code = async (p: Promise<unknown>) =>
      p.then(
        () => 'no error',
        (e: unknown) => (e instanceof HpccError ? e.code : `untyped: ${String(e)}`),
      );
    try {
      expect((await r.lstat('links/rel')).type).to.equal('symlink');
      expect((await r.stat('links/rel')).size).to.equal(1);
      expect(await r.stat('/links/abs')).to.deep.equal(await r.lstat('d1/hard1'));
      expect(await r.stat('links/escape')).to.deep.equal(await r.lstat('sizes/one'));
      expect((await r.lstat('links/loop1')).type).to.equal('symlink');
      expect(await code(r.stat('links/loop1'))).to.equal('HPCC_E_SQFS_SYMLINK_LOOP');
      expect(await code(r.stat('links/dangling'))).to.equal('HPCC_E_SQFS_NOT_FOUND');
      expect(await code(r.lstat('nope'))).to.equal('HPCC_E_SQFS_NOT_FOUND');
      expect((await r.readdir('links/dirlink')).map((d) => d.name)).to.deep.equal(['hard2', 'sub']);
      expect(sha256(await r.readFile('links/dirlink/sub/hard3'))).to.equal(tree.entries.get('/d1/hard1')!.sha256);
      expect(await code(r.readdir('sizes/one'))).to.equal('HPCC_E_SQFS_NOT_DIR');
      expect(await code(r.lstat('sizes/one/x'))).to.equal('HPCC_E_SQFS_NOT_DIR');
      expect(await code(r.readlink('sizes/one'))).to.equal('HPCC_E_SQFS_NOT_LINK');
      expect(await code(r.readFile('d1'))).to.equal('HPCC_E_SQFS_NOT_FILE');
      expect(await code(r.readFile('sizes/big3m', { maxBytes: 1000 }))).to.equal('HPCC_E_SQFS_FILE_TOO_LARGE');
      for (const p of ['', '/', '.', '..', '/../..']) expect((await r.lstat(p)).inodeNumber).to.equal(r.superblock.inodeCount);
      expect(await r.lstat('d1/../sizes/./one')).to.deep.equal(await r.lstat('../../sizes//one'));
      // Hard links share an inode number; nlink counts the names.
      const h = await r.lstat('d1/hard1');
      expect(h.nlink).to.equal(3);
      expect((await r.lstat('d2/sub/hard3')).inodeNumber).to.equal(h.inodeNumber);
      // Listings are in byte order, as stored.
      const names = fs.readdirSync(tree.dir).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      expect((await r.readdir('/')).map((d) => d.name)).to.deep.equal(names);
      const walked: string[] = [];
      for await (const e of r.walk('d2')) walked.push(e.path);
      expect(walked).to.deep.equal(['/d2', '/d2/hard2', '/d2/sub', '/d2/sub/hard3']);
      // Streaming: block-sized chunks, same bytes.
      let n = 0;
      const hash = createHash('sha256');
      for await (const c of r.createReadStream('sizes/big3m')) {
        expect(c.length).to.be.at.most(r.superblock.blockSize);
        hash.update(c);
        n++;
      }
      expect(n).to.equal(24);
      expect(hash.digest('hex')).to.equal(tree.entries.get('/sizes/big3m')!.sha256);
    } finally {
      await r.close();
    }
    expect(await code(r.lstat('/sizes/one'))).to.equal('HPCC_E_SQFS_CLOSED');
    // A partition inside a larger file (as in a SIF), and bad opens.
    const bytes = fs.readFileSync(img);
    const sif = path.join(tmp, 'embedded.bin');
    fs.writeFileSync(sif, Buffer.concat([Buffer.alloc(12345, 0xee), bytes, Buffer.alloc(100, 0xdd)]));
    const e = await SquashfsReader.open(sif, { offset: 12345, size: bytes.length });
    let count = 0;
    for await (const x of e.walk()) {
      if (x.stat.type !== 'file') continue;
      expect(sha256(await e.readFile(x.path))).to.equal(tree.entries.get(x.path)!.sha256);
      count++;
    }
    expect(count).to.be.greaterThan(20);
    await e.close();
    expect(await code(SquashfsReader.open(sif, { offset: 12345, size: 5000 }))).to.equal('HPCC_E_SQFS_TRUNCATED');
    expect(await code(SquashfsReader.open(sif, { offset: 12345 + bytes.length + 200 }))).to.equal('HPCC_E_SQFS_OUT_OF_BOUNDS');
    expect(await code(SquashfsReader.open(sif))).to.equal('HPCC_E_SQFS_BAD_MAGIC');
    expect(await code(SquashfsReader.open(path.join(tmp, 'missing.sqfs')))).to.equal('HPCC_E_IO_ENOENT');
  });

  for (const c of CASES) {
    it(`reads and extracts: ${c.name}`, async function () {
      const tree = trees[c.many ? 'many' : 'small'];
      const img = path.join(tmp, `${c.name.replace(/[^a-z0-9]+/gi, '_')}.sqfs`);
      await makeImage(c, tree.dir, img);
      if (!(await codecSupported(c.codec))) {
        // Until the codec lands: the reader must refuse with the typed error, not crash.
        const err = await SquashfsReader.open(img).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(HpccError);
        expect((err as HpccError).code).to.equal('HPCC_E_CODEC_UNSUPPORTED');
        this.skip(); // pending: enabled automatically once createDecoder supports the codec
      }
      const r = await SquashfsReader.open(img);
      const out = path.join(tmp, `out-${path.basename(img)}`);
      try {
        expect(r.compressor).to.equal(c.codec);
        c.check?.(r);
        await compareWithSource(r, tree.entries, tree.xattrs, c);
        const warnings: string[] = [];
        const res = await extractTree(r, out, { xattrs: !c.noXattrs, onWarning: (m) => warnings.push(m) });
        expect(res.entries).to.be.greaterThan(tree.entries.size - 5);
        if (IS_ROOT && xattrHelperBuilt()) expect(warnings).to.deep.equal([]);
        compareExtracted(out, tree.entries, tree.xattrs, c, IS_ROOT);
      } finally {
        await r.close();
        removeTree(out);
        fs.rmSync(img, { force: true });
      }
    });
  }
});

describe('squashfs reader: files over 4 GiB (HPCC_TEST_LARGE=1)', function () {
  this.timeout(600_000);
  let tmp: string | undefined;
  after(() => tmp && removeTree(tmp));

  it('streams and extracts a sparse 4 GiB + 4097 byte file with data across the 4 GiB boundary', async function () {
    if (process.env.HPCC_TEST_LARGE !== '1') this.skip();
    requireTools(this, 'mksquashfs', 'truncate');
    tmp = makeTempDir('hpcc-sqfs-large-');
    const src = path.join(tmp, 'src');
    fs.mkdirSync(src);
    const big = path.join(src, 'big');
    const size = 2 ** 32 + 4097;
    execFileSync('truncate', ['-s', String(size), big]);
    const fd = fs.openSync(big, 'r+');
    for (const [pos, text] of [[0, 'head'], [2 ** 32 - 3, 'across-4GiB'], [size - 10, 'tail-bytes']] as const) fs.writeSync(fd, text, pos);
    fs.closeSync(fd);
    const want = createHash('sha256');
    for await (const c of fs.createReadStream(big, { highWaterMark: 1 << 20 })) want.update(c as Buffer);
    const img = path.join(tmp, 'big.sqfs');
    execFileSync('mksquashfs', [src, img, '-noappend', '-quiet', '-no-progress'], { stdio: 'pipe' });
    const r = await SquashfsReader.open(img);
    try {
      expect((await r.lstat('big')).size).to.equal(size);
      const got = createHash('sha256');
      for await (const c of r.createReadStream('big')) got.update(c);
      expect(got.digest('hex')).to.equal(want.digest('hex'));
      const out = path.join(tmp, 'out');
      await extractTree(r, out);
      const st = fs.statSync(path.join(out, 'big'));
      expect(st.size).to.equal(size);
      expect(st.blocks * 512).to.be.below(1 << 20); // holes stayed holes
      const probe = Buffer.alloc(11);
      const ofd = fs.openSync(path.join(out, 'big'), 'r');
      fs.readSync(ofd, probe, 0, 11, 2 ** 32 - 3);
      fs.closeSync(ofd);
      expect(probe.toString()).to.equal('across-4GiB');
    } finally {
      await r.close();
    }
  });
});
