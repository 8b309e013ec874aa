#!/usr/bin/env node
// Deflate implementations on squashfs-sized blocks: Node's bundled zlib
// (sync, one thread) at each level, vs system zlib and libdeflate via
// deflate-levels.py. Input: any file (the benchmark uses the rootfs tar), cut
// into independent blocks as a squashfs writer does (a block that does not
// shrink counts raw). Prints bytes and CPU seconds per level.
//   node bench/lib/deflate-levels.mjs FILE [BLOCK_SIZE=131072] [LEVELS=1,3,5,6,7,8,9]
import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

const [file, bsArg, levelsArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: deflate-levels.mjs FILE [BLOCK_SIZE] [LEVELS]\n');
  process.exit(2);
}
const bs = Number(bsArg ?? 131072);
const levels = (levelsArg ?? '1,3,5,6,7,8,9').split(',').map(Number);
const buf = readFileSync(file);
for (const level of levels) {
  let total = 0;
  const c0 = process.cpuUsage();
  for (let o = 0; o < buf.length; o += bs) {
    const b = buf.subarray(o, o + bs);
    total += Math.min(deflateSync(b, { level }).length, b.length);
  }
  const c = process.cpuUsage(c0);
  console.log(`node-zlib ${process.versions.zlib} level ${level}: ${total} bytes, ${((c.user + c.system) / 1e6).toFixed(2)} s CPU`);
}
