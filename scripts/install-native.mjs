#!/usr/bin/env node
// The package's `install` script (npm runs it on `npm install -g hpcc-VERSION.tgz`, and in
// a checkout on `npm ci`). The package ships its native parts prebuilt for linux-x64
// (dist/native: the `hpcc` command, which is the native front, hpcc-launch, the xattr
// helper, deflate.node; `npm pack` builds them, see "prepack"). Here:
//  - in a checkout (src/ is there), or a package without dist/src: nothing; `npm run build`
//    builds everything;
//  - when the prebuilt helpers run on this machine: nothing;
//  - else (another architecture, an older C library): build them with make and the C
//    compiler, first naming what is missing (make, the compiler, a header) in one line.
// Runs on whatever Node npm runs (Debian 12's is 18/20): no newer APIs.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const native = path.join(root, 'dist', 'native');
const PROGRAMS = ['hpcc', 'hpcc-launch'];

function fail(msg, hint) {
  process.stderr.write(`hpcc install: ${msg}\nhint: ${hint}\n`);
  process.exit(1);
}

// A checkout (TypeScript sources, not in the package) or one not built: `npm run build` does it.
if (fs.existsSync(path.join(root, 'src', 'cli')) || !fs.existsSync(path.join(root, 'dist', 'src', 'cli', 'contract-header.js'))) process.exit(0);
if (process.env.HPCC_INSTALL_REBUILD !== '1' && prebuiltRuns()) process.exit(0);

const cc = process.env.CC || 'cc';
if (!onPath('make')) fail('cannot build the native parts: `make` is not installed', 'install make (Debian/Ubuntu: apt-get install make; RHEL: dnf install make), then reinstall hpcc.');
if (!onPath(cc)) fail(`cannot build the native parts: no C compiler (\`${cc}\`, from $CC or the default)`, 'install a C compiler (Debian/Ubuntu: apt-get install gcc libc6-dev; RHEL: dnf install gcc), or set CC, then reinstall hpcc.');
const header = missingHeader(cc);
if (header) fail(`cannot build the native parts: the C header <${header}> is missing`, `install the C library's and kernel's development headers (Debian/Ubuntu: apt-get install libc6-dev linux-libc-dev; RHEL: dnf install glibc-devel kernel-headers), then reinstall hpcc.`);
// The contract header is generated from the compiled JavaScript with this Node.
const r = spawnSync('make', ['-s', '-C', path.join(root, 'native'), 'clean', 'all', `CC=${cc}`], { stdio: 'inherit', env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}` } });
if (r.status !== 0) fail(`building the native parts failed (make exited ${r.status ?? r.signal})`, 'see the compiler\'s messages above.');

/** Whether the shipped helpers exist and run here (`hpcc-launch --version`). */
function prebuiltRuns() {
  if (!PROGRAMS.every((p) => fs.existsSync(path.join(native, p)))) return false;
  const v = spawnSync(path.join(native, 'hpcc-launch'), ['--version'], { encoding: 'utf8' });
  return v.status === 0 && /plan-version \d+/.test(v.stdout);
}

function onPath(cmd) {
  if (cmd.includes('/')) return fs.existsSync(cmd);
  return (process.env.PATH || '').split(':').some((d) => d && fs.existsSync(path.join(d, cmd)));
}

/** The first system header the native sources include that the compiler cannot find, or null. */
function missingHeader(compiler) {
  const headers = new Set();
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.[ch]$/.test(e.name)) for (const m of fs.readFileSync(p, 'utf8').matchAll(/^#\s*include\s*<([^>]+)>/gm)) headers.add(m[1]);
    }
  };
  walk(path.join(root, 'native'));
  headers.delete('libdeflate.h'); // optional: deflate.node is skipped without it
  headers.delete('node_api.h');
  for (const h of [...headers].sort()) {
    const t = spawnSync(compiler, ['-E', '-D_GNU_SOURCE', '-x', 'c', '-'], { input: `#include <${h}>\n`, encoding: 'utf8' });
    if (t.status !== 0) return h;
  }
  return null;
}
