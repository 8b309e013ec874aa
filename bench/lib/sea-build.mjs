#!/usr/bin/env node
// bench/release-sea.sh's SEA variant of an unpacked release (a benchmark, not a release path):
//   node bench/lib/sea-build.mjs TOP POSTJECT [code-cache|no-code-cache]
// TOP: an unpacked release (hpcc-VERSION-linux-x64/), changed in place. Its JavaScript
// (bin/run.js, dist/launch.js, dist/hpcc.js, dist/errors.js: the release's ES-module bundles)
// becomes one CommonJS script, the main script of a Node single-executable application
// (`node --experimental-sea-config`, then POSTJECT, the postject package's CLI, injects the
// blob into a copy of the release's Node): lib/hpcc/dist/native/hpcc-node. The files it
// replaces and the release's Node are removed; the addons, zstd.wasm and the two worker
// entries stay (loaded by path, as in the release). oclif's explicit command table comes
// from a three-line CommonJS file (dist/commands.cjs) that hands over the table the SEA set.
// The front (native/front/front.c pick_node/run_node) runs hpcc-node when it is there.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const [top, postject, cacheArg = 'code-cache'] = process.argv.slice(2);
if (!top || !postject) throw new Error('usage: sea-build.mjs TOP POSTJECT [code-cache|no-code-cache]');
const lib = path.join(top, 'lib', 'hpcc');
const native = path.join(lib, 'dist', 'native');
const esbuild = await import('esbuild');
const work = fs.mkdtempSync(path.join(top, '.sea-'));
const must = (cmd, args) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status ?? r.signal}`);
};

// 1. one ES module from bin/run.js and the bundles it imports, with each file's import.meta.url
//    the URL that file has in the release (from the executable's path) and no static import
const BANNER = "import { createRequire as __hpccCreateRequire } from 'node:module';";
const RUN_CMDS = 'await(await import("../dist/hpcc.js")).loadCommands();';
const esm = path.join(work, 'main.mjs');
await esbuild.build({
  entryPoints: [path.join(lib, 'bin', 'run.js')],
  outfile: esm,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  minifyWhitespace: true,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [
    {
      name: 'hpcc-sea',
      setup(build) {
        build.onLoad({ filter: /\.js$/ }, (a) => {
          const rel = path.relative(lib, a.path).split(path.sep).join('/');
          let t = fs.readFileSync(a.path, 'utf8').replace(/^#!.*\n/, '');
          if (!t.includes(BANNER)) throw new Error(`${rel}: no banner`);
          t = t.replace(BANNER, "const __hpccCreateRequire = process.getBuiltinModule('node:module').createRequire;");
          t = t.replaceAll('import.meta.url', `__hpccUrl(${JSON.stringify(rel)})`);
          if (rel === 'bin/run.js') {
            if (!t.includes(RUN_CMDS)) throw new Error('bin/run.js: no loadCommands');
            t = t.replace(RUN_CMDS, `${RUN_CMDS}globalThis.__hpccCommands=(await import("../dist/hpcc.js")).COMMANDS;`);
          }
          return { contents: t, loader: 'js', resolveDir: path.dirname(a.path) };
        });
      },
    },
  ],
});
// 2. CommonJS: the module's body in an async function (top-level await), strict as a module is
let body = fs.readFileSync(esm, 'utf8');
if (/^\s*(import|export)\s/m.test(body.split('\n').filter((l) => /^(import|export)\s/.test(l)).join('\n'))) throw new Error('static import/export left');
const main = path.join(work, 'main.cjs');
fs.writeFileSync(
  main,
  `'use strict';
const __hpccRoot = process.getBuiltinModule('node:url').pathToFileURL(process.getBuiltinModule('node:path').resolve(process.execPath, '../../..') + '/');
const __hpccUrl = (rel) => new URL(rel, __hpccRoot).href;
(async () => {
${body}
})().catch((e) => { process.stderr.write(String(e?.stack ?? e) + '\\n'); process.exit(1); });
`,
);
// 3. the blob, injected into a copy of the release's Node
const cfg = path.join(work, 'sea.json');
const blob = path.join(work, 'sea.blob');
fs.writeFileSync(cfg, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: cacheArg === 'code-cache' }));
const node = path.join(native, 'node');
must(node, ['--experimental-sea-config', cfg]);
const sea = path.join(native, 'hpcc-node');
fs.copyFileSync(node, sea);
fs.chmodSync(sea, 0o755);
must(postject, [sea, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2']);
// 4. oclif's command table, and what the SEA replaces
const pj = JSON.parse(fs.readFileSync(path.join(lib, 'package.json'), 'utf8'));
pj.oclif.commands.target = './dist/commands.cjs';
fs.writeFileSync(path.join(lib, 'package.json'), `${JSON.stringify(pj, null, 2)}\n`);
fs.writeFileSync(path.join(lib, 'dist', 'commands.cjs'), "// the SEA's command table (bench/lib/sea-build.mjs)\nexports.COMMANDS = globalThis.__hpccCommands;\n");
for (const f of ['bin/run.js', 'dist/launch.js', 'dist/hpcc.js', 'dist/errors.js', 'dist/native/node']) fs.rmSync(path.join(lib, f));
fs.rmdirSync(path.join(lib, 'bin'));
process.stderr.write(`sea-build: ${sea} (${(fs.statSync(sea).size / 1048576).toFixed(1)} MiB; main script ${(fs.statSync(main).size / 1024).toFixed(0)} KiB, code cache ${cacheArg === 'code-cache' ? 'on' : 'off'})\n`);
fs.rmSync(work, { recursive: true, force: true });
