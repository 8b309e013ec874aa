#!/usr/bin/env node
// Bundle the lean launch path (dist/src/cli/fast-launch.js and what it loads
// for `hpcc exec|run|shell|test`) into one script next to it, plus a V8 code
// cache for it (docs/benchmarks.md, "Start-up"). Run by `npm run build` after tsc.
//
//   dist/src/cli/fast-launch.bundle.vm.js     one function expression:
//       (function (exports, require, module, __hpcc_url, __hpcc_errors, __hpcc_import) { ... })
//   dist/src/cli/fast-launch.bundle.vm.cache  V8 code cache of that source
//
// bin/run.js compiles the bundle with vm.Script (using the cache when this
// Node accepts it; otherwise V8 compiles as usual) and passes in the bundle's
// nominal URL (for import.meta.url: paths relative to dist/src/cli), a
// require() for npm packages, the errors module and a dynamic import(). A
// launch so reads 4 JavaScript files instead of ~55 and skips most compilation.
//
// Kept outside the bundle, loaded from the unbundled dist/src tree:
//  - errors/index.js: one copy of the error classes, shared with the modules
//    below (instanceof and rendering must agree);
//  - the cold paths loaded only on request (docker:// conversion, the
//    extraction fallback, squashfs codecs other than gzip): they pull in the
//    squashfs writer, codec libraries and native addons located relative to
//    their own file;
//  - npm packages (through the require() passed in) and Node built-ins (through
//    process.getBuiltinModule, Node >= 20.16: no ESM namespace facade, which
//    reads every export, e.g. node:fs's ReadStream getter loads node:stream).
// bin/run.js uses the bundle only when it is at least as new as
// dist/src/cli/fast-launch.js (a later bare `tsc` makes it stale) and falls
// back to the unbundled files otherwise, so a missing esbuild (production
// installs) only costs start-up time: this script then warns and exits 0.
// A failing build exits 1, leaving no bundle behind.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = path.join(repo, 'dist', 'src', 'cli');
const entry = path.join(cliDir, 'fast-launch.js');
const outFile = path.join(cliDir, 'fast-launch.bundle.vm.js');
const cacheFile = path.join(cliDir, 'fast-launch.bundle.vm.cache');
const ERRORS = path.join(repo, 'dist', 'src', 'errors', 'index.js');
const COLD = [
  'core/pull.js',
  'core/extract-cache.js',
  ...['zstd', 'xz', 'lz4', 'lzo', 'pool'].map((c) => `formats/squashfs/codecs/${c}.js`),
].map((p) => path.join(repo, 'dist', 'src', p));
const PARAMS = 'exports, require, module, __hpcc_url, __hpcc_errors, __hpcc_import';

function removeOutputs() {
  for (const f of [outFile, cacheFile, path.join(cliDir, 'fast-launch.bundle.js')]) fs.rmSync(f, { force: true });
}
function die(msg) {
  removeOutputs();
  process.stderr.write(`bundle-launch: ${msg}\n`);
  process.exit(1);
}

if (!fs.existsSync(entry)) die(`${entry} is missing: run tsc first`);

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  removeOutputs();
  process.stderr.write('bundle-launch: esbuild is not installed (a devDependency); hpcc will load the unbundled dist/src (slower start-up)\n');
  process.exit(0);
}

const COLD_MARK = '__hpcc_cold__:';
const plugin = {
  name: 'hpcc-launch-bundle',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const abs = path.resolve(args.resolveDir, args.path);
      if (abs === ERRORS) return { path: 'errors', namespace: 'hpcc-errors' };
      if (!COLD.includes(abs)) return undefined;
      let rel = path.relative(cliDir, abs).split(path.sep).join('/');
      if (!rel.startsWith('.')) rel = `./${rel}`;
      return { path: COLD_MARK + rel, external: true };
    });
    build.onLoad({ filter: /.*/, namespace: 'hpcc-errors' }, () => ({ contents: 'module.exports = __hpcc_errors;', loader: 'js' }));
    build.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'hpcc-builtin', sideEffects: false }));
    build.onLoad({ filter: /.*/, namespace: 'hpcc-builtin' }, (args) => ({
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

let body;
try {
  const result = await esbuild.build({
    entryPoints: [entry],
    write: false,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    define: { 'import.meta.url': '__hpcc_url' },
    plugins: [plugin],
    // HPCC_BUNDLE_READABLE=1: keep whitespace, for reading CPU profiles
    minifyWhitespace: process.env.HPCC_BUNDLE_READABLE !== '1',
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  body = result.outputFiles[0].text;
} catch (e) {
  die(`esbuild failed: ${e instanceof Error ? e.message : String(e)}`);
}

// The cold modules stay dynamic imports, made by bin/run.js's __hpcc_import
// (relative to dist/src/cli/). Every import() left must be one of them.
const coldRe = new RegExp(`\\bimport\\((["'])${COLD_MARK}([^"']+)\\1\\)`, 'g');
body = body.replace(coldRe, (_m, q, rel) => `__hpcc_import(${q}${rel}${q})`);
if (/\bimport\(|\brequire\((["'])\.\.?\//.test(body) || body.includes(COLD_MARK)) {
  die('the bundle still holds a relative import() or require() (expected only the cold modules)');
}
const source = `(function (${PARAMS}) {\n"use strict";\n${body}\n})`;

// The code cache: compiled with lazy compilation off, so it holds every
// function's bytecode; created with the default flags back on, as a plain
// `node` checks them when it loads the cache.
let cache;
try {
  v8.setFlagsFromString('--no-lazy');
  const script = new vm.Script(source, { filename: outFile });
  v8.setFlagsFromString('--lazy');
  cache = script.createCachedData();
} catch (e) {
  die(`compiling the bundle failed: ${e instanceof Error ? e.message : String(e)}`);
}

for (const [file, data] of [
  [outFile, source],
  [cacheFile, cache],
]) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}
fs.rmSync(path.join(cliDir, 'fast-launch.bundle.js'), { force: true }); // the ESM bundle of earlier builds
if (process.env.HPCC_BUNDLE_VERBOSE) {
  process.stderr.write(`bundle-launch: ${source.length} bytes, code cache ${cache.length} bytes -> ${path.relative(repo, outFile)}\n`);
}
