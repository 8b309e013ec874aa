#!/usr/bin/env node
// hpcc entry point: oclif dispatches to dist/src/commands (run `npm run build` first).
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
