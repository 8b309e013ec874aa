/**
 * One-name look-ups through the extended directory inode's index (reader
 * directory.ts), on mksquashfs images: large directories (index present)
 * and small ones (none: a scan from the listing start), names before the first and after the last index
 * point, on index points, between them and missing; hostile indexes
 * (offsets outside the listing or mid-entry, unsorted names, a start block
 * outside the table, a name that does not match its header) fall back to the
 * full listing and still answer correctly.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SquashfsReader } from '../../src/formats/squashfs/index.js';
import type { DirIndexEntry, DirInode } from '../../src/formats/squashfs/layout.js';
import { DirectoryReader } from '../../src/formats/squashfs/reader/directory.js';
import { findTool, makeTempDir, removeTree, requireTools } from '../helpers/env.js';

const enc = new TextEncoder();

describe('squashfs reader: directory look-ups through the index', function () {
  this.timeout(60_000);
  let tmp: string;
  let image: string;
  const bigNames: string[] = [];

  before(function () {
    requireTools(this, 'mksquashfs');
    tmp = makeTempDir('hpcc-sqfs-lookup-');
    const tree = path.join(tmp, 'tree');
    fs.mkdirSync(path.join(tree, 'big'), { recursive: true });
    fs.mkdirSync(path.join(tree, 'small'));
    // ~2500 names of mixed lengths: a listing of several 8 KiB stretches, so several index points
    for (let i = 0; i < 2500; i++) {
      const n = `f${String(i * 7).padStart(5, '0')}${i % 3 === 0 ? '-a-longer-name-here' : ''}`;
      bigNames.push(n);
      fs.writeFileSync(path.join(tree, 'big', n), i % 5 === 0 ? `${i}` : '');
    }
    fs.mkdirSync(path.join(tree, 'big', 'f00700-dir'));
    bigNames.push('f00700-dir');
    fs.symlinkSync('f00007', path.join(tree, 'big', 'f00014-link'));
    bigNames.push('f00014-link');
    for (const n of ['a', 'b', 'c']) fs.writeFileSync(path.join(tree, 'small', n), n);
    // ~200 entries, under 8 KiB of listing: no index, one scan resumed across look-ups
    fs.mkdirSync(path.join(tree, 'medium'));
    for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(tree, 'medium', `m${String(i * 3).padStart(4, '0')}`), '');
    image = path.join(tmp, 'img.sqfs');
    execFileSync(findTool('mksquashfs')!, [tree, image, '-noappend', '-quiet', '-no-progress'], { stdio: 'ignore' });
  });
  after(() => {
    if (tmp) removeTree(tmp);
  });

  /** The answer of the full listing (a separate reader, so look-ups elsewhere never hit its cache). */
  async function truth(dir: string): Promise<(name: string) => ReturnType<typeof DirectoryReader.find>> {
    const r = await SquashfsReader.open(image);
    const d = r.resolve(dir, true);
    const list = r.listDir(d.ref, d.inode as DirInode);
    await r.close();
    return (name) => DirectoryReader.find(list, enc.encode(name));
  }

  function probes(index: DirIndexEntry[]): string[] {
    const dec = new TextDecoder();
    const out = ['0', 'f', 'f00000', 'f00000-', 'zzz', 'f99999', 'f00014-link', 'f00700-dir', 'f00013', 'f00700-dirx'];
    for (const e of index) {
      const n = dec.decode(e.name);
      out.push(n, n.slice(0, -1), `${n}0`, `${n.slice(0, -1)}${String.fromCharCode(n.charCodeAt(n.length - 1) - 1)}~`);
    }
    for (let i = 0; i < bigNames.length; i += 97) out.push(bigNames[i]!);
    out.push(bigNames[bigNames.length - 3]!);
    return out;
  }

  it('a large directory has an index and every name (present or not) is answered through it like the full listing', async () => {
    const want = await truth('/big');
    const r = await SquashfsReader.open(image);
    try {
      const big = r.resolve('/big', true);
      const ino = big.inode as DirInode;
      expect(ino.index.length, 'index points').to.be.greaterThan(2);
      for (const name of [...probes(ino.index), ...bigNames]) {
        const got = r.lookupIn(big, name);
        expect(got.via, name).to.equal('index');
        const w = want(name);
        expect(got.entry && { ref: got.entry.ref, n: got.entry.inodeNumber, t: got.entry.type, s: got.entry.nameStr }, name).to.deep.equal(
          w && { ref: w.ref, n: w.inodeNumber, t: w.type, s: w.nameStr },
        );
      }
      // paths through the index resolve as before
      expect((await r.stat('/big/f00700-dir')).type).to.equal('dir');
      expect((await r.readFile('/big/f00014-link')).toString()).to.equal('');
      expect((await r.readFile(`/big/${bigNames[5]!}`)).toString()).to.equal('5');
    } finally {
      await r.close();
    }
  });

  it('a small directory has no index: a scan from the listing start; a listed directory answers from the cache', async () => {
    const r = await SquashfsReader.open(image);
    try {
      const small = r.resolve('/small', true);
      expect((small.inode as DirInode).index).to.deep.equal([]);
      const cases = [['a', true], ['b', true], ['c', true], ['0', false], ['bb', false], ['d', false]] as const;
      for (const [name, found] of cases) {
        const got = r.lookupIn(small, name);
        expect(got.via).to.equal('scan');
        expect(got.entry?.nameStr, name).to.equal(found ? name : undefined);
      }
      await r.readdir('/small');
      for (const [name, found] of cases) {
        const got = r.lookupIn(small, name);
        expect(got.via).to.equal('cache');
        expect(got.entry?.nameStr, name).to.equal(found ? name : undefined);
      }
    } finally {
      await r.close();
    }
  });

  it('a directory without an index: look-ups in any order resume one scan and agree with the full listing', async () => {
    const want = await truth('/medium');
    const r = await SquashfsReader.open(image);
    try {
      const dir = r.resolve('/medium', true);
      expect((dir.inode as DirInode).index).to.deep.equal([]);
      const names: string[] = [];
      for (let i = 0; i < 600; i += 1) names.push(`m${String(i).padStart(4, '0')}`);
      names.push('a', 'm', 'm0000', 'm05', 'z', 'm0597', 'm0598');
      // forwards, backwards and shuffled (a fixed permutation)
      const orders = [names, [...names].reverse(), names.map((_, i) => names[(i * 211) % names.length]!)];
      for (const order of orders) {
        for (const name of order) {
          const got = r.lookupIn(dir, name);
          expect(got.via).to.equal('scan');
          expect(got.entry?.ref, name).to.equal(want(name)?.ref);
          expect(got.entry?.nameStr, name).to.equal(want(name)?.nameStr);
        }
      }
    } finally {
      await r.close();
    }
  });

  const hostile: Record<string, (index: DirIndexEntry[], size: number) => DirIndexEntry[]> = {
    'an offset past the listing': (x, size) => x.map((e, i) => (i === 1 ? { ...e, index: size + 100 } : e)),
    'offsets not increasing': (x) => x.map((e, i) => (i === 1 ? { ...e, index: x[0]!.index } : e)),
    'names unsorted': (x) => x.map((e, i) => (i === 0 ? { ...e, name: x[1]!.name } : i === 1 ? { ...e, name: x[0]!.name } : e)),
    'a start block outside the directory table': (x) => x.map((e) => ({ ...e, start: 0x7fffffff })),
    'an offset inside an entry': (x) => x.map((e) => ({ ...e, index: e.index + 5 })),
    'a name that is not the first after its header': (x) => x.map((e) => ({ ...e, name: enc.encode(`${new TextDecoder().decode(e.name)}0`) })),
    'points one header early (still right, just longer)': (x) => x.map((e, i) => (i > 0 ? { ...e, index: x[i - 1]!.index, start: x[i - 1]!.start, name: x[i - 1]!.name } : e)).filter((e, i, a) => i === 0 || e.index !== a[i - 1]!.index),
  };
  for (const [what, mutate] of Object.entries(hostile)) {
    it(`hostile index, ${what}: the same answers (index or fallback), no crash`, async () => {
      const want = await truth('/big');
      const vias = new Set<string>();
      let names: string[] | null = null;
      for (let k = 0; names === null || k < names.length; k++) {
        // a fresh reader per name: a fallback lists (and caches) the directory
        const r = await SquashfsReader.open(image);
        try {
          const big = r.resolve('/big', true);
          const ino = big.inode as DirInode;
          names ??= probes(ino.index);
          const bad = { ...big, inode: { ...ino, index: mutate(ino.index, ino.fileSize - 3) } };
          const got = r.lookupIn(bad, names[k]!);
          vias.add(got.via);
          expect(got.entry?.ref, `${names[k]} via ${got.via}`).to.equal(want(names[k]!)?.ref);
        } finally {
          await r.close();
        }
      }
      // an index that does not fit the listing is not used at all; one that misleads falls back name by name
      if (/past the listing|not increasing|unsorted/.test(what)) expect([...vias]).to.deep.equal(['list']);
      else if (/one header early/.test(what)) expect([...vias]).to.deep.equal(['index']);
      else expect([...vias]).to.include('list');
    });
  }
});
