/**
 * Hostile SIF input: truncations, bit flips and field corruption (descriptor
 * counts, offsets, sizes, huge values) over thousands of seeded mutants.
 * Every mutant must either parse or fail with an HpccError, in bounded time
 * and memory. HPCC_FUZZ_ITERATIONS (default 3000) sets the count; the seed is
 * printed and HPCC_FUZZ_SEED reproduces a run. HPCC_FUZZ_DIFFERENTIAL (default
 * 150) sets how many accepted mutants are re-read by the reference library.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HpccError } from '../../src/errors/index.js';
import {
  DESCRIPTOR_SIZE,
  FsType,
  PartType,
  SifDataType,
  SifReader,
  SifWriter,
  descriptorJson,
  encodeCryptoMessageExtra,
  encodeOciDigestExtra,
  encodeSbomExtra,
  encodeSignatureExtra,
  headerJson,
  renderHeaderText,
  renderInfoText,
  renderListText,
} from '../../src/formats/sif/index.js';
import { makeTempDir, removeTree } from '../helpers/env.js';
import { writeSample } from '../unit/formats/sif/sample.js';
import { SIF_IMAGES, comparable, hpccListing, referenceListing, requireSifcheck } from './sif-helpers.js';
import { FUZZ_ITERATIONS, FUZZ_SEED, prng as rng } from '../helpers/fuzz.js';

const ITERATIONS = FUZZ_ITERATIONS;
const SEED = FUZZ_SEED;
/** Mutants that hpcc accepts and sifcheck re-reads (each one spawns the Go oracle). */
const DIFFERENTIAL = Math.min(Number(process.env.HPCC_FUZZ_DIFFERENTIAL ?? 150), ITERATIONS);

const INTERESTING = [0n, 1n, -1n, 4095n, 4096n, 32176n, 32768n, 585n, 48n, 1n << 31n, (1n << 32n) - 1n, 1n << 32n, 1n << 53n, (1n << 53n) + 1n, 1n << 62n, (1n << 63n) - 1n, -(1n << 63n)];

/** Header int64 fields (@64..@120) and descriptor fields (relative offset, width). */
const HEADER_I64 = [64, 72, 80, 88, 96, 104, 112, 120];
const DESC_FIELDS: [number, number][] = [[0, 4], [4, 1], [5, 4], [9, 4], [13, 4], [17, 8], [25, 8], [33, 8], [41, 8], [201, 4], [205, 4], [209, 3]];

function mutate(seed: Buffer, rand: () => number): { data: Buffer; how: string } {
  const pick = (n: number): number => Math.floor(rand() * n);
  let b = Buffer.from(seed);
  const total = Number(b.readBigInt64LE(88));
  const slotAt = (i: number): number => 4096 + i * DESCRIPTOR_SIZE;
  const usedSlots = Array.from({ length: total }, (_, i) => i).filter((i) => b[slotAt(i) + 4] !== 0);
  const hows: string[] = [];
  const rounds = 1 + pick(3);
  for (let r = 0; r < rounds; r++) {
    const kind = pick(10);
    if (kind === 0) {
      // truncation, biased to structure boundaries
      const cuts = [pick(129), 4096 + pick(usedSlots.length * DESCRIPTOR_SIZE + 1), pick(b.length + 1), b.length - 1 - pick(64)];
      const at = Math.max(0, cuts[pick(cuts.length)]!);
      b = b.subarray(0, at);
      hows.push(`truncate@${at}`);
    } else if (kind <= 3) {
      // bit flips: header, used descriptors, or anywhere
      const n = 1 + pick(8);
      for (let k = 0; k < n && b.length > 0; k++) {
        const region = pick(3);
        const slot = usedSlots.length > 0 ? slotAt(usedSlots[pick(usedSlots.length)]!) : 4096;
        const at = region === 0 ? pick(128) : region === 1 ? slot + pick(DESCRIPTOR_SIZE) : pick(b.length);
        if (at < b.length) b[at]! ^= 1 << pick(8);
        hows.push(`flip@${at}`);
      }
    } else if (kind <= 5 && b.length >= 128) {
      const off = HEADER_I64[pick(HEADER_I64.length)]!;
      const v = pick(3) === 0 ? BigInt(b.length + pick(3) - 1) : INTERESTING[pick(INTERESTING.length)]!;
      b.writeBigInt64LE(BigInt.asIntN(64, v), off);
      hows.push(`hdr@${off}=${v}`);
    } else {
      const slot = kind === 9 ? slotAt(pick(Math.max(1, Math.min(total, 48)))) : slotAt(usedSlots.length > 0 ? usedSlots[pick(usedSlots.length)]! : 0);
      const [rel, width] = DESC_FIELDS[pick(DESC_FIELDS.length)]!;
      const at = slot + rel;
      if (at + width > b.length) continue;
      const v = pick(3) === 0 ? BigInt(b.length - pick(4096)) : INTERESTING[pick(INTERESTING.length)]!;
      if (width === 8) b.writeBigInt64LE(BigInt.asIntN(64, v), at);
      else if (width === 4) b.writeUInt32LE(Number(BigInt.asUintN(32, v)), at);
      else for (let k = 0; k < width; k++) b[at + k] = Number(BigInt.asUintN(8, v >> BigInt(8 * k)));
      hows.push(`desc@${at}=${v}`);
    }
  }
  return { data: b, how: hows.join(' ') };
}

/** Everything a consumer might do with a parsed image. */
async function exercise(r: SifReader): Promise<void> {
  renderHeaderText(r.header);
  JSON.stringify(headerJson(r.header));
  renderListText(r.descriptors);
  for (const d of r.descriptors) {
    renderInfoText(d);
    JSON.stringify(descriptorJson(d));
    try {
      await r.readObject(d, 1 << 20);
    } catch (e) {
      if (!(e instanceof HpccError)) throw e;
    }
  }
  try {
    r.primaryPartition();
  } catch (e) {
    if (!(e instanceof HpccError)) throw e;
  }
}

/** A rich seed: every data type, two groups, links, signature/SBOM/crypto/OCI extras. */
async function richSeed(dir: string): Promise<Buffer> {
  const p = path.join(dir, 'rich.sif');
  const w = await SifWriter.create(p, { deterministic: true, descriptorsTotal: 16 });
  await w.addObject({ type: SifDataType.Deffile, data: Buffer.from('Bootstrap: docker\nFrom: alpine\n') });
  await w.addObject({ type: SifDataType.GenericJSON, name: 'oci-config.json', data: Buffer.from('{"a":1}') });
  await w.addPartition({ fsType: FsType.Squash, partType: PartType.PrimSys, arch: 'amd64' }, async (h, off) => {
    await h.write(Buffer.alloc(5000, 0x68), 0, 5000, off);
    return 5000;
  });
  await w.addPartition({ fsType: FsType.Ext3, partType: PartType.Data, arch: 'arm64', groupId: 2 }, async (h, off) => {
    await h.write(Buffer.from('data'), 0, 4, off);
    return 4;
  });
  await w.addObject({ type: SifDataType.Signature, groupId: 0, linkedGroupId: 1, data: Buffer.from('sig'), extra: encodeSignatureExtra(1, Buffer.alloc(20, 0xab)) });
  await w.addObject({ type: SifDataType.SBOM, data: Buffer.from('{}'), extra: encodeSbomExtra(1), linkedId: 3 });
  await w.addObject({ type: SifDataType.CryptoMessage, data: Buffer.from('m'), extra: encodeCryptoMessageExtra(2, 0x200) });
  await w.addObject({ type: SifDataType.OCIBlob, data: Buffer.from('blob'), extra: encodeOciDigestExtra('sha256:' + '0'.repeat(64)) });
  await w.finish();
  return fs.readFileSync(p);
}

describe('integration: SIF hostile input fuzz', function () {
  this.timeout(600_000);
  let dir: string;
  let seeds: { name: string; data: Buffer }[];
  const accepted: { data: Buffer; how: string }[] = [];

  before(async () => {
    dir = makeTempDir('hpcc-siffuzz-');
    seeds = [
      { name: 'hpcc-sample', data: fs.readFileSync(await writeSample(dir)) },
      { name: 'hpcc-rich', data: await richSeed(dir) },
    ];
    for (const n of ['one-group-signed.sif', 'one-object-sbom.sif', 'two-groups-signed-legacy.sif']) {
      const p = path.join(SIF_IMAGES, n);
      if (fs.existsSync(p)) seeds.push({ name: n, data: fs.readFileSync(p) });
    }
    console.log(`      SIF fuzz: seed ${SEED}, ${ITERATIONS} iterations (HPCC_FUZZ_SEED=${SEED} reproduces)`);
  });
  after(() => removeTree(dir));

  it('every mutant parses or fails with an HpccError, in bounded time and memory', async () => {
    const rand = rng(SEED);
    const codes = new Map<string, number>();
    let parsed = 0;
    let slowest = 0;
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < ITERATIONS; i++) {
      const seed = seeds[i % seeds.length]!;
      const { data, how } = mutate(seed.data, rand);
      const t0 = performance.now();
      try {
        // every 25th mutant goes through a real file, the rest through memory
        let r: SifReader;
        if (i % 25 === 0) {
          const f = path.join(dir, 'mutant.sif');
          fs.writeFileSync(f, data);
          r = await SifReader.open(f);
        } else {
          r = await SifReader.fromBuffer(data);
        }
        try {
          await exercise(r);
        } finally {
          await r.close();
        }
        parsed++;
        if (accepted.length < DIFFERENTIAL && rand() < 0.5) accepted.push({ data, how: `${seed.name}: ${how}` });
      } catch (e) {
        if (!(e instanceof HpccError)) {
          throw new Error(`seed ${SEED} iteration ${i} (${seed.name}: ${how}) threw a non-HpccError: ${String((e as Error)?.stack ?? e)}`);
        }
        expect(e.code, `iteration ${i}`).to.match(/^HPCC_E_[A-Z0-9_]+$/);
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      }
      slowest = Math.max(slowest, performance.now() - t0);
    }
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    console.log(`      parsed ${parsed}, refused ${ITERATIONS - parsed}: ${[...codes].map(([c, n]) => `${c}=${n}`).join(' ')}; slowest ${slowest.toFixed(1)} ms; RSS +${(rssGrowth / 2 ** 20).toFixed(0)} MiB`);
    expect(slowest, 'one mutant took too long').to.be.below(5000);
    expect(rssGrowth, 'memory grew too much').to.be.below(300 * 2 ** 20);
    if (ITERATIONS >= 500) {
      // the mutator must actually reach both outcomes and the main refusal paths
      expect(parsed).to.be.greaterThan(ITERATIONS / 20);
      for (const c of ['HPCC_E_SIF_BAD_MAGIC', 'HPCC_E_SIF_TRUNCATED', 'HPCC_E_SIF_BAD_DESCRIPTOR', 'HPCC_E_SIF_BAD_HEADER']) expect(codes.get(c) ?? 0, c).to.be.greaterThan(0);
    }
  });

  it('whatever hpcc accepts, the reference library accepts and reads the same', async function () {
    requireSifcheck(this);
    expect(accepted.length).to.be.greaterThan(0);
    const f = path.join(dir, 'diff.sif');
    for (const { data, how } of accepted) {
      fs.writeFileSync(f, data);
      const ours = (await hpccListing(f)) as Record<string, unknown>;
      let ref: Record<string, unknown>;
      try {
        ref = comparable(referenceListing(f)) as Record<string, unknown>;
      } catch (e) {
        throw new Error(`seed ${SEED} (${how}): hpcc accepts, the reference refuses: ${String(e)}`);
      }
      // names and the launch script may hold invalid UTF-8, which hpcc decodes lossily
      for (const l of [ours, ref]) {
        delete l.launchScriptHex;
        for (const d of l.descriptors as Record<string, unknown>[]) delete d.nameHex;
      }
      expect(ours, `seed ${SEED} (${how})`).to.deep.equal(ref);
    }
  });
});
