#!/usr/bin/env node
// Pack a directory into a bare squashfs image with hpcc's compiled writer
// (dist/, built by `npx tsc -p . && make -s -C native`). Used by
// bench/squashfs-write.sh; not part of the product.
//
//   node bench/lib/sqfs-write.mjs [--codec gzip] [--level N] [--block-size 131072]
//        [--deterministic] [--stats FILE] ROOTDIR OUT.sqfs
//
// --stats writes JSON: wall time, CPU time (user/system, all threads), the main
// thread's event-loop utilisation (busy share; the rest is waiting for the
// threadpool or the disk), and the writer's result. No fsync, as mksquashfs
// and tar2sqfs do none either.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');

function usage(msg) {
  process.stderr.write(`sqfs-write: ${msg}\nusage: sqfs-write.mjs [--codec C] [--level N] [--block-size B] [--deterministic] [--stats FILE] ROOTDIR OUT\n`);
  process.exit(2);
}

const opts = { codec: 'gzip', level: undefined, blockSize: 131072, deterministic: false, stats: undefined };
const pos = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const val = () => {
    if (i + 1 >= argv.length) usage(`${a} needs a value`);
    return argv[++i];
  };
  if (a === '--codec') opts.codec = val();
  else if (a === '--level') opts.level = Number(val());
  else if (a === '--block-size') opts.blockSize = Number(val());
  else if (a === '--deterministic') opts.deterministic = true;
  else if (a === '--stats') opts.stats = val();
  else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else pos.push(a);
}
if (pos.length !== 2) usage('need ROOTDIR and OUT');
const [rootDir, out] = pos;

const modPath = path.join(repo, 'dist', 'src', 'formats', 'squashfs', 'index.js');
let mod;
try {
  mod = await import(pathToFileURL(modPath).href);
} catch (e) {
  usage(`cannot load ${modPath} (${e.message}); build first: npx tsc -p . && make -s -C native`);
}
const { SquashfsWriter } = mod;
let { addDirectoryTree } = mod;
if (typeof addDirectoryTree !== 'function') {
  // Not re-exported from the index yet: take it from its own module.
  addDirectoryTree = (await import(pathToFileURL(path.join(path.dirname(modPath), 'from-dir.js')).href).catch(() => ({})))
    .addDirectoryTree;
}
if (typeof SquashfsWriter !== 'function' || typeof addDirectoryTree !== 'function') {
  usage(`${modPath} does not export SquashfsWriter and addDirectoryTree yet`);
}

const t0 = performance.now();
const elu0 = performance.eventLoopUtilization();
const cpu0 = process.cpuUsage();
const tmp = `${out}.tmp-${process.pid}`;
const handle = await fs.open(tmp, 'w', 0o644);
let fin;
let tree;
try {
  const writer = new SquashfsWriter({
    handle,
    compressor: opts.codec,
    ...(opts.level !== undefined ? { level: opts.level } : {}),
    blockSize: opts.blockSize,
    deterministic: opts.deterministic,
  });
  try {
    tree = await addDirectoryTree(writer, rootDir, { deterministic: opts.deterministic, blockSize: opts.blockSize });
    fin = await writer.finish();
  } catch (e) {
    if (typeof writer.abort === 'function') await writer.abort().catch(() => undefined);
    throw e;
  }
  await handle.close();
  await fs.rename(tmp, out);
} catch (e) {
  await handle.close().catch(() => undefined);
  await fs.rm(tmp, { force: true });
  process.stderr.write(`sqfs-write: ${e?.stack ?? e}\n`);
  process.exit(1);
}
const wall = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const elu = performance.eventLoopUtilization(elu0);
if (opts.stats) {
  const stats = {
    wall_s: +wall.toFixed(3),
    user_s: +(cpu.user / 1e6).toFixed(3),
    system_s: +(cpu.system / 1e6).toFixed(3),
    main_thread_busy: +elu.utilization.toFixed(3),
    max_rss_mb: +(process.resourceUsage().maxRSS / 1024).toFixed(1),
    uv_threadpool_size: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
    tree,
    result: fin,
  };
  await fs.writeFile(opts.stats, JSON.stringify(stats, null, 2) + '\n');
}
