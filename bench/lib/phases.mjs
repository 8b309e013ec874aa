#!/usr/bin/env node
// Where hpcc's squashfs write time goes, phase by phase, on one tree:
//   walk    addDirectoryTree into a sink that drops everything (lstat, readdir, xattrs,
//           and the small files' reads, which addDirectoryTree starts ahead)
//   read    + reading every file's bytes
//   hash    + sha256 of every file (what dedupe costs)
//   deflate + node zlib deflate of every 128 KiB block on the threadpool, 4 in flight
//             (compression alone, no writer bookkeeping)
//   writer  the real SquashfsWriter (gzip), output to /dev/null-like temp file
// Each phase prints wall, CPU (all threads) and main-thread busy share.
//   node bench/lib/phases.mjs ROOTDIR [LEVEL=6] [OUT=/tmp/hpcc-phases.sqfs]
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '..', '..', 'dist', 'src', 'formats', 'squashfs');
const { addDirectoryTree } = await import(pathToFileURL(path.join(dist, 'from-dir.js')).href);
const { SquashfsWriter } = await import(pathToFileURL(path.join(dist, 'index.js')).href);
const [root, levelArg, outArg] = process.argv.slice(2);
if (!root) {
  process.stderr.write('usage: phases.mjs ROOTDIR [LEVEL] [OUT]\n');
  process.exit(2);
}
const level = Number(levelArg ?? 6);
const out = outArg ?? '/tmp/hpcc-phases.sqfs';
const deflate = promisify(zlib.deflate);
const BS = 131072;

async function phase(name, fn) {
  const c0 = process.cpuUsage();
  const e0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  const extra = await fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const e = performance.eventLoopUtilization(e0);
  console.log(
    `${name.padEnd(8)} wall ${wall.toFixed(2).padStart(6)} s  CPU ${((c.user + c.system) / 1e6).toFixed(2).padStart(6)} s ` +
      `(user ${(c.user / 1e6).toFixed(2)}, sys ${(c.system / 1e6).toFixed(2)})  main busy ${(e.utilization * 100).toFixed(0).padStart(3)} %  ${extra ?? ''}`,
  );
}

/** A TreeSink that consumes file data with `onData` and stores nothing. */
function sink(onData) {
  const nop = () => undefined;
  return {
    addDirectory: nop,
    addSymlink: nop,
    addHardLink: nop,
    addDevice: nop,
    addFifo: nop,
    addSocket: nop,
    async addFile(_p, _m, data) {
      if (data instanceof Uint8Array) await onData(data);
      else for await (const chunk of data) await onData(chunk);
    },
  };
}

let bytes = 0;
// Untimed: JIT warm-up, page cache, the xattr addon's first load.
await addDirectoryTree(sink(async () => undefined), root, { blockSize: BS });
await phase('walk', async () => {
  const r = await addDirectoryTree(sink(async () => undefined), root, { blockSize: BS });
  return `${r.entries} entries`;
});
await phase('read', async () => {
  bytes = 0;
  await addDirectoryTree(sink(async (b) => void (bytes += b.length)), root, { blockSize: BS });
  return `${bytes} bytes`;
});
await phase('hash', async () => {
  const h = createHash('sha256');
  await addDirectoryTree(sink(async (b) => void h.update(b)), root, { blockSize: BS });
});
await phase('deflate', async () => {
  // Same reads, plus each 128 KiB piece deflated, at most 4 in flight.
  const q = [];
  let total = 0;
  await addDirectoryTree(
    sink(async (b) => {
      for (let o = 0; o < b.length; o += BS) {
        q.push(deflate(b.subarray(o, o + BS), { level }));
        while (q.length > 4) total += (await q.shift()).length;
      }
    }),
    root,
    { blockSize: BS },
  );
  for (const p of q) total += (await p).length;
  return `${total} bytes compressed (small files deflated whole-file pieces, not packed)`;
});
await phase('writer', async () => {
  const h = await fs.open(out, 'w');
  try {
    const w = new SquashfsWriter({ handle: h, compressor: 'gzip', level, blockSize: BS });
    await addDirectoryTree(w, root, { blockSize: BS });
    const t1 = performance.now();
    const c1 = process.cpuUsage();
    const r = await w.finish();
    const c2 = process.cpuUsage(c1);
    return `${r.size} bytes image; finish() alone ${((performance.now() - t1) / 1000).toFixed(2)} s wall, ${((c2.user + c2.system) / 1e6).toFixed(2)} s CPU`;
  } finally {
    await h.close();
  }
});
await fs.rm(out, { force: true });
