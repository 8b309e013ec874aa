#!/usr/bin/env node
// hpcc entry point: oclif dispatches to dist/src/commands (run `npm run build` first).
// exec/run/shell/test and pull take lean paths that skip loading oclif (start-up cost per
// command); they hand anything they do not parse (e.g. --help) back to oclif.
// A lean path comes from its one-script bundle and V8 code cache that `npm run build`
// writes (scripts/bundle-launch.mjs) when the bundle is at least as new as its compiled
// entry (dist/src/cli/fast-launch.js, fast-pull.js), else from the unbundled dist/src;
// HPCC_NO_BUNDLE=1 forces the latter.
// native/front (dist/native/hpcc) sets HPCC_MEMO_OUT when it found no launch memo for this
// command line: the lean launch path writes one there. Removed before anything reads the
// environment, so the launch sees the environment the front was given.
const memoOut = process.env.HPCC_MEMO_OUT;
delete process.env.HPCC_MEMO_OUT;
// HPCC_LEAN=0: every command through oclif (the launch contract tests compare the two paths);
// removed as HPCC_MEMO_OUT is, so the launch's environment is the same on either path.
const leanOff = process.env.HPCC_LEAN === '0';
delete process.env.HPCC_LEAN;
const cmd = process.argv[2];
const { isLaunchAction } = await import('../dist/src/cli/launch-options.js');
const lean = isLaunchAction(cmd) ? ['fast-launch', 'fastLaunch'] : cmd === 'pull' ? ['fast-pull', 'fastPull'] : null;
if (lean && !leanOff) {
  const cli = new URL('../dist/src/cli/', import.meta.url);
  const [name, fn] = lean;
  const fast = (process.env.HPCC_NO_BUNDLE !== '1' && (await loadBundle(cli, name, fn))) || (await import(new URL(`${name}.js`, cli).href))[fn];
  if (await fast(cmd, process.argv.slice(3), memoOut)) process.exit();
}
const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });

/** The export exportName of the build's bundle of dist/src/cli/NAME.js, or undefined when there is no current bundle. */
async function loadBundle(cli, name, exportName) {
  if (typeof process.getBuiltinModule !== 'function') return undefined; // Node < 20.16: the bundle needs it
  const fs = process.getBuiltinModule('node:fs'); // no ESM facade: that would load node:stream
  const file = new URL(`${name}.bundle.vm.js`, cli);
  let source;
  try {
    if (fs.statSync(file).mtimeMs < fs.statSync(new URL(`${name}.js`, cli)).mtimeMs) return undefined; // a later tsc
    source = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let cachedData;
  try {
    cachedData = fs.readFileSync(new URL(`${name}.bundle.vm.cache`, cli));
  } catch {
    /* compile without it */
  }
  const vm = process.getBuiltinModule('node:vm');
  const filename = process.getBuiltinModule('node:url').fileURLToPath(file);
  const fn = new vm.Script(source, { filename, cachedData }).runInThisContext();
  const errors = await import(new URL('../errors/index.js', cli).href);
  const module = { exports: {} };
  const require = process.getBuiltinModule('node:module').createRequire(filename);
  fn(module.exports, require, module, file.href, errors, (spec) => import(new URL(spec, file).href));
  return module.exports[exportName];
}
