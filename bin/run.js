#!/usr/bin/env node
// hpcc entry point: oclif dispatches to dist/src/commands (run `npm run build` first).
// exec/run/shell/test take a lean path that skips loading oclif (start-up cost per launch);
// it hands anything it does not parse (e.g. --help) back to oclif.
const cmd = process.argv[2];
if (cmd === 'exec' || cmd === 'run' || cmd === 'shell' || cmd === 'test') {
  const { fastLaunch } = await import('../dist/src/cli/fast-launch.js');
  if (await fastLaunch(cmd, process.argv.slice(3))) process.exit();
}
const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
