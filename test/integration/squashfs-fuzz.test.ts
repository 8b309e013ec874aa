/**
 * Hostile-input fuzzing of the squashfs reader. Mutants of small valid images
 * (truncations, bit flips, targeted corruption of superblock fields, table
 * index entries, metadata block headers, inode fields and directory
 * headers/entries) must either read fine or fail with an HpccError — never
 * another exception, never a hang, never unbounded memory.
 *
 * Env: HPCC_FUZZ_ITERATIONS (default 3000), HPCC_FUZZ_SEED (printed on every
 * run; set it to reproduce).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { HpccError } from '../../src/errors/index.js';
import { SquashfsReader, extractTree } from '../../src/formats/squashfs/index.js';
import { METADATA_SIZE, refBlock, refOffset } from '../../src/formats/squashfs/layout.js';
import { makeTempDir, removeTree, requireTools } from '../helpers/env.js';
import { FUZZ_ITERATIONS, FUZZ_SEED, prng } from '../helpers/fuzz.js';

const ITERATIONS = FUZZ_ITERATIONS;
const SEED = FUZZ_SEED;
const PER_MUTANT_MS = 10_000; // generous: CI machines are shared; typical mutants take < 10 ms
const MAX_FILE_BYTES = 4 * 1024 * 1024;
const MAX_BYTES_PER_MUTANT = 16 * 1024 * 1024;

interface Field {
  pos: number;
  width: 1 | 2 | 4 | 8;
  what: string;
}

interface Base {
  name: string;
  bytes: Uint8Array;
  fields: Field[]; // targeted corruption sites
  metaStart: number;
}

const INTERESTING = [
  0, 1, 2, 3, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xfff, 0x1000, 0x1fff, 0x2000, 0x2001, 0x7fff, 0x8000, 0x8001, 0xa000, 0xffff, 0x10000,
  0x1000000, 0x1ffffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
];

function putLE(buf: Uint8Array, pos: number, width: number, v: number, hiAllOnes: boolean): void {
  for (let i = 0; i < width && pos + i < buf.length; i++) {
    const byte = i < 4 ? (v >>> (8 * i)) & 0xff : hiAllOnes ? 0xff : 0;
    buf[pos + i] = byte;
  }
}

/** Absolute position of byte `off` of a raw (uncompressed) metadata stream starting at block `blockPos`. */
function rawMetaPos(blockPos: number, off: number): number {
  let p = blockPos;
  let o = off;
  while (o >= METADATA_SIZE) {
    p += 2 + METADATA_SIZE;
    o -= METADATA_SIZE;
  }
  return p + 2 + o;
}

async function describeBase(name: string, bytes: Uint8Array, raw: boolean): Promise<Base> {
  const r = await SquashfsReader.fromBuffer(bytes);
  const sb = r.superblock;
  const fields: Field[] = [];
  const sbFields: Array<[number, 2 | 4 | 8, string]> = [
    [4, 4, 'inode_count'], [12, 4, 'block_size'], [16, 4, 'fragment_count'], [20, 2, 'compressor'], [22, 2, 'block_log'],
    [24, 2, 'flags'], [26, 2, 'id_count'], [32, 8, 'root_inode'], [40, 8, 'bytes_used'], [48, 8, 'id_table_start'],
    [56, 8, 'xattr_table_start'], [64, 8, 'inode_table_start'], [72, 8, 'directory_table_start'], [80, 8, 'fragment_table_start'],
    [88, 8, 'export_table_start'],
  ];
  for (const [pos, width, what] of sbFields) fields.push({ pos, width, what: `superblock.${what}` });
  // Lookup table index arrays and the xattr header.
  const idx = (start: number, n: number, what: string) => {
    for (let i = 0; i < n; i++) if (start + 8 * i + 8 <= bytes.length) fields.push({ pos: start + 8 * i, width: 8, what: `${what}[${i}]` });
  };
  idx(sb.idTableStart, Math.ceil((sb.idCount * 4) / METADATA_SIZE), 'id index');
  if (sb.fragmentCount > 0) idx(sb.fragmentTableStart, Math.ceil((sb.fragmentCount * 16) / METADATA_SIZE), 'fragment index');
  if (sb.exportTableStart >= 0) idx(sb.exportTableStart, Math.ceil((sb.inodeCount * 8) / METADATA_SIZE), 'export index');
  if (sb.xattrTableStart >= 0) {
    fields.push({ pos: sb.xattrTableStart, width: 8, what: 'xattr kv_start' }, { pos: sb.xattrTableStart + 8, width: 4, what: 'xattr id count' });
    idx(sb.xattrTableStart + 16, 1, 'xattr id index');
  }
  // Metadata block headers: walk each table's block chain.
  for (const [start, end, what] of [
    [sb.inodeTableStart, sb.directoryTableStart, 'inode block header'],
    [sb.directoryTableStart, Math.min(sb.idTableStart, sb.fragmentCount > 0 ? sb.fragmentTableStart : Infinity), 'dir block header'],
  ] as const) {
    let p = start;
    while (p + 2 <= end) {
      fields.push({ pos: p, width: 2, what });
      p += 2 + ((bytes[p]! | (bytes[p + 1]! << 8)) & 0x7fff);
    }
  }
  if (raw) {
    // Inode fields and directory headers/entries, located through the reader itself.
    for await (const e of r.walk()) {
      const res = r.resolve(e.path, false);
      const ipos = (o: number) => rawMetaPos(sb.inodeTableStart + refBlock(res.ref), refOffset(res.ref) + o);
      for (const [o, w] of [[0, 2], [2, 2], [4, 2], [6, 2], [8, 4], [12, 4], [16, 4], [20, 4], [24, 4], [28, 4], [32, 4], [36, 4], [40, 4], [44, 4], [48, 4], [52, 4]] as const) {
        fields.push({ pos: ipos(o), width: w, what: `inode ${e.path} +${o}` });
      }
      const ino = res.inode;
      if (ino.kind === 'dir' && ino.fileSize > 3) {
        const dpos = (o: number) => rawMetaPos(sb.directoryTableStart + ino.dirBlock, ino.dirOffset + o);
        for (const [o, w] of [[0, 4], [4, 4], [8, 4], [12, 2], [14, 2], [16, 2], [18, 2], [20, 2], [28, 2], [30, 2]] as const) {
          fields.push({ pos: dpos(o), width: w, what: `dir ${e.path} +${o}` });
        }
      }
    }
  }
  await r.close();
  return { name, bytes, fields: fields.filter((f) => f.pos + f.width <= bytes.length), metaStart: sb.inodeTableStart };
}

type Mutation = { kind: string; bytes: Uint8Array };

function mutate(base: Base, rnd: () => number): Mutation {
  const int = (n: number) => Math.floor(rnd() * n);
  const b = base.bytes;
  const k = int(10);
  if (k === 0) {
    const len = int(b.length);
    return { kind: `truncate to ${len}`, bytes: b.slice(0, len) };
  }
  const out = b.slice();
  if (k <= 2) {
    const flips = 1 + int(8);
    for (let i = 0; i < flips; i++) {
      const p = int(out.length);
      out[p]! ^= 1 << int(8);
    }
    return { kind: `${flips} random bit flips`, bytes: out };
  }
  if (k === 3) {
    const p = base.metaStart + int(out.length - base.metaStart);
    out[p]! ^= 1 << int(8);
    return { kind: `metadata bit flip at ${p}`, bytes: out };
  }
  // Targeted: one or two fields get interesting values (or a +-1 nudge).
  const n = 1 + (rnd() < 0.2 ? 1 : 0);
  const what: string[] = [];
  for (let i = 0; i < n; i++) {
    const f = base.fields[int(base.fields.length)]!;
    const v = rnd() < 0.8 ? INTERESTING[int(INTERESTING.length)]! : int(0x100000000);
    putLE(out, f.pos, f.width, v, v === 0xffffffff && rnd() < 0.5);
    what.push(`${f.what}=0x${v.toString(16)}`);
  }
  return { kind: what.join(', '), bytes: out };
}

/** Exercise every read path on a mutant; returns bytes read. */
async function exercise(bytes: Uint8Array, deadline: number): Promise<number> {
  const r = await SquashfsReader.fromBuffer(bytes);
  let total = 0;
  try {
    for await (const { path: p, stat } of r.walk()) {
      if (Date.now() > deadline) throw new Error(`time budget exceeded at ${p}`);
      await r.getXattrs(p);
      if (stat.type === 'file' && total < MAX_BYTES_PER_MUTANT) {
        if (stat.size <= MAX_FILE_BYTES) total += (await r.readFile(p, { maxBytes: MAX_FILE_BYTES })).length;
        else {
          for await (const c of r.createReadStream(p)) {
            total += c.length;
            if (total >= MAX_BYTES_PER_MUTANT) break;
          }
        }
      } else if (stat.type === 'symlink') {
        await r.readlink(p);
        await r.stat(p).catch((e: unknown) => {
          if (!(e instanceof HpccError)) throw e;
        });
      } else if (stat.type === 'dir') {
        await r.readdir(p);
      }
    }
  } finally {
    await r.close();
  }
  return total;
}

describe('squashfs reader fuzz (hostile images)', function () {
  this.timeout(600_000);
  let tmp: string;
  const bases: Base[] = [];

  before(async function () {
    requireTools(this, 'mksquashfs', 'tar2sqfs', 'tar', 'setfattr');
    tmp = makeTempDir('hpcc-sqfs-fuzz-');
    const src = path.join(tmp, 'src');
    fs.mkdirSync(path.join(src, 'dir', 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'small'), 'hello squashfs\n');
    fs.writeFileSync(path.join(src, 'dir', 'multi'), Buffer.alloc(9000, 'abc'));
    fs.writeFileSync(path.join(src, 'dir', 'sub', 'tail'), Buffer.alloc(5000, 'q'));
    fs.writeFileSync(path.join(src, 'zeros'), Buffer.alloc(8192 + 100));
    fs.linkSync(path.join(src, 'small'), path.join(src, 'dir', 'hard'));
    fs.symlinkSync('../small', path.join(src, 'dir', 'link'));
    fs.symlinkSync('/dir/sub', path.join(src, 'abs'));
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(src, 'dir', `f${i}`), `file ${i}`);
    execFileSync('setfattr', ['-n', 'user.a', '-v', 'x'.repeat(40), path.join(src, 'small')]);
    execFileSync('setfattr', ['-n', 'user.a', '-v', 'x'.repeat(40), path.join(src, 'zeros')]);
    execFileSync('setfattr', ['-n', 'user.d', '-v', 'dir', path.join(src, 'dir')]);
    // Two gzip bases (compressed, and raw tables so flips hit fields directly), one per other codec
    // (their decoders see hostile streams too), and a tar2sqfs layout (root parent 0, index on every dir).
    const mk: Array<[string, string[], boolean]> = [
      ['gzip', [], false],
      ['raw', ['-noI', '-noD', '-noF', '-noX'], true],
      ['xz', ['-comp', 'xz'], false],
      ['lz4', ['-comp', 'lz4'], false],
      ['zstd', ['-comp', 'zstd'], false],
      ['lzo', ['-comp', 'lzo'], false],
    ];
    for (const [name, args, raw] of mk) {
      const img = path.join(tmp, `${name}.sqfs`);
      execFileSync('mksquashfs', [src, img, '-noappend', '-quiet', '-no-progress', '-b', '4K', ...args], { stdio: 'pipe' });
      bases.push(await describeBase(name, new Uint8Array(fs.readFileSync(img)), raw));
    }
    const tar = execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-C', src, '-cf', '-', '.'], { maxBuffer: 64 << 20 });
    const t2s = path.join(tmp, 'tar2sqfs.sqfs');
    execFileSync('tar2sqfs', ['-q', '-c', 'gzip', '-b', '4096', t2s], { input: tar });
    bases.push(await describeBase('tar2sqfs', new Uint8Array(fs.readFileSync(t2s)), false));
    // Raw bases get more mutants: their corruptions reach the most code.
    bases.push(bases[1]!);
  });

  after(() => {
    if (tmp) removeTree(tmp);
  });

  it('base images read cleanly', async () => {
    for (const b of bases) expect(await exercise(b.bytes, Date.now() + 10_000)).to.be.greaterThan(20000);
  });

  it(`survives ${ITERATIONS} mutants with typed errors only (seed ${SEED})`, async function () {
    console.log(`      squashfs fuzz: seed ${SEED} (HPCC_FUZZ_SEED=${SEED} reproduces), ${ITERATIONS} mutants`);
    const rnd = prng(SEED);
    const failures: string[] = [];
    const codes = new Map<string, number>();
    let ok = 0;
    let slowest = 0;
    let slowestWhat = '';
    const t0 = Date.now();
    const rss0 = process.memoryUsage().rss;
    let maxRss = rss0;
    const extractParent = path.join(tmp, 'extract');
    fs.mkdirSync(extractParent);
    for (let i = 0; i < ITERATIONS; i++) {
      const base = bases[i % bases.length]!;
      const m = mutate(base, rnd);
      const start = Date.now();
      try {
        await exercise(m.bytes, start + PER_MUTANT_MS);
        ok++;
        // Sometimes extract a mutant that reads cleanly: nothing may appear outside the target.
        if (ok % 25 === 1) {
          const target = path.join(extractParent, 't');
          const r = await SquashfsReader.fromBuffer(m.bytes);
          try {
            await extractTree(r, target, { applyOwnership: false });
          } catch (e) {
            if (!(e instanceof HpccError)) throw e;
          } finally {
            await r.close();
            removeTree(target);
          }
          expect(fs.readdirSync(extractParent)).to.deep.equal([]);
        }
      } catch (e) {
        if (e instanceof HpccError) codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
        else if (failures.length < 20) failures.push(`#${i} ${base.name} [${m.kind}]: ${(e as Error)?.stack ?? e}`);
      }
      const took = Date.now() - start;
      if (took > slowest) {
        slowest = took;
        slowestWhat = `#${i} ${base.name} [${m.kind}]`;
      }
      if (took > PER_MUTANT_MS && failures.length < 20) failures.push(`#${i} ${base.name} [${m.kind}]: took ${took} ms`);
      if (i % 100 === 0) maxRss = Math.max(maxRss, process.memoryUsage().rss);
    }
    const secs = (Date.now() - t0) / 1000;
    console.log(
      `      ${ITERATIONS} mutants in ${secs.toFixed(1)} s (${(ITERATIONS / secs).toFixed(0)}/s), ${ok} read cleanly, slowest ${slowest} ms (${slowestWhat}), ` +
        `peak rss +${((maxRss - rss0) / 1048576).toFixed(0)} MiB`,
    );
    console.log(`      error codes: ${[...codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c}:${n}`).join(' ')}`);
    expect(failures, failures.join('\n\n')).to.deep.equal([]);
    expect(maxRss - rss0, 'memory growth').to.be.below(512 * 1024 * 1024);
  });
});
