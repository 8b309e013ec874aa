#!/usr/bin/env node
// Prints the sources.list lines hpcc's `Bootstrap: debootstrap` uses for SUITE when the
// def file gives no MirrorURL (src/build/debootstrap.ts, hostSources: the host's own apt
// configuration, read at run time), one per line. The scripts that make root filesystems
// with mmdebstrap (bench/lib/make-rootfs.sh, bench/build.sh, test/tools/release-rootfs.sh)
// take their sources from here, so there is one rule. Needs the build (npm run build).
//
//   node scripts/apt-sources.mjs SUITE > sources.list
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const suite = process.argv[2] ?? '';
if (process.argv.length !== 3 || !/^[a-z][a-z0-9.-]*$/.test(suite)) {
  process.stderr.write('usage: node scripts/apt-sources.mjs SUITE\n');
  process.exit(2);
}
const lib = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'src', 'build', 'debootstrap.js');
let mod;
try {
  mod = await import(pathToFileURL(lib).href);
} catch (e) {
  process.stderr.write(`apt-sources: cannot load ${lib} (build hpcc first: npm run build): ${e.message}\n`);
  process.exit(2);
}
for (const l of await mod.hostSources(suite)) process.stdout.write(`${l}\n`);
