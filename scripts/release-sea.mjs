// The release's Node: a single-executable application (SEA) of Node 24 holding hpcc's JavaScript
// (scripts/release.mjs; docs/release.md, "One executable"). From the bundles
// scripts/release-bundle.mjs wrote into LIB (bin/run.js, dist/launch.js, dist/hpcc.js,
// dist/errors.js, ES modules), one CommonJS main script; `node --experimental-sea-config` makes
// its blob with V8's code cache (useCodeCache: the first launch compiles nothing it did not
// have to; no compile cache), and postject (a devDependency) injects it into a copy of Node:
// LIB/dist/native/hpcc-node, which the front (native/front/front.c pick_node) runs without
// bin/run.js. The bundles and Node itself are then removed. What stays next to it, loaded by
// path as before: the addons and zstd.wasm, the two worker entries (the codec worker thread's,
// and the build's namespace worker, which the SEA require()s when its first argument is
// SEA_NS_WORKER_ARG: src/util/sea.ts), and dist/commands.cjs, oclif's explicit command table
// (package.json's target), a two-line file that hands over the table the SEA set.
// How the ES bundles become one script: esbuild bundles bin/run.js with the bundles it imports
// (dist/launch.js and dist/hpcc.js lazily, as they were), each file's import.meta.url the URL
// that file has in the release (from the executable's own path: process.execPath is
// ROOT/dist/native/hpcc-node), its banner's static import of node:module a getBuiltinModule;
// the result, an ES module whose only top-level awaits are bin/run.js's, runs in an async
// function of the CommonJS script.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

export const SEA_NAME = 'hpcc-node'; // native/front/front.c SEA_NAME, src/runtime/memo.ts buildFiles
const SENTINEL = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'; // Node's (src/node_sea.cc)
const BANNER = "import { createRequire as __hpccCreateRequire } from 'node:module';";
const LOAD_COMMANDS = 'await(await import("../dist/hpcc.js")).loadCommands();';
const NS_WORKER = 'dist/src/build/def/ns-worker.js';

/** Replace LIB's bundles and Node by LIB/dist/native/hpcc-node. codeCache: false only for bench/release-sea.sh. */
export async function makeSea(repo, lib, die, { codeCache = true } = {}) {
  const esbuild = await import('esbuild').catch(() => die('esbuild (a devDependency) is needed to make a release: run `npm ci`'));
  const req = createRequire(path.join(repo, 'package.json'));
  let postject;
  try {
    postject = path.join(path.dirname(req.resolve('postject/package.json')), 'dist', 'cli.js');
  } catch {
    die('postject (a devDependency) is needed to make a release: run `npm ci`');
  }
  const { SEA_NS_WORKER_ARG } = await import(path.join(repo, 'dist', 'src', 'util', 'sea.js'));
  const native = path.join(lib, 'dist', 'native');
  const node = path.join(native, 'node');
  const work = fs.mkdtempSync(path.join(path.dirname(lib), '.sea-'));
  try {
    // 1. one ES module: bin/run.js and the bundles it imports
    const esm = path.join(work, 'main.mjs');
    await esbuild
      .build({
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
                if (!t.includes(BANNER)) die(`${rel} has no \`${BANNER}\` (scripts/release-sea.mjs replaces it)`);
                t = t.replace(BANNER, "const __hpccCreateRequire = process.getBuiltinModule('node:module').createRequire;");
                t = t.replaceAll('import.meta.url', `__hpccUrl(${JSON.stringify(rel)})`);
                if (rel === 'bin/run.js') {
                  if (!t.includes(LOAD_COMMANDS)) die(`bin/run.js (bundled) has no \`${LOAD_COMMANDS}\` (scripts/release-sea.mjs adds to it)`);
                  t = t.replace(LOAD_COMMANDS, `${LOAD_COMMANDS}globalThis.__hpccCommands=(await import("../dist/hpcc.js")).COMMANDS;`);
                }
                return { contents: t, loader: 'js', resolveDir: path.dirname(a.path) };
              });
            },
          },
        ],
      })
      .catch((e) => die(`esbuild failed for the SEA's main script: ${e instanceof Error ? e.message : String(e)}`));
    const body = fs.readFileSync(esm, 'utf8');
    // 2. the CommonJS main script: the namespace worker, or hpcc
    const main = path.join(work, 'main.cjs');
    fs.writeFileSync(
      main,
      `'use strict';
const __hpccRoot = process.getBuiltinModule('node:url').pathToFileURL(process.getBuiltinModule('node:path').resolve(process.execPath, '../../..') + '/');
const __hpccUrl = (rel) => new URL(rel, __hpccRoot).href;
if (process.argv[2] === ${JSON.stringify(SEA_NS_WORKER_ARG)}) {
  const w = process.getBuiltinModule('node:url').fileURLToPath(__hpccUrl(${JSON.stringify(NS_WORKER)}));
  process.argv.splice(1, 2, w);
  process.getBuiltinModule('node:module').createRequire(w)(w);
} else {
  (async () => {
${body}
  })().catch((e) => { process.stderr.write(String(e?.stack ?? e) + '\\n'); process.exit(70); });
}
`,
    );
    // 3. oclif's command table
    const pjFile = path.join(lib, 'package.json');
    const pj = JSON.parse(fs.readFileSync(pjFile, 'utf8'));
    pj.oclif.commands.target = './dist/commands.cjs';
    fs.writeFileSync(pjFile, `${JSON.stringify(pj, null, 2)}\n`);
    fs.writeFileSync(path.join(lib, 'dist', 'commands.cjs'), "// oclif's command table, set by the SEA (scripts/release-sea.mjs)\nexports.COMMANDS = globalThis.__hpccCommands;\n");
    // 4. the blob, injected into a copy of the release's Node
    const cfg = path.join(work, 'sea.json');
    const blob = path.join(work, 'sea.blob');
    fs.writeFileSync(cfg, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: codeCache, useSnapshot: false }));
    const run = (what, cmd, args) => {
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      if (r.status !== 0) die(`${what} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout || r.error}`);
    };
    run('node --experimental-sea-config', node, ['--experimental-sea-config', cfg]);
    const sea = path.join(native, SEA_NAME);
    fs.copyFileSync(node, sea);
    fs.chmodSync(sea, 0o755);
    run('postject', node, [postject, sea, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SENTINEL]);
    // the SEA runs: an oclif command (its main script, the command table, the install root)
    const probe = spawnSync(sea, ['--version'], { encoding: 'utf8', env: { ...process.env, HPCC_CACHEDIR: path.join(work, 'cache') } });
    if (probe.status !== 0 || !probe.stdout.startsWith('hpcc ')) die(`the SEA does not run: ${probe.stderr || probe.stdout}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  // what the SEA replaces
  for (const f of ['bin/run.js', 'dist/launch.js', 'dist/hpcc.js', 'dist/errors.js', 'dist/native/node']) fs.rmSync(path.join(lib, f));
  fs.rmdirSync(path.join(lib, 'bin'));
}
