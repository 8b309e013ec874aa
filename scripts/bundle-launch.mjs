#!/usr/bin/env node
// Bundle each lean start-up path into one script next to its entry, plus a V8
// code cache for it (docs/benchmarks.md, "Start-up"). Run by `npm run build` after tsc.
//   fast-launch: dist/src/cli/fast-launch.js and what it loads for `hpcc exec|run|shell|test`
//   fast-pull:   dist/src/cli/fast-pull.js and what it loads for `hpcc pull` (docs/registry.md)
//
//   dist/src/cli/NAME.bundle.vm.js     one function expression:
//       (function (exports, require, module, __hpcc_url, __hpcc_errors, __hpcc_import) { ... })
//   dist/src/cli/NAME.bundle.vm.cache  V8 code cache of that source
//
// bin/run.js compiles the bundle with vm.Script (using the cache when this
// Node accepts it; otherwise V8 compiles as usual) and passes in the bundle's
// nominal URL (each bundled module's import.meta.url becomes its own unbundled
// file's URL, resolved against it), a require() for npm packages, the errors
// module and a dynamic import(). A launch so reads 4 JavaScript files instead
// of ~55 and skips most compilation.
//
// Kept outside the bundles, loaded from the unbundled dist/src tree:
//  - errors/index.js: one copy of the error classes, shared with the modules
//    below (instanceof and rendering must agree);
//  - each bundle's cold paths, loaded only on request (for the launch path:
//    docker:// conversion, the extraction fallback; for both: squashfs codecs
//    other than gzip): they pull in the squashfs writer, codec libraries and
//    native addons;
//  - npm packages (through the require() passed in; undici for pull, loaded in
//    part on first network use by oci/registry/agent.ts, from its own bundle
//    undici.bundle.vm.js + .cache below when current) and Node built-ins
//    (through process.getBuiltinModule, Node >= 20.16: no ESM namespace facade,
//    which reads every export, e.g. node:fs's ReadStream getter loads node:stream).
// bin/run.js uses a bundle only when it is at least as new as its entry
// dist/src/cli/NAME.js (a later bare `tsc` makes it stale) and falls back to
// the unbundled files otherwise, so a missing esbuild (production installs)
// only costs start-up time: this script then warns and exits 0. A failing
// build exits 1, leaving no bundle behind.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = path.join(repo, 'dist', 'src', 'cli');
const ERRORS = path.join(repo, 'dist', 'src', 'errors', 'index.js');
const distSrc = (p) => path.join(repo, 'dist', 'src', p);
const OTHER_CODECS = ['zstd', 'xz', 'lz4', 'lzo', 'pool'].map((c) => distSrc(`formats/squashfs/codecs/${c}.js`));
// One bundle per lean path: its entry (dist/src/cli/NAME.js) and its cold modules.
const BUNDLES = [
  { name: 'fast-launch', cold: [distSrc('core/pull.js'), distSrc('core/extract-cache.js'), ...OTHER_CODECS] },
  // hpcc pull: the registry client, the cache and the converter are all bundled;
  // undici stays an npm package, loaded on first network use (oci/registry/agent.ts).
  { name: 'fast-pull', cold: OTHER_CODECS },
];
const PARAMS = 'exports, require, module, __hpcc_url, __hpcc_errors, __hpcc_import';
const outputsOf = (name) => ['.bundle.vm.js', '.bundle.vm.cache', '.bundle.js'].map((x) => path.join(cliDir, name + x));

function removeOutputs() {
  for (const b of BUNDLES) for (const f of outputsOf(b.name)) fs.rmSync(f, { force: true });
  for (const f of outputsOf('undici')) fs.rmSync(f, { force: true });
}
function die(msg) {
  removeOutputs();
  process.stderr.write(`bundle-launch: ${msg}\n`);
  process.exit(1);
}

for (const b of BUNDLES) {
  if (!fs.existsSync(path.join(cliDir, `${b.name}.js`))) die(`${path.join(cliDir, `${b.name}.js`)} is missing: run tsc first`);
}

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  removeOutputs();
  process.stderr.write('bundle-launch: esbuild is not installed (a devDependency); hpcc will load the unbundled dist/src (slower start-up)\n');
  process.exit(0);
}

const COLD_MARK = '__hpcc_cold__:';
/** The esbuild plugin of one bundle: errors module, cold modules, built-ins, import.meta.url. */
const pluginFor = (cold) => ({
  name: 'hpcc-launch-bundle',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const abs = path.resolve(args.resolveDir, args.path);
      if (abs === ERRORS) return { path: 'errors', namespace: 'hpcc-errors' };
      if (!cold.includes(abs)) return undefined;
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
    // import.meta.url: each module's own URL (its unbundled file), so paths relative
    // to it (native addons, the codec worker, helper binaries, createRequire) resolve
    // as they do unbundled.
    build.onLoad({ filter: /\.js$/ }, (args) => {
      const text = fs.readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const rel = path.relative(cliDir, args.path).split(path.sep).join('/');
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, __hpcc_url).href`), loader: 'js', resolveDir: path.dirname(args.path) };
    });
  },
});

async function bundle(b) {
  const outFile = path.join(cliDir, `${b.name}.bundle.vm.js`);
  let body;
  try {
    const result = await esbuild.build({
      entryPoints: [path.join(cliDir, `${b.name}.js`)],
      write: false,
      bundle: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      define: { 'import.meta.url': '__hpcc_url' },
      plugins: [pluginFor(b.cold)],
      // HPCC_BUNDLE_READABLE=1: keep whitespace, for reading CPU profiles
      minifyWhitespace: process.env.HPCC_BUNDLE_READABLE !== '1',
      minifySyntax: true,
      legalComments: 'none',
      logLevel: 'warning',
    });
    body = result.outputFiles[0].text;
  } catch (e) {
    die(`esbuild failed for ${b.name}: ${e instanceof Error ? e.message : String(e)}`);
  }

  // The cold modules stay dynamic imports, made by bin/run.js's __hpcc_import
  // (relative to dist/src/cli/); a dynamic import of an npm package (undici's
  // fallback in oci/registry/agent.ts) becomes a require(). Every import() left
  // must be one of those.
  const coldRe = new RegExp(`\\bimport\\((["'])${COLD_MARK}([^"']+)\\1\\)`, 'g');
  body = body.replace(coldRe, (_m, q, rel) => `__hpcc_import(${q}${rel}${q})`);
  body = body.replace(/\bimport\((["'])([a-z@][^"':]*)\1\)/g, (_m, q, spec) => `Promise.resolve().then(() => require(${q}${spec}${q}))`);
  if (/\bimport\(|\brequire\((["'])\.\.?\//.test(body) || body.includes(COLD_MARK)) {
    die(`the ${b.name} bundle still holds a relative import() or require() (expected only the cold modules)`);
  }
  const source = `(function (${PARAMS}) {\n"use strict";\n${body}\n})`;

  return { outFile, source, cache: codeCache(b.name, source, outFile) };
}

/**
 * The V8 code cache of `source`: compiled with lazy compilation off, so it
 * holds every function's bytecode; created with the default flags back on, as
 * a plain `node` checks them when it loads the cache. `runFlag` is a flag the
 * loading process runs under (V8 rejects a cache made under other flags); it
 * is set while the cache is made and turned off after.
 */
function codeCache(name, source, filename, runFlag) {
  try {
    v8.setFlagsFromString('--no-lazy');
    if (runFlag) v8.setFlagsFromString(`--${runFlag}`);
    const script = new vm.Script(source, { filename });
    v8.setFlagsFromString('--lazy');
    const cache = script.createCachedData();
    if (runFlag) v8.setFlagsFromString(`--no-${runFlag}`);
    return cache;
  } catch (e) {
    die(`compiling the ${name} bundle failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * undici's parts that oci/registry/agent.ts loads on first network use (the Agent,
 * Dispatcher and its request API, the proxy agent), as one script with a code
 * cache: dist/src/cli/undici.bundle.vm.js, `(function (exports, require, module) {...})`
 * after a first line `// undici VERSION`; agent.ts uses it only when VERSION is the
 * installed undici's (else it requires the package's files, as without a build).
 * Kept apart from the pull bundle, so commands that never touch the network
 * (e.g. a pull from an oci-archive) do not read it.
 */
async function bundleUndici() {
  const outFile = path.join(cliDir, 'undici.bundle.vm.js');
  const req = (await import('node:module')).createRequire(path.join(repo, 'package.json'));
  let body;
  let version;
  try {
    version = JSON.parse(fs.readFileSync(req.resolve('undici/package.json'), 'utf8')).version;
    const result = await esbuild.build({
      stdin: {
        contents: [
          "exports.Agent = require('undici/lib/dispatcher/agent.js');",
          "exports.Dispatcher = require('undici/lib/dispatcher/dispatcher.js');",
          "exports.api = require('undici/lib/api/index.js');",
          "exports.EnvHttpProxyAgent = require('undici/lib/dispatcher/env-http-proxy-agent.js');",
        ].join('\n'),
        resolveDir: repo,
        loader: 'js',
      },
      write: false,
      bundle: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: 'none',
      logLevel: 'warning',
    });
    body = result.outputFiles[0].text;
  } catch (e) {
    // Not fatal: without this bundle agent.ts requires undici's files (slower first request).
    process.stderr.write(`bundle-launch: no undici bundle (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); hpcc will require undici's files\n`);
    return null;
  }
  if (/\brequire\((["'])\.\.?\//.test(body)) die('the undici bundle still holds a relative require()');
  const source = `// undici ${version}\n(function (exports, require, module) {\n${body}\n})`;
  // V8 accepts a code cache only under the flags it was made with: undici is
  // loaded after fastPull's preferBaselineWasm() has set --liftoff-only (every
  // pull but --compressor zstd, whose V8 rejects this cache and compiles as usual).
  return { outFile, source, cache: codeCache('undici', source, outFile, 'liftoff-only') };
}
const built = [];
for (const b of BUNDLES) built.push({ b, ...(await bundle(b)) });
const undici = await bundleUndici();
if (undici) built.push({ b: { name: 'undici' }, ...undici });
else for (const f of outputsOf('undici')) fs.rmSync(f, { force: true });
for (const { b, outFile, source, cache } of built) {
  for (const [file, data] of [
    [outFile, source],
    [path.join(cliDir, `${b.name}.bundle.vm.cache`), cache],
  ]) {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  }
  fs.rmSync(path.join(cliDir, `${b.name}.bundle.js`), { force: true }); // the ESM bundle of earlier builds
  if (process.env.HPCC_BUNDLE_VERBOSE) {
    process.stderr.write(`bundle-launch: ${source.length} bytes, code cache ${cache.length} bytes -> ${path.relative(repo, outFile)}\n`);
  }
}
