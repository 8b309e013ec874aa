#!/usr/bin/env node
// A Node start-up snapshot of `hpcc pull` (docs/registry.md, "Start-up snapshot of `hpcc
// pull`"). Run by `npm run build` after tsc and scripts/bundle-launch.mjs. Writes
//
//   dist/src/cli/fast-pull.snapshot.blob   the snapshot (~7 MB)
//   dist/src/cli/fast-pull.snapshot.info   "REALPATH\tSIZE\tMTIME_SECONDS\tVERSION\n" of the node
//                                          binary that built it
//
// The native front (dist/native/hpcc) runs `hpcc pull ARGS...` as exactly
//
//   node --snapshot-blob <DIST>/src/cli/fast-pull.snapshot.blob pull ARGS...
//
// (<DIST> = the absolute dist/ next to bin/run.js; no other Node option) when the blob exists,
// NODE_OPTIONS is unset or empty, and the node it execs is the .info line's file (realpath,
// size, mtime); else `node <DIST>/../bin/run.js pull ARGS...`. Node refuses a blob made by
// another node or under other V8 flags ("Failed to load the startup snapshot", exit 14) before
// any hpcc code runs; everything else the blob checks itself (src/cli/pull-snapshot.ts: built
// here, from the current fast-pull.js, a gzip pull the lean path parses, no Node option) and
// otherwise hands the arguments to bin/run.js in the same process, so both command lines print
// and exit the same.
//
// How: esbuild bundles dist/src/cli/pull-snapshot.js with everything it imports (hpcc's
// modules, the errors module, npm packages but undici) into one CommonJS script, which
// `node --snapshot-blob F --build-snapshot SCRIPT` compiles eagerly, runs and serializes; then
// pull-snapshot.ts's prepareSnapshot() loads undici's parts from the build's undici bundle
// (oci/registry/agent.ts) into the same heap. Left for after deserialization: node:tls,
// node:http, node:http2 (stand-ins; see entryScript), native addons (deflate.node, on first
// use), WebAssembly (llhttp, on the first connection), the other squashfs codecs (never
// reached: those pulls go to bin/run.js). Module paths (import.meta.url) are baked in: the
// blob works where it was built.
//
// Never fails the build: without esbuild, on a Node without user-land snapshots, or when the
// snapshot does not build or does not answer a smoke run, it prints a note, leaves no blob
// and exits 0 (the front then uses bin/run.js); without a current undici bundle it builds
// the snapshot without undici.
//   node scripts/build-snapshot.mjs [--out FILE] [--no-undici] [--node-flag FLAG]...
//   (experiments: another file in dist/src/cli, undici left out, a blob for
//   `node FLAG... --snapshot-blob FILE`, which then hands every pull to bin/run.js)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = path.join(repo, 'dist', 'src', 'cli');
const entry = path.join(cliDir, 'pull-snapshot.js');
const distSrc = (p) => path.join(repo, 'dist', 'src', p);
const COLD = ['zstd', 'xz', 'lz4', 'lzo', 'pool'].map((c) => distSrc(`formats/squashfs/codecs/${c}.js`));

const args = process.argv.slice(2);
let out = path.join(cliDir, 'fast-pull.snapshot.blob');
const nodeFlags = [];
let noUndici = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--out') out = path.resolve(args[++i]);
  else if (args[i] === '--no-undici') noUndici = true;
  else if (args[i] === '--node-flag') nodeFlags.push(args[++i]);
  else {
    process.stderr.write(`build-snapshot: unknown argument ${args[i]}\n`);
    process.exit(2);
  }
}

let work;
let tmp;
const nodeFile = () => out.replace(/\.blob$/, '') + '.info';
function skip(why) {
  fs.rmSync(out, { force: true });
  fs.rmSync(nodeFile(), { force: true });
  if (tmp) fs.rmSync(tmp, { force: true });
  if (work) fs.rmSync(work, { recursive: true, force: true });
  process.stderr.write(`build-snapshot: no start-up snapshot (${why}); hpcc pull starts from bin/run.js\n`);
  process.exit(0);
}

const [major, minor] = process.versions.node.split('.').map(Number);
// v8.startupSnapshot and --build-snapshot: Node >= 18.20 / 20; process.getBuiltinModule: 20.16.
if (major < 20 || (major === 20 && minor < 16)) skip(`Node ${process.versions.node} < 20.16`);
if (!fs.existsSync(entry)) skip(`${path.relative(repo, entry)} is missing: run tsc first`);
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  skip('esbuild is not installed (a devDependency)');
}

// Built-ins whose native parts a snapshot cannot serialize (Node 20: node:tls, "Unknown
// external reference"): a stand-in with one getter per export, loading the module on first use.
const LAZY_BUILTINS = ['tls'];
const lazyBuiltin = async (name) => {
  const keys = Object.keys(await import(`node:${name}`)).filter((k) => k !== 'default');
  return [
    `let m; const get = () => (m ??= process.getBuiltinModule(${JSON.stringify(`node:${name}`)}));`,
    `for (const k of ${JSON.stringify(keys)}) Object.defineProperty(module.exports, k, { get: () => get()[k], enumerable: true });`,
  ].join('\n');
};
const COLD_MARK = '__hpcc_cold__:';
const plugin = {
  name: 'hpcc-snapshot',
  setup(build) {
    const lazyRe = new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`);
    build.onResolve({ filter: lazyRe }, (a) => ({ path: a.path.replace(/^node:/, ''), namespace: 'hpcc-lazy-builtin' }));
    build.onLoad({ filter: /.*/, namespace: 'hpcc-lazy-builtin' }, async (a) => ({ contents: await lazyBuiltin(a.path), loader: 'js' }));
    build.onResolve({ filter: /^\.\.?\// }, (a) => {
      const abs = path.resolve(a.resolveDir, a.path);
      return COLD.includes(abs) ? { path: COLD_MARK + pathToFileURL(abs).href, external: true } : undefined;
    });
    // import.meta.url: each module's own (unbundled) file, so relative paths resolve as unbundled.
    build.onLoad({ filter: /\.js$/ }, (a) => {
      if (!a.path.startsWith(path.join(repo, 'dist') + path.sep)) return undefined;
      const text = fs.readFileSync(a.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      return { contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(a.path).href)), loader: 'js', resolveDir: path.dirname(a.path) };
    });
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
    external: ['undici', 'undici/*'],
    plugins: [plugin],
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'error',
  });
  body = result.outputFiles[0].text;
} catch (e) {
  skip(`esbuild failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
}
// A snapshot's main function has no dynamic-import callback: cold modules go through the
// vm-based importModule of pull-snapshot.ts, npm packages left outside through __hpcc_require.
const coldRe = new RegExp(`\\bimport\\((["'])${COLD_MARK}([^"']+)\\1\\)`, 'g');
body = body.replace(coldRe, (_m, q, url) => `__hpcc_import(${q}${url}${q})`);
body = body.replace(/\bimport\((["'])(undici[^"']*)\1\)/g, (_m, q, spec) => `Promise.resolve().then(() => __hpcc_require(${q}${spec}${q}))`);
if (/\bimport\(/.test(body.replace(/\(s\) => import\(s\)/g, ''))) skip('the bundle still holds an import() outside the cold modules');

const stamp = { cliDir, entryMtimeMs: fs.statSync(path.join(cliDir, 'fast-pull.js')).mtimeMs };
const env = { ...process.env };
delete env.NODE_OPTIONS; // the blob must match the flags it runs under: none but nodeFlags
delete env.HPCC_NO_BUNDLE; // undici's parts come from its bundle (agent.ts), not its files
// node:http's maxHeaderSize and node:http2's constants as a node with those flags sees them.
const facts = spawnSync(process.execPath, [...nodeFlags, '-p', 'JSON.stringify([require("node:http").maxHeaderSize, require("node:http2").constants])'], { env, encoding: 'utf8' });
if (facts.status !== 0) skip(`node ${nodeFlags.join(' ')} -p failed: ${facts.stderr.trim().split('\n')[0]}`);
const [maxHeaderSize, http2Constants] = JSON.parse(facts.stdout);

/**
 * The snapshot's entry script. The bundle is compiled through vm.Script with lazy
 * compilation off, so the snapshot holds every function's bytecode (a snapshot carries no
 * code cache: a function left uncompiled would be compiled from source on every run).
 * With `withUndici`, pull-snapshot.ts's prepareSnapshot() then loads undici's parts
 * (oci/registry/agent.ts, from the build's undici bundle) into the heap, while node:http and
 * node:http2 — which cannot be loaded at snapshot time — are stand-ins for undici's
 * load-time reads: http.maxHeaderSize (read from a node with the same flags; the front
 * passes no --max-http-header-size, and NODE_OPTIONS makes the snapshot hand over),
 * util.js's IncomingMessage (only compared against node:http response objects, which hpcc
 * never hands to undici) and http2.constants (values copied); any other property loads the
 * real module on first use. No user-land CommonJS module may be loaded at snapshot time
 * (Node then fails on start), so the entry throws if one was.
 */
const entryScript = (withUndici) => `"use strict";
// Generated by scripts/build-snapshot.mjs: the snapshot entry of hpcc pull.
(function (builderRequire) {
  // Built-ins at build time; npm packages (undici's fallback) only at run time.
  const require = (id) => {
    const b = process.getBuiltinModule(id);
    if (b !== undefined) return b;
    return process.getBuiltinModule('node:module').createRequire(${JSON.stringify(path.join(cliDir, 'pull-snapshot.js'))})(id);
  };
  const module = { exports: {} };
  const __hpcc_import = (spec) => module.exports.importModule(spec);
  const v8 = builderRequire('node:v8');
  const Module = builderRequire('node:module');
  v8.setFlagsFromString('--no-lazy');
  const fn = new (builderRequire('node:vm').Script)(${JSON.stringify(`(function (require, __hpcc_require, __hpcc_import, module, exports) {\n${body}\n})`)}, { filename: ${JSON.stringify(path.join(cliDir, 'pull-snapshot.bundle.js'))} }).runInThisContext();
  v8.setFlagsFromString('--lazy');
  fn(require, require, __hpcc_import, module, module.exports);
  if (${withUndici}) {
    const lazy = (name, baked) => { let m; const get = () => (m ??= process.getBuiltinModule(name)); return new Proxy(baked, { get: (t, k) => (k in t ? t[k] : get()[k]) }); };
    const standIns = {
      'node:http': lazy('node:http', { maxHeaderSize: ${maxHeaderSize}, IncomingMessage: class IncomingMessage {} }),
      'node:http2': lazy('node:http2', { constants: ${JSON.stringify(http2Constants)} }),
    };
    const load = Module._load;
    Module._load = function (request, ...rest) {
      const s = standIns[request.startsWith('node:') ? request : 'node:' + request];
      return s !== undefined ? s : load.call(this, request, ...rest);
    };
    v8.setFlagsFromString('--no-lazy');
    try {
      module.exports.prepareSnapshot();
    } finally {
      Module._load = load;
      v8.setFlagsFromString('--lazy');
    }
  }
  if (Object.keys(Module._cache).length > 0) throw new Error('user-land modules were loaded at snapshot time: ' + Object.keys(Module._cache).join(', '));
  v8.startupSnapshot.setDeserializeMainFunction(() => module.exports.snapshotMain(${JSON.stringify(stamp)}));
})(require);
`;

work = fs.mkdtempSync(path.join(os.tmpdir(), 'hpcc-snapshot-'));
tmp = `${out}.${process.pid}.tmp`;

/** Build the blob at tmp and smoke-run it; the reason it failed, or null. */
function attempt(withUndici) {
  fs.rmSync(tmp, { force: true });
  const entryFile = path.join(work, 'pull-snapshot.entry.cjs');
  fs.writeFileSync(entryFile, entryScript(withUndici));
  const built = spawnSync(process.execPath, [...nodeFlags, '--snapshot-blob', tmp, '--build-snapshot', entryFile], { env, encoding: 'utf8', cwd: work });
  if (built.status !== 0 || !fs.existsSync(tmp)) {
    const lines = (built.stderr || '').split('\n').filter((l) => l.trim() !== '' && !/^\s+at |Warning: It's not yet fully verified|It may still work|To request support|--trace-warnings/.test(l));
    return `node --build-snapshot failed (exit ${built.status ?? built.signal}): ${lines.slice(-3).join(' / ')}`;
  }
  // Smoke run: a pull the snapshot serves itself and that fails before any I/O of note (an
  // oci: layout that does not exist): its typed error, exit code 1..69, no crash.
  const smoke = spawnSync(process.execPath, [...nodeFlags, '--snapshot-blob', tmp, 'pull', '--quiet', path.join(work, 'o.sif'), `oci:${path.join(work, 'none')}`], {
    env: { ...env, HPCC_CACHEDIR: path.join(work, 'cache') },
    encoding: 'utf8',
  });
  if (!(smoke.status >= 1 && smoke.status < 70) || !smoke.stderr.startsWith('Error (HPCC_E_')) {
    return `its smoke run failed (exit ${smoke.status ?? smoke.signal}): ${smoke.stderr.trim().split('\n').slice(0, 3).join(' / ')}`;
  }
  return null;
}

try {
  let why = noUndici ? 'not tried' : attempt(true);
  if (why !== null) {
    if (!noUndici) process.stderr.write(`build-snapshot: undici stays outside the snapshot (${why})\n`);
    why = attempt(false);
    if (why !== null) skip(why);
  }
  fs.renameSync(tmp, out);
  // The node the blob is for, for the front: "REALPATH\tSIZE\tMTIME_SECONDS\tVERSION\n".
  const exe = fs.realpathSync(process.execPath);
  const st = fs.statSync(exe);
  fs.writeFileSync(`${nodeFile()}.tmp`, `${exe}\t${st.size}\t${Math.floor(st.mtimeMs / 1000)}\t${process.version}\n`);
  fs.renameSync(`${nodeFile()}.tmp`, nodeFile());
  if (process.env.HPCC_BUNDLE_VERBOSE) process.stderr.write(`build-snapshot: ${fs.statSync(out).size} bytes -> ${path.relative(repo, out)}\n`);
} finally {
  fs.rmSync(tmp, { force: true });
  fs.rmSync(work, { recursive: true, force: true });
}
