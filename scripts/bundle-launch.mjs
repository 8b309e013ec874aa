#!/usr/bin/env node
// Bundle the lean launch path (dist/src/cli/fast-launch.js and what it loads
// for `hpcc exec|run|shell|test`) into one ESM file next to it,
// dist/src/cli/fast-launch.bundle.js, so a launch loads ~4 modules instead of
// ~55 (docs/benchmarks.md, "Start-up"). Run by `npm run build` after tsc.
//
// Kept outside the bundle, imported from the unbundled dist/src tree:
//  - errors/index.js: one copy of the error classes, shared with the modules
//    below (instanceof and rendering must agree);
//  - the cold paths loaded only on request (docker:// conversion, the
//    extraction fallback, squashfs codecs other than gzip): they pull in the
//    squashfs writer, codec libraries and native addons located relative to
//    their own file;
//  - npm packages and Node built-ins.
// bin/run.js uses the bundle only when it is at least as new as
// dist/src/cli/fast-launch.js (a later bare `tsc` makes it stale) and falls
// back to the unbundled files otherwise, so a missing esbuild (production
// installs) only costs start-up time: this script then warns and exits 0.
// A failing esbuild run exits 1 (a build error), leaving no bundle behind.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = path.join(repo, 'dist', 'src', 'cli');
const entry = path.join(cliDir, 'fast-launch.js');
const outFile = path.join(cliDir, 'fast-launch.bundle.js');
const EXTERNAL = [
  'errors/index.js',
  'core/pull.js',
  'core/extract-cache.js',
  ...['zstd', 'xz', 'lz4', 'lzo', 'pool'].map((c) => `formats/squashfs/codecs/${c}.js`),
].map((p) => path.join(repo, 'dist', 'src', p));

function warn(msg) {
  process.stderr.write(`bundle-launch: ${msg}; hpcc will load the unbundled dist/src (slower start-up)\n`);
}

if (!fs.existsSync(entry)) {
  process.stderr.write(`bundle-launch: ${entry} is missing: run tsc first\n`);
  process.exit(1);
}

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  fs.rmSync(outFile, { force: true });
  warn('esbuild is not installed (a devDependency)');
  process.exit(0);
}

/** Relative imports of the EXTERNAL modules stay imports, re-pointed from the bundle's directory. */
const keepExternal = {
  name: 'hpcc-keep-external',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const abs = path.resolve(args.resolveDir, args.path);
      if (!EXTERNAL.includes(abs)) return undefined;
      let rel = path.relative(cliDir, abs).split(path.sep).join('/');
      if (!rel.startsWith('.')) rel = `./${rel}`;
      return { path: rel, external: true };
    });
  },
};

/**
 * Node built-ins through process.getBuiltinModule (Node >= 20.16) instead of
 * ESM imports: an ESM import of a built-in builds a namespace facade that
 * reads every export, and those getters load more (node:fs's ReadStream
 * loads all of node:stream, node:util's load parseArgs and MIME). As CommonJS
 * stand-ins, each is loaded where the bundle first needs it, and only the
 * properties used are read.
 */
const builtinsViaProcess = {
  name: 'hpcc-builtins',
  setup(build) {
    build.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'hpcc-builtin', sideEffects: false }));
    build.onLoad({ filter: /.*/, namespace: 'hpcc-builtin' }, (args) => ({
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

const tmp = `${outFile}.${process.pid}.tmp`;
try {
  const result = await esbuild.build({
    entryPoints: [entry],
    outfile: tmp,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    plugins: [keepExternal, builtinsViaProcess],
    // HPCC_BUNDLE_READABLE=1: keep whitespace, for reading CPU profiles
    minifyWhitespace: process.env.HPCC_BUNDLE_READABLE !== '1',
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  fs.renameSync(tmp, outFile);
  const inputs = Object.keys(result.metafile.inputs).length;
  const bytes = fs.statSync(outFile).size;
  if (process.env.HPCC_BUNDLE_VERBOSE) process.stderr.write(`bundle-launch: ${inputs} modules, ${bytes} bytes -> ${path.relative(repo, outFile)}\n`);
} catch (e) {
  fs.rmSync(tmp, { force: true });
  fs.rmSync(outFile, { force: true });
  process.stderr.write(`bundle-launch: esbuild failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
