#!/usr/bin/env node
// Bundle each lean start-up path into one ES module next to its entry. Run by
// `npm run build` after tsc.
//   fast-launch: dist/src/cli/fast-launch.js and what it loads for `hpcc exec|run|shell|test`
//   fast-pull:   dist/src/cli/fast-pull.js and what it loads for `hpcc pull`
// -> dist/src/cli/NAME.bundle.js. bin/run.js imports it (with Node's compile cache on,
// module.enableCompileCache) when it is at least as new as dist/src/cli/NAME.js (a later
// bare `tsc` makes it stale), else the unbundled dist/src; HPCC_NO_BUNDLE=1 forces the
// latter. A launch so reads a handful of JavaScript files instead of ~55
// (docs/benchmarks.md, "Start-up").
//
// Kept outside the bundle, loaded from the unbundled dist/src tree:
//  - errors/index.js: one copy of the error classes, shared with the modules
//    below (instanceof and rendering must agree);
//  - each bundle's cold modules, loaded only on request (for the launch path:
//    docker:// conversion, the extraction fallback; for both: squashfs codecs other
//    than gzip): they pull in the squashfs writer, codec libraries and native addons;
//  - npm packages (undici among them, loaded in part on first network use by
//    oci/registry/agent.ts) and Node built-ins. A built-in is taken with
//    process.getBuiltinModule, not imported: an ESM namespace of a built-in reads
//    every export (node:fs's ReadStream getter loads node:stream).
// A missing esbuild (production installs) only costs start-up time: this script
// then warns and exits 0. A failing build exits 1, leaving no bundle behind.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COLD } from './lean-cold.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = path.join(repo, 'dist', 'src', 'cli');
const ERRORS = path.join(repo, 'dist', 'src', 'errors', 'index.js');
const distSrc = (p) => path.join(repo, 'dist', 'src', p);
const BUNDLES = Object.entries(COLD).map(([name, cold]) => ({ name, cold: cold.map(distSrc) }));
const outOf = (name) => path.join(cliDir, `${name}.bundle.js`);
// Outputs of earlier builds (vm.Script bundles with a hand-made V8 code cache, start-up snapshots).
const STALE = ['fast-launch', 'fast-pull', 'undici'].flatMap((n) => ['.bundle.vm.js', '.bundle.vm.cache', '.snapshot.blob', '.snapshot.info'].map((x) => n + x));

function die(msg) {
  for (const b of BUNDLES) fs.rmSync(outOf(b.name), { force: true });
  process.stderr.write(`bundle-launch: ${msg}\n`);
  process.exit(1);
}

for (const f of STALE) fs.rmSync(path.join(cliDir, f), { force: true });
for (const b of BUNDLES) {
  if (!fs.existsSync(path.join(cliDir, `${b.name}.js`))) die(`${path.join(cliDir, `${b.name}.js`)} is missing: run tsc first`);
}

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  for (const b of BUNDLES) fs.rmSync(outOf(b.name), { force: true });
  process.stderr.write('bundle-launch: esbuild is not installed (a devDependency); hpcc will load the unbundled dist/src (slower start-up)\n');
  process.exit(0);
}

/** A module path as an import specifier relative to dist/src/cli (where the bundle sits). */
const fromCli = (abs) => {
  const rel = path.relative(cliDir, abs).split(path.sep).join('/');
  return rel.startsWith('.') ? rel : `./${rel}`;
};
/** The esbuild plugin of one bundle: errors module, cold modules, built-ins, import.meta.url. */
const pluginFor = (cold) => ({
  name: 'hpcc-launch-bundle',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const abs = path.resolve(args.resolveDir, args.path);
      return abs === ERRORS || cold.includes(abs) ? { path: fromCli(abs), external: true } : undefined;
    });
    build.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'hpcc-builtin', sideEffects: false }));
    build.onLoad({ filter: /.*/, namespace: 'hpcc-builtin' }, (args) => ({
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
    // import.meta.url: each module's own URL (its unbundled file), so paths relative
    // to it (native addons, helper binaries, createRequire) resolve as they do unbundled.
    build.onLoad({ filter: /\.js$/ }, (args) => {
      const text = fs.readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const url = `new URL(${JSON.stringify(fromCli(args.path))}, import.meta.url).href`;
      return { contents: text.replaceAll('import.meta.url', url), loader: 'js', resolveDir: path.dirname(args.path) };
    });
  },
});

/** Bundle b into its NAME.bundle.js (written atomically). */
async function bundle(b) {
  const entry = path.join(cliDir, `${b.name}.js`);
  const out = outOf(b.name);
  let body;
  try {
    const result = await esbuild.build({
      entryPoints: [entry],
      write: false,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node22',
      packages: 'external',
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
  // Every relative import left must be the errors module or a cold module.
  const allowed = new Set([ERRORS, ...b.cold].map(fromCli));
  for (const m of body.matchAll(/\b(?:from|import)\s*\(?\s*(["'])(\.\.?\/[^"']+)\1/g)) {
    if (!allowed.has(m[2])) die(`the ${b.name} bundle still imports ${m[2]} (expected only the errors module and its cold modules)`);
  }
  const tmp = `${out}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `// Generated by scripts/bundle-launch.mjs from dist/src/cli/${b.name}.js: do not edit.\n${body}`);
  fs.renameSync(tmp, out);
  if (process.env.HPCC_BUNDLE_VERBOSE) process.stderr.write(`bundle-launch: ${body.length} bytes -> ${path.relative(repo, out)}\n`);
}
for (const b of BUNDLES) await bundle(b);
