#!/usr/bin/env node
// Squashfs block codecs on a realistic corpus: each codec/level compresses the
// corpus cut into independent blocks (default 128 KiB) through hpcc's own
// Encoder (one block in flight = one core, then 2 x cores in flight), and the
// Decoder decompresses every block (synchronous, as the reader does). A block
// that does not shrink counts raw, as the writer stores it.
//
//   npx tsc -p . && node bench/codecs.mjs [CORPUS_FILE]
// Without CORPUS_FILE it builds a tar of /usr/lib/python3* in a temp dir.
// Environment: SAMPLE_MB (12: the sample every codec compresses, taken as
// 1 MiB slices spread evenly over the corpus), BLOCK_SIZE (131072), CODECS
// (comma list of name:level, name:fast or name:hc; default: all below),
// REPEAT (3: wall-clock runs per setting, the fastest counts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const codecs = await import(path.join(root, 'dist/src/formats/squashfs/codecs/index.js'));

const MB = 1 << 20;
const blockSize = Number(process.env.BLOCK_SIZE ?? 131072);
const sampleMB = Number(process.env.SAMPLE_MB ?? 12);
const repeat = Number(process.env.REPEAT ?? 3);
const DEFAULT = 'gzip:1,gzip:3,gzip:6,gzip:9,zstd:1,zstd:3,zstd:9,zstd:15,zstd:19,xz:1,xz:6,lz4:fast,lz4:hc';

let corpus;
const file = process.argv[2];
if (file) corpus = readFileSync(file);
else {
  const dir = mkdtempSync(path.join(tmpdir(), 'hpcc-bench-codecs-'));
  try {
    const tar = path.join(dir, 'corpus.tar');
    const srcs = ['python3', 'python3.11', 'python3.12', 'python3.13'].filter((d) => {
      try {
        execFileSync('test', ['-d', `/usr/lib/${d}`]);
        return true;
      } catch {
        return false;
      }
    });
    execFileSync('tar', ['-C', '/usr/lib', '-cf', tar, ...srcs]);
    corpus = readFileSync(tar);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** SAMPLE_MB slices of 1 MiB spread evenly over the corpus, cut into blocks. */
function sampleBlocks(buf) {
  const slices = Math.max(1, Math.min(sampleMB, Math.floor(buf.length / MB)));
  const step = Math.floor(buf.length / slices);
  const out = [];
  for (let s = 0; s < slices; s++) {
    const start = s * step;
    const end = Math.min(buf.length, start + MB);
    for (let o = start; o < end; o += blockSize) out.push(buf.subarray(o, Math.min(o + blockSize, end)));
  }
  return out;
}
const sample = sampleBlocks(corpus);

async function compressAll(enc, blocks, inFlight) {
  const out = new Array(blocks.length);
  let next = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < blocks.length) {
        const i = next++;
        out[i] = await enc.compress(blocks[i]);
      }
    }),
  );
  const c = process.cpuUsage(c0);
  return { out, secs: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

console.log(`# hpcc squashfs codec benchmark, ${new Date().toISOString()}`);
console.log(`# node ${process.version}, ${cpus()[0]?.model ?? '?'}, ${availableParallelism()} cores`);
console.log(`# corpus ${(corpus.length / MB).toFixed(1)} MiB (${file ?? 'tar of /usr/lib/python3*'}), sample ${sampleMB} x 1 MiB, block ${blockSize}`);
console.log(`# load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log('# MB/s = 10^6 bytes of input per second; "CPU" = per CPU-second of the whole process (all threads)');
console.log(`# wall columns: fastest of ${repeat} interleaved runs on half the sample`);
console.log('codec:level | MiB | stored/input | comp MB/s per CPU | comp MB/s wall, 1 in flight | comp MB/s wall, 2xcores in flight | speed-up | decomp MB/s per CPU | decomp MB/s wall');
for (const spec of (process.env.CODECS ?? DEFAULT).split(',')) {
  const [name, arg] = spec.split(':');
  const opts = { blockSize };
  if (arg === 'hc') opts.hc = true;
  else if (arg !== 'fast' && arg !== undefined) opts.level = Number(arg);
  const enc = await codecs.createEncoder(name, opts);
  const dec = await codecs.createDecoder(codecs.CODEC_IDS[name], enc.optionsBlock(), blockSize);
  const blocks = sample;
  const bytes = blocks.reduce((a, b) => a + b.length, 0);
  await enc.compress(blocks[0]); // warm-up (loads libraries, starts workers)
  // Fastest of REPEAT interleaved runs: robust against other load on the machine.
  const half = blocks.slice(0, Math.max(1, Math.ceil(blocks.length / 2)));
  let one;
  let many;
  for (let r = 0; r < repeat; r++) {
    const a = await compressAll(enc, half, 1);
    const b = await compressAll(enc, half, 2 * availableParallelism());
    if (!one || a.secs < one.secs) one = a;
    if (!many || b.secs < many.secs) many = b;
  }
  const oneBytes = half.reduce((a, b) => a + b.length, 0);
  const all = await compressAll(enc, blocks, 2 * availableParallelism());
  let stored = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < blocks.length; i++) {
    const c = all.out[i];
    if (c.length >= blocks[i].length) {
      stored += blocks[i].length;
      continue;
    }
    stored += c.length;
    const d = dec.decompress(c, blockSize);
    if (d.length !== blocks[i].length) throw new Error(`${spec}: block ${i} decoded to ${d.length} bytes`);
  }
  const dsecs = (performance.now() - t0) / 1000;
  const dc = process.cpuUsage(c0);
  const dcpu = (dc.user + dc.system) / 1e6;
  const mbps = (n, s) => (n / 1e6 / s).toFixed(1);
  console.log(
    `${spec} | ${(bytes / MB).toFixed(0)} | ${(stored / bytes).toFixed(4)} | ${mbps(oneBytes, one.cpu)} | ` +
      `${mbps(oneBytes, one.secs)} | ${mbps(oneBytes, many.secs)} | ${(one.secs / many.secs).toFixed(2)} | ${mbps(bytes, dcpu)} | ${mbps(bytes, dsecs)}`,
  );
}
await codecs.closeCodecWorkers();
