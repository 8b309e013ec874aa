/**
 * Hostile directory contents on otherwise valid images (made by mksquashfs
 * with uncompressed tables, then patched): bad names, duplicate names that
 * would let a symlink redirect extraction, directory loops, absurd sizes.
 * The reader must refuse with typed errors and extraction must write nothing
 * outside its target.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { HpccError } from '../../../../src/errors/index.js';
import { SquashfsReader, extractTree } from '../../../../src/formats/squashfs/index.js';
import { METADATA_SIZE, refBlock, refOffset } from '../../../../src/formats/squashfs/layout.js';
import { makeTempDir, removeTree, requireTools } from '../../../helpers/env.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e, String((e as Error)?.stack)).to.be.instanceOf(HpccError);
    return (e as HpccError).code;
  }
  throw new Error('expected an HpccError');
}

async function walkAll(r: SquashfsReader): Promise<string[]> {
  const out: string[] = [];
  for await (const e of r.walk()) out.push(e.path);
  return out;
}

/** Position of byte `off` of a raw metadata stream whose block header is at `blockPos`. */
function rawPos(blockPos: number, off: number): number {
  return blockPos + 2 + (off % METADATA_SIZE) + Math.floor(off / METADATA_SIZE) * (METADATA_SIZE + 2);
}

interface EntryLoc {
  header: number; // position of the run's header
  entry: number; // position of the entry
  name: string;
}

/** Entries of a small directory in a raw image (one run per header, no block crossing). */
async function entriesOf(img: Uint8Array, dir: string): Promise<EntryLoc[]> {
  const r = await SquashfsReader.fromBuffer(img);
  const d = r.resolve(dir, false).inode;
  if (d.kind !== 'dir') throw new Error('not a dir');
  let p = rawPos(r.superblock.directoryTableStart + d.dirBlock, d.dirOffset);
  const end = p + d.fileSize - 3;
  const out: EntryLoc[] = [];
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  while (p < end) {
    const header = p;
    const count = dv.getUint32(p, true) + 1;
    p += 12;
    for (let i = 0; i < count; i++) {
      const len = dv.getUint16(p + 6, true) + 1;
      out.push({ header, entry: p, name: Buffer.from(img.subarray(p + 8, p + 8 + len)).toString() });
      p += 8 + len;
    }
  }
  await r.close();
  return out;
}

describe('squashfs reader: hostile directory contents', function () {
  this.timeout(30_000);
  let tmp: string;

  before(function () {
    requireTools(this, 'mksquashfs');
    tmp = makeTempDir('hpcc-sqfs-safety-');
  });
  after(() => tmp && removeTree(tmp));

  function image(name: string, build: (src: string) => void): Uint8Array {
    const src = path.join(tmp, `${name}-src`);
    fs.mkdirSync(src);
    build(src);
    const img = path.join(tmp, `${name}.sqfs`);
    execFileSync('mksquashfs', [src, img, '-noappend', '-quiet', '-no-progress', '-noI', '-noD', '-noF', '-noX'], { stdio: 'pipe' });
    return new Uint8Array(fs.readFileSync(img));
  }

  async function renamed(img: Uint8Array, dir: string, from: string, to: string): Promise<Uint8Array> {
    const e = (await entriesOf(img, dir)).find((x) => x.name === from)!;
    expect(to.length).to.equal(from.length);
    const out = img.slice();
    out.set(Buffer.from(to), e.entry + 8);
    return out;
  }

  for (const bad of ['..', 'a/', '.\0']) {
    it(`refuses an entry named ${JSON.stringify(bad)} when walking and extracting`, async () => {
      const img = await renamed(image(`name${bad.charCodeAt(1)}`, (s) => fs.writeFileSync(path.join(s, 'ab'), 'x')), '/', 'ab', bad);
      const r = await SquashfsReader.fromBuffer(img);
      expect(await code(walkAll(r))).to.equal('HPCC_E_SQFS_BAD_NAME');
      const parent = path.join(tmp, `x-${bad.charCodeAt(1)}`);
      fs.mkdirSync(parent);
      expect(await code(extractTree(r, path.join(parent, 'out')))).to.equal('HPCC_E_SQFS_BAD_NAME');
      expect(fs.readdirSync(parent)).to.deep.equal([]); // the target it created is removed again
    });
  }

  it('refuses a duplicate name that would let a symlink redirect extraction', async () => {
    const outside = path.join(tmp, 'outside');
    fs.mkdirSync(outside);
    const base = image('dup', (s) => {
      fs.symlinkSync(outside, path.join(s, 'evil'));
      fs.mkdirSync(path.join(s, 'evim'));
      fs.writeFileSync(path.join(s, 'evim', 'pwn'), 'owned');
    });
    const img = await renamed(base, '/', 'evim', 'evil');
    const r = await SquashfsReader.fromBuffer(img);
    expect(await code(walkAll(r))).to.equal('HPCC_E_SQFS_BAD_DIR');
    expect(await code(extractTree(r, path.join(tmp, 'dup-out')))).to.equal('HPCC_E_SQFS_BAD_DIR');
    expect(fs.readdirSync(outside)).to.deep.equal([]);
  });

  it('extracts symlinks pointing outside without following them', async () => {
    const outside = path.join(tmp, 'outside2');
    fs.mkdirSync(outside);
    const img = image('links', (s) => {
      fs.symlinkSync(outside, path.join(s, 'abs'));
      fs.symlinkSync('../../../../../../..', path.join(s, 'up'));
      fs.writeFileSync(path.join(s, 'file'), 'f');
    });
    const r = await SquashfsReader.fromBuffer(img);
    const out = path.join(tmp, 'links-out');
    await extractTree(r, out);
    expect(fs.readlinkSync(path.join(out, 'abs'))).to.equal(outside);
    expect(fs.readlinkSync(path.join(out, 'up'))).to.equal('../../../../../../..');
    expect(fs.readdirSync(outside)).to.deep.equal([]);
    // Inside the image, absolute and '..'-heavy targets stay in the image root.
    expect(await code(r.stat('abs'))).to.equal('HPCC_E_SQFS_NOT_FOUND');
    expect((await r.stat('up')).type).to.equal('dir');
    expect((await r.stat('up/up/up/file')).size).to.equal(1);
  });

  it('refuses a non-empty extraction target', async () => {
    const img = image('target', (s) => fs.writeFileSync(path.join(s, 'f'), 'f'));
    const r = await SquashfsReader.fromBuffer(img);
    const out = path.join(tmp, 'busy');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'keep'), 'k');
    expect(await code(extractTree(r, out))).to.equal('HPCC_E_EXTRACT_TARGET');
    expect(fs.readdirSync(out)).to.deep.equal(['keep']);
  });

  it('detects a directory that contains its own ancestor', async () => {
    const base = image('loop', (s) => {
      fs.mkdirSync(path.join(s, 'sub'));
      fs.writeFileSync(path.join(s, 'sub', 'f'), 'f');
    });
    const r0 = await SquashfsReader.fromBuffer(base);
    const root = r0.resolve('/', false);
    const e = (await entriesOf(base, '/')).find((x) => x.name === 'sub')!;
    const img = base.slice();
    const dv = new DataView(img.buffer);
    expect(dv.getUint32(e.header + 4, true)).to.equal(refBlock(root.ref));
    dv.setUint16(e.entry, refOffset(root.ref), true);
    dv.setInt16(e.entry + 2, root.inode.inodeNumber - dv.getUint32(e.header + 8, true), true);
    const r = await SquashfsReader.fromBuffer(img);
    expect(await code(walkAll(r))).to.equal('HPCC_E_SQFS_DIR_LOOP');
    expect((await r.readdir('sub/sub/sub/sub')).map((d) => d.name)).to.deep.equal(['sub']);
    const parent = path.join(tmp, 'loop-parent');
    fs.mkdirSync(parent);
    expect(await code(extractTree(r, path.join(parent, 'out')))).to.equal('HPCC_E_SQFS_DIR_LOOP');
    expect(fs.readdirSync(parent)).to.deep.equal([]);
  });

  it('stops a walk when directory inodes share one listing (work stays linear in the table size)', async () => {
    const base = image('shared', (s) => {
      fs.mkdirSync(path.join(s, 'a'));
      fs.mkdirSync(path.join(s, 'b'));
      for (let i = 0; i < 1200; i++) fs.writeFileSync(path.join(s, 'a', `entry-${String(i).padStart(8, '0')}`), '');
      fs.writeFileSync(path.join(s, 'b', 'x'), '');
    });
    const r0 = await SquashfsReader.fromBuffer(base);
    const a = r0.resolve('a', false);
    const b = r0.resolve('b', false);
    expect(a.inode.kind === 'dir' && b.inode.kind === 'dir' && a.inode.type === 8 && b.inode.type === 1).to.equal(true);
    if (a.inode.kind !== 'dir') return;
    const img = base.slice();
    const dv = new DataView(img.buffer);
    const at = (o: number) => rawPos(r0.superblock.inodeTableStart + refBlock(b.ref), refOffset(b.ref) + o);
    dv.setUint32(at(16), a.inode.dirBlock, true); // basic dir: dir_block, file_size (u16), dir_offset
    dv.setUint16(at(24), a.inode.fileSize, true);
    dv.setUint16(at(26), a.inode.dirOffset, true);
    const r = await SquashfsReader.fromBuffer(img);
    expect((await r.readdir('b')).length).to.equal(1200); // lookups still work
    expect(await code(walkAll(r))).to.equal('HPCC_E_SQFS_BAD_DIR');
  });

  it('refuses a file inode whose size needs more block words than the table holds', async () => {
    const base = image('huge', (s) => fs.writeFileSync(path.join(s, 'f'), 'data'));
    const r0 = await SquashfsReader.fromBuffer(base);
    const f = r0.resolve('f', false);
    const img = base.slice();
    const pos = rawPos(r0.superblock.inodeTableStart + refBlock(f.ref), refOffset(f.ref) + 28); // basic file_size
    new DataView(img.buffer).setUint32(pos, 0xfffffff0, true);
    const r = await SquashfsReader.fromBuffer(img);
    expect(await code(r.readFile('f'))).to.equal('HPCC_E_SQFS_TRUNCATED');
  });
});
