/**
 * What the two Node start-up snapshots share (scripts/build-snapshot.mjs):
 * fast-pull.snapshot.blob (src/cli/pull-snapshot.ts, `hpcc pull`) and
 * fast-launch.snapshot.blob (src/cli/launch-snapshot.ts, `hpcc
 * exec|run|shell|test`). The native front runs one as
 *
 *   node --snapshot-blob DIST/src/cli/NAME.snapshot.blob ACTION ARGS...
 *
 * so process.argv is [node, ACTION, ...ARGS]. Each snapshot serves what its
 * lean path takes and hands the rest to bin/run.js in the same process
 * (handOver), so both command lines print and exit the same.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

/** What the build recorded: where the blob was made, and the compiled entry it was made from. */
export interface SnapshotStamp {
  /** absolute dist/src/cli directory the snapshot's module paths point into */
  cliDir: string;
  /** mtimeMs of the lean path's compiled entry (cliDir/fast-pull.js, fast-launch.js) when the snapshot was built (a later tsc changes it) */
  entryMtimeMs: number;
}

/**
 * The --snapshot-blob path when it is the only Node option this process got
 * (execArgv, NODE_OPTIONS), else undefined: a snapshot holds values Node
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
 * The blob this run may serve commands from: soleBlobPath, unless HPCC_NO_BUNDLE=1
 * asks for the unbundled dist/src (bin/run.js then loads it).
 */
export function servingBlob(execArgv: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  return env.HPCC_NO_BUNDLE === '1' ? undefined : soleBlobPath(execArgv, env);
}

/**
 * Whether a blob may serve a command itself: it sits in the dist/src/cli it
 * was built in (module paths are baked in) and its entry `entry` (fast-pull.js,
 * fast-launch.js) was not recompiled since (same mtime).
 */
export function blobIsCurrent(stamp: SnapshotStamp, blob: string | undefined, entry: string): boolean {
  if (blob === undefined || path.dirname(path.resolve(blob)) !== stamp.cliDir) return false;
  try {
    return fs.statSync(path.join(stamp.cliDir, entry)).mtimeMs === stamp.entryMtimeMs;
  } catch {
    return false;
  }
}

/**
 * import() for code deserialized from a snapshot, through a vm.Script that uses
 * the main context's loader (a snapshot's main function has no dynamic-import
 * callback). Node 20 flags that constant experimental and warns once on
 * stderr; that one warning is dropped, so the output stays the same as
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
export async function handOver(stamp: SnapshotStamp): Promise<void> {
  const blob = blobPathOf(process.execArgv);
  const cliDir = blob !== undefined ? path.dirname(path.resolve(blob)) : stamp.cliDir;
  const runJs = path.resolve(cliDir, '..', '..', '..', 'bin', 'run.js');
  process.argv = [process.argv[0]!, runJs, ...process.argv.slice(1)];
  await importModule(pathToFileURL(runJs).href);
}
