#!/usr/bin/env node
// hpcc entry point: oclif dispatches to dist/src/commands (run `npm run build` first).
// exec/run/shell/test take a lean path that skips loading oclif (start-up cost per launch);
// it hands anything it does not parse (e.g. --help) back to oclif.
// The lean path is loaded from the one-file bundle that `npm run build` writes
// (scripts/bundle-launch.mjs) when it is at least as new as the compiled
// fast-launch.js, else from the unbundled dist/src; HPCC_NO_BUNDLE=1 forces the latter.
const cmd = process.argv[2];
if (cmd === 'exec' || cmd === 'run' || cmd === 'shell' || cmd === 'test') {
  const { statSync } = process.getBuiltinModule('node:fs'); // no ESM facade: that would load node:stream
  const plain = new URL('../dist/src/cli/fast-launch.js', import.meta.url);
  const bundle = new URL('../dist/src/cli/fast-launch.bundle.js', import.meta.url);
  let fresh = false;
  if (process.env.HPCC_NO_BUNDLE !== '1') {
    try {
      fresh = statSync(bundle).mtimeMs >= statSync(plain).mtimeMs;
    } catch {
      /* no bundle (or no build at all): the import below reports the latter */
    }
  }
  const { fastLaunch } = await import(fresh ? bundle.href : plain.href);
  if (await fastLaunch(cmd, process.argv.slice(3))) process.exit();
}
const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
