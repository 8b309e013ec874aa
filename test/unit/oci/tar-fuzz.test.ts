/**
 * Hostile layer tars: mutants of valid layers (ustar, pax with binary xattrs,
 * GNU long names, hard links, devices, pre-1970 times, and GNU tar's own sparse
 * and pax archives when tar is installed) go through the flattener's tar reader.
 * Each one must be read to the end or refused with a typed HpccError: no other
 * exception, no hang, and nothing is handed out beyond what the mutant could
 * describe (bodies are capped here, sparse files may legitimately be large).
 * Mutations: bit flips in headers, numeric fields set to octal or base-256
 * values (negative ones included) with the checksum fixed so the header is
 * accepted, pax records rewritten, truncation, and repeated or dropped blocks.
 *   HPCC_FUZZ_ITERATIONS / HPCC_FUZZ_SEED (test/helpers/fuzz.ts)
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HpccError } from '../../../src/errors/index.js';
import { readTar } from '../../../src/oci/flatten/tar-reader.js';
import { FUZZ_ITERATIONS, FUZZ_SEED, prng } from '../../helpers/fuzz.js';
import { findTool, makeTempDir, removeTree } from '../../helpers/env.js';
import { makeTar } from '../../helpers/oci-layers.js';

const BODY_CAP = 64 << 20;
/** Numeric header fields: offset, width. */
const FIELDS: Array<[number, number]> = [[100, 8], [108, 8], [116, 8], [124, 12], [136, 12], [329, 8], [337, 8], [483, 12], [386, 12], [398, 12]];
const PAX_RECORDS = ['size=99999999999', 'size=-1', 'mtime=-315622800', 'mtime=1e9', 'uid=abc', 'path=../x', 'GNU.sparse.major=1', 'GNU.sparse.map=0,5,10', 'GNU.sparse.realsize=1048576', 'SCHILY.xattr.user.a=\u00ff', '5 x=\n'];

function fixChecksum(b: Buffer, at: number): void {
  if (at + 512 > b.length) return;
  b.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = at; i < at + 512; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', at + 148, 8, 'latin1');
}

function mutate(seed: Buffer, rand: () => number): { data: Buffer; how: string[] } {
  const pick = (n: number) => Math.floor(rand() * n);
  let b = Buffer.from(seed);
  const hows: string[] = [];
  for (let r = 1 + pick(3); r > 0; r--) {
    const blocks = Math.max(1, Math.floor(b.length / 512));
    const at = pick(blocks) * 512;
    const kind = pick(8);
    if (kind === 0) {
      const cut = pick(b.length + 1);
      b = b.subarray(0, cut);
      hows.push(`truncate@${cut}`);
    } else if (kind <= 2) {
      const [off, len] = FIELDS[pick(FIELDS.length)]!;
      if (at + off + len > b.length) continue;
      if (pick(2) === 0) {
        b.fill(0, at + off, at + off + len);
        b[at + off] = pick(2) === 0 ? 0x80 : 0xff;
        for (let i = 1; i < len; i++) b[at + off + i] = pick(4) === 0 ? pick(256) : b[at + off] === 0xff ? 0xff : 0;
      } else {
        const v = [0, 1, 511, 512, 513, 0o7777777, 8 ** (len - 1) - 1, pick(1 << 30)][pick(8)]!;
        b.write(v.toString(8).padStart(len - 1, '0').slice(-(len - 1)) + '\0', at + off, len, 'latin1');
      }
      fixChecksum(b, at);
      hows.push(`field${off}@${at}`);
    } else if (kind === 3) {
      const rec = Buffer.from(PAX_RECORDS[pick(PAX_RECORDS.length)]!, 'latin1');
      const line = Buffer.concat([Buffer.from(`${rec.length + 4} `), rec, Buffer.from('\n')]);
      line.copy(b, Math.min(at, Math.max(0, b.length - line.length)));
      hows.push(`pax@${at}`);
    } else if (kind <= 5) {
      for (let n = 1 + pick(6); n > 0 && b.length > 0; n--) {
        const i = at + pick(512);
        if (i < b.length) b[i]! ^= 1 << pick(8);
      }
      if (pick(2) === 0) fixChecksum(b, at);
      hows.push(`flip@${at}`);
    } else if (kind === 6) {
      b = Buffer.concat([b.subarray(0, at + 512), b.subarray(at)]);
      hows.push(`dup@${at}`);
    } else {
      b = Buffer.concat([b.subarray(0, at), b.subarray(at + 512)]);
      hows.push(`drop@${at}`);
    }
  }
  return { data: b, how: hows };
}

async function* chunked(b: Buffer, size: number) {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

/** Reads every entry and body (capped); returns the thrown value, if any. */
async function readAll(data: Buffer, chunk: number): Promise<unknown> {
  let bytes = 0;
  try {
    for await (const { body } of readTar(chunked(data, chunk))) {
      for await (const c of body) {
        bytes += c.length;
        if (bytes > BODY_CAP) return undefined; // a large sparse file: stop reading, not a failure
      }
    }
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('oci/flatten tar reader: hostile input fuzz', function () {
  this.timeout(600_000);
  const seeds: Buffer[] = [];

  before(() => {
    const bin = Buffer.from([0, 0xff, 0x80, 0x0a]);
    seeds.push(
      makeTar([
        { name: 'd/', type: '5' },
        { name: 'd/f', data: 'x'.repeat(700), pax: { 'SCHILY.xattr.security.capability': bin, uid: '70000' } },
        { name: 'd/' + 'l'.repeat(150), data: 'long', gnuLongName: true },
        { name: 'd/h', type: '1', linkname: 'd/f' },
        { name: 'd/c', type: '3', devmajor: 1, devminor: 3 },
        { name: 'old', data: 'o', mtime: -315622800 },
        { name: 'd/.wh.gone' },
      ]),
    );
    if (findTool('tar') && findTool('truncate')) {
      const dir = makeTempDir('hpcc-tarfuzz-');
      try {
        spawnSync('truncate', ['-s', '300K', path.join(dir, 's')]);
        fs.appendFileSync(path.join(dir, 's'), 'tail');
        fs.writeFileSync(path.join(dir, 'n'), 'n');
        for (const args of [['--format=gnu'], ['--format=posix'], ['--format=posix', '--sparse-version=0.0']]) {
          const r = spawnSync('tar', ['--sparse', ...args, '-C', dir, '-cf', '-', 's', 'n']);
          if (r.status === 0) seeds.push(r.stdout);
        }
      } finally {
        removeTree(dir);
      }
    }
  });

  it(`every mutant is read or refused with a typed error (${FUZZ_ITERATIONS} mutants)`, async () => {
    console.log(`      tar fuzz: seed ${FUZZ_SEED}, ${FUZZ_ITERATIONS} iterations (HPCC_FUZZ_SEED=${FUZZ_SEED} reproduces)`);
    const rand = prng(FUZZ_SEED);
    const outcomes = { read: 0, refused: 0 };
    for (let i = 0; i < FUZZ_ITERATIONS; i++) {
      const { data, how } = mutate(seeds[i % seeds.length]!, rand);
      const err = await readAll(data, [1, 512, 4096, 65536][i % 4]!);
      if (err === undefined) outcomes.read++;
      else {
        expect(err, `mutant ${i} (${how.join(' ')}): ${(err as Error).stack}`).to.be.instanceOf(HpccError);
        outcomes.refused++;
      }
    }
    // both outcomes must occur, or the mutations are not reaching the parser
    expect(outcomes.read, JSON.stringify(outcomes)).to.be.above(0);
    expect(outcomes.refused, JSON.stringify(outcomes)).to.be.above(0);
  });
});
