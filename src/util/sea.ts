/**
 * The release's Node is a single-executable application (docs/release.md): Node 24 with hpcc's
 * JavaScript injected (lib/hpcc/dist/native/hpcc-node), made by scripts/release-sea.mjs. It
 * runs its own script whatever its arguments, so where hpcc starts Node on one of its scripts
 * (the build's namespace worker, `hpcc test` after a build) the arguments differ there: the
 * SEA's main script takes NS_WORKER_ARG as "run the namespace worker" and anything else as
 * hpcc's command line. Pure but for node:sea, so that the release script can import it.
 */

/** The SEA's first argument that runs the build's namespace worker (dist/src/build/def/ns-worker.js) instead of hpcc. */
export const SEA_NS_WORKER_ARG = '--hpcc-ns-worker';

/** Whether this process is the release's single-executable application. */
export function inSea(): boolean {
  try {
    return process.getBuiltinModule('node:sea')?.isSea() ?? false;
  } catch {
    return false;
  }
}

/** The command that runs the namespace worker (the file `worker` outside the SEA) with this process's Node. */
export function nsWorkerCommand(worker: string): string[] {
  return inSea() ? [process.execPath, SEA_NS_WORKER_ARG] : [process.execPath, worker];
}

/** The command that runs hpcc (bin/run.js `runJs` outside the SEA) with this process's Node. */
export function hpccCommand(runJs: string): string[] {
  return inSea() ? [process.execPath] : [process.execPath, runJs];
}
