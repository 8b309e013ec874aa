/**
 * `hpcc exec|run|shell|test` from a Node start-up snapshot: scripts/build-snapshot.mjs
 * writes dist/src/cli/fast-launch.snapshot.blob, whose heap already holds this
 * module and the lean launch path (fast-launch.ts: the plan builder, the SIF and
 * squashfs readers, the codecs, runtime/spawn.ts, the plan file and memo
 * writers), its modules evaluated (docs/launcher.md, "Start-up snapshot"). The
 * native front runs it, when it finds no launch memo, as
 *
 *   node --snapshot-blob DIST/src/cli/fast-launch.snapshot.blob ACTION ARGS...
 *
 * with HPCC_MEMO_OUT set as for bin/run.js. A launch whose flags fastLaunch
 * takes runs here; everything else (help, flag errors, an image reference such
 * as docker://, another Node option, HPCC_NO_BUNDLE=1, a blob made for another
 * build or place) is
 * handed to bin/run.js in the same process, so output and exit codes are those
 * of `node bin/run.js ACTION ARGS...`.
 */
import { spawn } from 'node:child_process';
import { fastLaunch, parseFast } from './fast-launch.js';
import { blobIsCurrent, handOver, servingBlob, type SnapshotStamp } from './snapshot.js';

// importModule: the build's entry script makes the bundle's import()s with it (scripts/build-snapshot.mjs).
export { importModule } from './snapshot.js';

const ACTIONS = new Set(['exec', 'run', 'shell', 'test']);

/**
 * Whether the snapshot may run `ACTION ARGS` itself: the blob sits where it
 * was built, its entry (fast-launch.js) was not recompiled since, and
 * fastLaunch parses ARGS. An image given as a reference (docker://…, oci:…)
 * goes to bin/run.js: converting one needs the OCI modules, which stay outside
 * the snapshot (their errors would be another copy of the error classes).
 */
export function launchSnapshotServes(stamp: SnapshotStamp, blob: string | undefined, argv: readonly string[]): boolean {
  if (!ACTIONS.has(argv[0] ?? '') || !blobIsCurrent(stamp, blob, 'fast-launch.js')) return false;
  const p = parseFast(argv.slice(1));
  return p !== null && !/^[a-z-]+:/.test(p.image);
}

/**
 * Build time only: evaluate the modules fast-launch.ts imports on demand (the
 * bundle initialises them on first import), so the snapshot holds them ready.
 * None reads the environment or the host when loaded.
 */
export async function prepareSnapshot(): Promise<void> {
  await Promise.all([
    import('../core/launch.js'),
    import('../runtime/spawn.js'),
    import('../runtime/plan-file.js'),
    import('../core/extract-cache.js'),
  ]);
}

/**
 * `hpcc __hpcc_smoke_spawn` (build-snapshot.mjs's smoke run): node:child_process
 * from the deserialized heap starts a child with pipes on fds 3 and 4, as
 * runtime/spawn.ts starts the launch helper, and gets back what it wrote.
 */
async function smokeSpawn(): Promise<void> {
  const child = spawn('/bin/sh', ['-c', 'cat <&3 >&4'], { stdio: ['ignore', 'ignore', 'inherit', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  (child.stdio[4] as NodeJS.ReadableStream).on('data', (d: Buffer) => chunks.push(d));
  (child.stdio[3] as NodeJS.WritableStream).end('hpcc-smoke');
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const got = Buffer.concat(chunks).toString();
  process.stdout.write(`${got}\n`);
  process.exitCode = code === 0 && got === 'hpcc-smoke' ? 0 : 1;
}

/** The snapshot's main function (v8.startupSnapshot.setDeserializeMainFunction). */
export async function snapshotMain(stamp: SnapshotStamp): Promise<void> {
  // As bin/run.js: the memo to write, removed before anything reads the environment.
  const memoOut = process.env.HPCC_MEMO_OUT;
  delete process.env.HPCC_MEMO_OUT;
  const argv = process.argv.slice(1);
  if (argv[0] === '__hpcc_smoke_spawn' && argv.length === 1) return smokeSpawn();
  if (launchSnapshotServes(stamp, servingBlob(process.execArgv, process.env), argv) && (await fastLaunch(argv[0]!, argv.slice(1), memoOut))) process.exit();
  // bin/run.js takes it from the environment again (and removes it).
  if (memoOut !== undefined) process.env.HPCC_MEMO_OUT = memoOut;
  await handOver(stamp);
}
