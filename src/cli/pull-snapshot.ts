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
 * dynamic-import callback: snapshot.ts's `importModule` compiles one through vm
 * with the main context's loader). What both snapshots share is in snapshot.ts.
 */
import { loadUndici } from '../oci/registry/agent.js';
import { BlobCache, RegistrySource, closeDefaultAgent, fastPull, parseReference, parsePullArgv, preferBaselineWasm } from './fast-pull.js';
import { blobIsCurrent, handOver, servingBlob, type SnapshotStamp } from './snapshot.js';

// importModule: the build's entry script makes the bundle's import()s with it (scripts/build-snapshot.mjs).
export { importModule, soleBlobPath, type SnapshotStamp } from './snapshot.js';

/**
 * Whether the snapshot may run `pull ARGS` itself: the blob sits where it was
 * built, its entry was not recompiled since, and fastPull takes ARGS with the
 * default (gzip) compressor — the other codecs are modules outside the
 * snapshot (their errors would be another copy of the error classes).
 */
export function snapshotServes(stamp: SnapshotStamp, blob: string | undefined, argv: readonly string[]): boolean {
  if (argv[0] !== 'pull' || !blobIsCurrent(stamp, blob, 'fast-pull.js')) return false;
  const p = parsePullArgv(argv.slice(1));
  return p !== null && (p.flags.compressor === undefined || p.flags.compressor === 'gzip');
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
  if (snapshotServes(stamp, servingBlob(process.execArgv, process.env), argv) && (await fastPull('pull', argv.slice(1)))) process.exit();
  await handOver(stamp);
}
