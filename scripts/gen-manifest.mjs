// Writes oclif.manifest.json (package root) from the compiled commands (run tsc first; npm run
// build runs this). With the manifest, oclif lists commands and renders help without importing
// every command module (docs/benchmarks.md, "oclif manifest"); without it, oclif discovers the
// commands at each start. The file is generated, never committed (.gitignore);
// test/unit/cli/oclif-manifest.test.ts fails when it disagrees with the compiled commands.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Plugin } from '@oclif/core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// What `oclif manifest` does: load the package as oclif's core plugin, ignoring any manifest on disk.
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, respectNoCacheDefault: true });
await plugin.load();
const out = path.join(root, 'oclif.manifest.json');
fs.writeFileSync(`${out}.tmp`, `${JSON.stringify(plugin.manifest, null, 2)}\n`);
fs.renameSync(`${out}.tmp`, out);
