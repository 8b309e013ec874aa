#!/usr/bin/env node
// A launch command dispatched through oclif instead of bin/run.js's lean path,
// for bench/startup.sh's "via oclif" row (what oclif's start-up costs per launch):
//   node bench/lib/oclif-exec.mjs exec IMAGE.sif CMD...
// Same command class and flags as `hpcc exec`; only the dispatch differs.
import { execute } from '@oclif/core';

await execute({ args: process.argv.slice(2), dir: new URL('../../bin/run.js', import.meta.url).href });
