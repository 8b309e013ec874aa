/**
 * `hpcc pull` from a Node start-up snapshot: scripts/build-snapshot.mjs writes
 * dist/src/cli/fast-pull.snapshot.blob, whose heap already holds this module,
 * everything fast-pull.ts loads and undici's parts (docs/registry.md, "Start-up
 * snapshot"). The native front runs it as
 *
 *   node --snapshot-blob DIST/src/cli/fast-pull.snapshot.blob pull ARGS...
 *
 * and then process.argv is [node, 'pull', ...ARGS]. A gzip pull whose flags
 * fastPull takes runs here; everything else (help, flag errors, another
 * compressor, another Node option, a blob made for another build or place) is
 * handed to bin/run.js in the same process, so output and exit codes are those
 * of `node bin/run.js pull ARGS...`.
 *
 * Left for after deserialization: node:tls, node:http and node:http2 (native
 * state a snapshot cannot hold; loaded on first use), native addons (deflate.node,
 * codecs/libdeflate.ts) and every import() (a snapshot's main function has no
 * dynamic-import callback: `importModule` below compiles one through vm with the
 * main context's loader).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadUndici } from '../oci/registry/agent.js';
import { BlobCache, RegistrySource, closeDefaultAgent, fastPull, parseReference, parsePullArgv, preferBaselineWasm } from './fast-pull.js';

/** What the build recorded: where the blob was made, and the compiled entry it was made from. */
export interface SnapshotStamp {
  /** absolute dist/src/cli directory the snapshot's module paths point into */
  cliDir: string;
  /** mtimeMs of cliDir/fast-pull.js when the snapshot was built (a later tsc changes it) */
  entryMtimeMs: number;
}

/**
 * The --snapshot-blob path when it is the only Node option this process got
 * (execArgv, NODE_OPTIONS), else undefined: the snapshot holds values Node
 * options could change (e.g. undici's copy of http.maxHeaderSize), so any
 * other option hands the command to bin/run.js.
 */
export function soleBlobPath(execArgv: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  if ((env.NODE_OPTIONS ?? '').trim() !== '') return undefined;
  if (execArgv.length === 2 && execArgv[0] === '--snapshot-blob') return execArgv[1];
  if (execArgv.length === 1 && execArgv[0]!.startsWith('--snapshot-blob=')) return execArgv[0]!.slice('--snapshot-blob='.length);
  return undefined;
}

/**
 * Whether the snapshot may run `pull ARGS` itself: the blob sits where it was
 * built, its entry was not recompiled since, and fastPull takes ARGS with the
 * default (gzip) compressor — the other codecs are modules outside the
 * snapshot (their errors would be another copy of the error classes).
 */
export function snapshotServes(stamp: SnapshotStamp, blob: string | undefined, argv: readonly string[]): boolean {
  if (argv[0] !== 'pull' || blob === undefined) return false;
  if (path.dirname(path.resolve(blob)) !== stamp.cliDir) return false;
  try {
    if (fs.statSync(path.join(stamp.cliDir, 'fast-pull.js')).mtimeMs !== stamp.entryMtimeMs) return false;
  } catch {
    return false;
  }
  const p = parsePullArgv(argv.slice(1));
  return p !== null && (p.flags.compressor === undefined || p.flags.compressor === 'gzip');
}

/**
 * import() for code deserialized from a snapshot, through a vm.Script that uses
 * the main context's loader. Node 20 flags that constant experimental and warns
 * once on stderr; that one warning is dropped, so the output stays the same as
 * bin/run.js's.
 */
export function importModule(specifier: string): Promise<unknown> {
  const vm = process.getBuiltinModule('node:vm') as typeof import('node:vm');
  const emit = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (text.includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) return;
    return (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    const loader = (vm.constants as Record<string, unknown>).USE_MAIN_CONTEXT_DEFAULT_LOADER;
    const fn = new vm.Script('(s) => import(s)', { filename: 'hpcc-snapshot-import', importModuleDynamically: loader as never }).runInThisContext() as (
      s: string,
    ) => Promise<unknown>;
    return fn(specifier);
  } finally {
    process.emitWarning = emit;
  }
}

/** The --snapshot-blob path in execArgv, wherever it is. */
function blobPathOf(execArgv: readonly string[]): string | undefined {
  const i = execArgv.indexOf('--snapshot-blob');
  if (i >= 0) return execArgv[i + 1];
  return execArgv.find((a) => a.startsWith('--snapshot-blob='))?.slice('--snapshot-blob='.length);
}

/** Run bin/run.js next to the blob (or the build's) with this process's arguments, as `node bin/run.js ARGS` would. */
async function handOver(stamp: SnapshotStamp): Promise<void> {
  const blob = blobPathOf(process.execArgv);
  const cliDir = blob !== undefined ? path.dirname(path.resolve(blob)) : stamp.cliDir;
  const runJs = path.resolve(cliDir, '..', '..', '..', 'bin', 'run.js');
  process.argv = [process.argv[0]!, runJs, ...process.argv.slice(1)];
  await importModule(pathToFileURL(runJs).href);
}

/**
 * bench/pull.mjs's "hpcc fetch, snapshot" row: `node --snapshot-blob BLOB __hpcc_bench_fetch REF DIR`
 * downloads REF's layers into the cache DIR as `hpcc pull` does before converting (plain HTTP,
 * layers started while the config is fetched), nothing else; the same steps as the bench's
 * "hpcc fetch, lean" script, from the snapshot.
 */
async function benchFetch(ref: string, dir: string): Promise<void> {
  preferBaselineWasm(undefined);
  const r = parseReference(ref);
  if (r.transport !== 'docker') throw new Error(`__hpcc_bench_fetch takes a docker:// reference, not ${ref}`);
  const img = await new RegistrySource(r, { insecure: true, cache: new BlobCache(dir), prefetch: () => true }).resolve({});
  await img.fetchAll();
  await img.close();
  await closeDefaultAgent();
}

/** Build time only: load undici's parts into the heap the snapshot will hold (see build-snapshot.mjs). */
export function prepareSnapshot(): Promise<unknown> {
  return loadUndici();
}

/** The snapshot's main function (v8.startupSnapshot.setDeserializeMainFunction). */
export async function snapshotMain(stamp: SnapshotStamp): Promise<void> {
  const argv = process.argv.slice(1);
  if (argv[0] === '__hpcc_bench_fetch' && argv.length === 3) return benchFetch(argv[1]!, argv[2]!);
  if (snapshotServes(stamp, soleBlobPath(process.execArgv, process.env), argv) && (await fastPull('pull', argv.slice(1)))) process.exit();
  await handOver(stamp);
}
