#!/usr/bin/env node
// Node start-up snapshots of hpcc's lean paths (docs/registry.md, "Start-up snapshot of `hpcc
// pull`"; docs/launcher.md, "Start-up snapshot"). Run by `npm run build` after tsc and
// scripts/bundle-launch.mjs. Writes, one pair per lean path:
//
//   dist/src/cli/fast-pull.snapshot.blob     `hpcc pull` (src/cli/pull-snapshot.ts, ~7 MB)
//   dist/src/cli/fast-launch.snapshot.blob   `hpcc exec|run|shell|test` (src/cli/launch-snapshot.ts)
//   dist/src/cli/NAME.snapshot.info          "REALPATH\tSIZE\tMTIME_SECONDS\tVERSION\n" of the node
//                                            binary that built NAME.snapshot.blob
//
// The native front (dist/native/hpcc) runs `hpcc ACTION ARGS...` (pull; exec, run, shell, test) as
// exactly
//
//   node --snapshot-blob <DIST>/src/cli/NAME.snapshot.blob ACTION ARGS...
//
// (NAME fast-pull or fast-launch; <DIST> = the absolute dist/ next to bin/run.js; no other Node
// option; for a launch with HPCC_MEMO_OUT set as for bin/run.js) when the blob exists,
// NODE_OPTIONS is unset or empty, and the node it execs is the .info line's file (realpath,
// size, mtime); else `node <DIST>/../bin/run.js ACTION ARGS...`. Node refuses a blob made by
// another node or under other V8 flags ("Failed to load the startup snapshot", exit 14) before
// any hpcc code runs; everything else the blob checks itself (src/cli/snapshot.ts: built here,
// from the current entry fast-pull.js / fast-launch.js, no Node option; and what its lean path
// parses) and otherwise hands the arguments to bin/run.js in the same process, so both command
// lines print and exit the same.
//
// How: esbuild bundles dist/src/cli/pull-snapshot.js (launch-snapshot.js) with everything it
// imports (hpcc's modules, the errors module, npm packages but undici) into one CommonJS
// script, which `node --snapshot-blob F --build-snapshot SCRIPT` compiles eagerly, runs and
// serializes; then the entry's prepareSnapshot() loads more into the same heap: for pull,
// undici's parts (oci/registry/agent.ts, from the build's undici bundle); for launch, it
// evaluates the modules the launch path imports on demand. Left for after deserialization:
// node:tls, node:http, node:http2 (stand-ins; see entryScript), native addons (deflate.node, on
// first use), WebAssembly (llhttp, on the first connection), modules kept out of the bundle
// (pull: the other squashfs codecs, never reached: those pulls go to bin/run.js; launch: the
// OCI conversion of docker:// images, whose launches go to bin/run.js). Module paths
// (import.meta.url) are baked in: the blob works where it was built.
//
// Never fails the build: without esbuild, on a Node without user-land snapshots, or when a
// snapshot does not build or does not answer its smoke runs, it prints a note, leaves no blob
// for that path and exits 0 (the front then uses bin/run.js); without a current undici bundle
// it builds the pull snapshot without undici.
//   node scripts/build-snapshot.mjs [--target pull|launch] [--out FILE] [--no-undici] [--node-flag FLAG]...
//   (both blobs by default; --out: one blob at FILE, its target from --target, else from the
//   name: fast-launch* is launch, anything else pull; experiments: undici left out, a blob for
//   `node FLAG... --snapshot-blob FILE`, which then hands every command to bin/run.js)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = path.join(repo, 'dist', 'src', 'cli');
const distSrc = (p) => path.join(repo, 'dist', 'src', p);

/**
 * The snapshots: `entry` (in dist/src/cli) is bundled; `lean` is the lean path's compiled entry
 * whose mtime the blob records; `cold` modules stay outside (imported from dist/src through
 * snapshot.ts's importModule); `smoke` runs check a fresh blob (each must exit as `ok` says).
 */
const TARGETS = {
  pull: {
    what: 'hpcc pull',
    entry: 'pull-snapshot.js',
    lean: 'fast-pull.js',
    blob: 'fast-pull.snapshot.blob',
    cold: ['zstd', 'xz', 'lz4', 'lzo', 'pool'].map((c) => distSrc(`formats/squashfs/codecs/${c}.js`)),
    undici: true,
    // a pull it serves itself that fails before any I/O of note (an oci: layout that does not
    // exist): its typed error, exit code 1..69, no crash
    smoke: (work) => [
      { argv: ['pull', '--quiet', path.join(work, 'o.sif'), `oci:${path.join(work, 'none')}`], ok: (r) => r.status >= 1 && r.status < 70 && r.stderr.startsWith('Error (HPCC_E_') },
    ],
  },
  launch: {
    what: 'hpcc exec|run|shell|test',
    entry: 'launch-snapshot.js',
    lean: 'fast-launch.js',
    blob: 'fast-launch.snapshot.blob',
    // docker:// images (their launches go to bin/run.js); the codecs and the extraction fallback are in
    cold: [distSrc('core/pull.js')],
    undici: false,
    smoke: (work) => [
      // a launch of a missing image: the lean path's typed I/O error (exit 80)
      { argv: ['exec', path.join(work, 'none.sif'), 'true'], ok: (r) => r.status === 80 && r.stderr.startsWith('Error (HPCC_E_IO') },
      // node:child_process from the deserialized heap: a child with pipes on fds 3 and 4, as the helper gets
      { argv: ['__hpcc_smoke_spawn'], ok: (r) => r.status === 0 && r.stdout === 'hpcc-smoke\n' },
    ],
  },
};

const args = process.argv.slice(2);
let out;
let only;
const nodeFlags = [];
let noUndici = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--out') out = path.resolve(args[++i]);
  else if (args[i] === '--target') {
    only = args[++i];
    if (!Object.hasOwn(TARGETS, only ?? '')) {
      process.stderr.write(`build-snapshot: --target takes ${Object.keys(TARGETS).join(' or ')}, not ${only}\n`);
      process.exit(2);
    }
  } else if (args[i] === '--no-undici') noUndici = true;
  else if (args[i] === '--node-flag') nodeFlags.push(args[++i]);
  else {
    process.stderr.write(`build-snapshot: unknown argument ${args[i]}\n`);
    process.exit(2);
  }
}
if (out !== undefined && only === undefined) only = path.basename(out).startsWith('fast-launch') ? 'launch' : 'pull';
/** [target, blob path] of each snapshot to build */
const jobs = (only ? [only] : Object.keys(TARGETS)).map((t) => [TARGETS[t], out ?? path.join(cliDir, TARGETS[t].blob)]);

const infoFile = (blob) => blob.replace(/\.blob$/, '') + '.info';
class Skip extends Error {}
const skip = (why) => {
  throw new Skip(why);
};
function note(t, blob, why) {
  fs.rmSync(blob, { force: true });
  fs.rmSync(infoFile(blob), { force: true });
  process.stderr.write(`build-snapshot: no start-up snapshot (${why}); ${t.what} starts from bin/run.js\n`);
}

let esbuild;
try {
  const [major, minor] = process.versions.node.split('.').map(Number);
  // v8.startupSnapshot and --build-snapshot: Node >= 18.20 / 20; process.getBuiltinModule: 20.16.
  if (major < 20 || (major === 20 && minor < 16)) skip(`Node ${process.versions.node} < 20.16`);
  try {
    esbuild = await import('esbuild');
  } catch {
    skip('esbuild is not installed (a devDependency)');
  }
} catch (e) {
  for (const [t, blob] of jobs) note(t, blob, e.message);
  process.exit(0);
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
const pluginFor = (cold) => ({
  name: 'hpcc-snapshot',
  setup(build) {
    const lazyRe = new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`);
    build.onResolve({ filter: lazyRe }, (a) => ({ path: a.path.replace(/^node:/, ''), namespace: 'hpcc-lazy-builtin' }));
    build.onLoad({ filter: /.*/, namespace: 'hpcc-lazy-builtin' }, async (a) => ({ contents: await lazyBuiltin(a.path), loader: 'js' }));
    build.onResolve({ filter: /^\.\.?\// }, (a) => {
      const abs = path.resolve(a.resolveDir, a.path);
      return cold.includes(abs) ? { path: COLD_MARK + pathToFileURL(abs).href, external: true } : undefined;
    });
    // import.meta.url: each module's own (unbundled) file, so relative paths resolve as unbundled.
    build.onLoad({ filter: /\.js$/ }, (a) => {
      if (!a.path.startsWith(path.join(repo, 'dist') + path.sep)) return undefined;
      const text = fs.readFileSync(a.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      return { contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(a.path).href)), loader: 'js', resolveDir: path.dirname(a.path) };
    });
  },
});

/** The bundle of t's entry, its import()s rewritten for a snapshot. */
async function bundle(t) {
  const entry = path.join(cliDir, t.entry);
  if (!fs.existsSync(entry)) skip(`${path.relative(repo, entry)} is missing: run tsc first`);
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
      plugins: [pluginFor(t.cold)],
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
  // vm-based importModule of snapshot.ts, npm packages left outside through __hpcc_require.
  const coldRe = new RegExp(`\\bimport\\((["'])${COLD_MARK}([^"']+)\\1\\)`, 'g');
  body = body.replace(coldRe, (_m, q, url) => `__hpcc_import(${q}${url}${q})`);
  body = body.replace(/\bimport\((["'])(undici[^"']*)\1\)/g, (_m, q, spec) => `Promise.resolve().then(() => __hpcc_require(${q}${spec}${q}))`);
  // Not counted: snapshot.ts's vm import, and codecs/pool.ts's worker bootstrap (code in a template string).
  if (/\bimport\(/.test(body.replace(/\(s\) => import\(s\)|`import\(\$\{/g, ''))) skip('the bundle still holds an import() outside the cold modules');
  return body;
}

const env = { ...process.env };
delete env.NODE_OPTIONS; // the blob must match the flags it runs under: none but nodeFlags
delete env.HPCC_NO_BUNDLE; // undici's parts come from its bundle (agent.ts), not its files
delete env.HPCC_MEMO_OUT; // the smoke runs write no launch memo
let facts;
/** node:http's maxHeaderSize and node:http2's constants as a node with those flags sees them. */
function httpFacts() {
  if (facts) return facts;
  const r = spawnSync(process.execPath, [...nodeFlags, '-p', 'JSON.stringify([require("node:http").maxHeaderSize, require("node:http2").constants])'], { env, encoding: 'utf8' });
  if (r.status !== 0) skip(`node ${nodeFlags.join(' ')} -p failed: ${r.stderr.trim().split('\n')[0]}`);
  return (facts = JSON.parse(r.stdout));
}

/**
 * The snapshot's entry script. The bundle is compiled through vm.Script with lazy
 * compilation off, so the snapshot holds every function's bytecode (a snapshot carries no
 * code cache: a function left uncompiled would be compiled from source on every run).
 * Then the entry's prepareSnapshot() runs, and the main function is set once it has
 * settled. For pull with `withUndici`, prepareSnapshot() loads undici's parts
 * (oci/registry/agent.ts, from the build's undici bundle) into the heap, while node:http and
 * node:http2 — which cannot be loaded at snapshot time — are stand-ins for undici's
 * load-time reads: http.maxHeaderSize (read from a node with the same flags; the front
 * passes no --max-http-header-size, and NODE_OPTIONS makes the snapshot hand over),
 * util.js's IncomingMessage (only compared against node:http response objects, which hpcc
 * never hands to undici) and http2.constants (values copied); any other property loads the
 * real module on first use. No user-land CommonJS module may be loaded at snapshot time
 * (Node then fails on start), so the entry throws if one was; nor may the modules read the
 * environment while they load (the build's values would be baked in), so process.env is
 * watched meanwhile and the entry throws on a read (the snapshot is then not made).
 */
function entryScript(t, body, stamp, withUndici) {
  const [maxHeaderSize, http2Constants] = withUndici ? httpFacts() : [0, {}];
  const prepare = t.undici ? withUndici : true;
  return `"use strict";
// Generated by scripts/build-snapshot.mjs: the snapshot entry of ${t.what}.
(function (builderRequire) {
  // Built-ins at build time; npm packages (undici's fallback, ini) only at run time.
  const require = (id) => {
    const b = process.getBuiltinModule(id);
    if (b !== undefined) return b;
    return process.getBuiltinModule('node:module').createRequire(${JSON.stringify(path.join(cliDir, t.entry))})(id);
  };
  const module = { exports: {} };
  const __hpcc_import = (spec) => module.exports.importModule(spec);
  const v8 = builderRequire('node:v8');
  const Module = builderRequire('node:module');
  v8.setFlagsFromString('--no-lazy');
  const fn = new (builderRequire('node:vm').Script)(${JSON.stringify(`(function (require, __hpcc_require, __hpcc_import, module, exports) {\n${body}\n})`)}, { filename: ${JSON.stringify(path.join(cliDir, t.entry.replace(/\.js$/, '.bundle.js')))} }).runInThisContext();
  v8.setFlagsFromString('--lazy');
  // What reads the environment while the modules load would bake the build's values into the
  // blob, but for these: HPCC_NO_BUNDLE (agent.ts: undici from its bundle; removed for the
  // build) and WATCH_REPORT_DEPENDENCIES (Node's CommonJS loader, for --watch, on each load).
  const readAtBuild = new Set(['HPCC_NO_BUNDLE', 'WATCH_REPORT_DEPENDENCIES']);
  const env = process.env;
  const envReads = new Set();
  process.env = new Proxy(env, {
    get: (t, k) => (typeof k === 'string' && !readAtBuild.has(k) && envReads.add(k), Reflect.get(t, k)),
    has: (t, k) => (!readAtBuild.has(String(k)) && envReads.add(String(k)), Reflect.has(t, k)),
    ownKeys: (t) => (envReads.add('(all names)'), Reflect.ownKeys(t)),
  });
  fn(require, require, __hpcc_import, module, module.exports);
  let prepared;
  if (${prepare}) {
    const lazy = (name, baked) => { let m; const get = () => (m ??= process.getBuiltinModule(name)); return new Proxy(baked, { get: (t, k) => (k in t ? t[k] : get()[k]) }); };
    const standIns = ${withUndici} ? {
      'node:http': lazy('node:http', { maxHeaderSize: ${maxHeaderSize}, IncomingMessage: class IncomingMessage {} }),
      'node:http2': lazy('node:http2', { constants: ${JSON.stringify(http2Constants)} }),
    } : {};
    const load = Module._load;
    Module._load = function (request, ...rest) {
      const s = standIns[request.startsWith('node:') ? request : 'node:' + request];
      return s !== undefined ? s : load.call(this, request, ...rest);
    };
    v8.setFlagsFromString('--no-lazy');
    try {
      prepared = module.exports.prepareSnapshot();
    } finally {
      Module._load = load;
      v8.setFlagsFromString('--lazy');
    }
  }
  Promise.resolve(prepared).finally(() => (process.env = env)).then(() => {
    if (envReads.size > 0) throw new Error('the environment was read at snapshot time: ' + [...envReads].join(', '));
    if (Object.keys(Module._cache).length > 0) throw new Error('user-land modules were loaded at snapshot time: ' + Object.keys(Module._cache).join(', '));
    v8.startupSnapshot.setDeserializeMainFunction(() => module.exports.snapshotMain(${JSON.stringify(stamp)}));
  });
})(require);
`;
}

/** Build t's blob at tmp and smoke-run it; the reason it failed, or null. */
function attempt(t, body, stamp, tmp, work, withUndici) {
  fs.rmSync(tmp, { force: true });
  const entryFile = path.join(work, `${t.entry.replace(/\.js$/, '')}.entry.cjs`);
  fs.writeFileSync(entryFile, entryScript(t, body, stamp, withUndici));
  const built = spawnSync(process.execPath, [...nodeFlags, '--snapshot-blob', tmp, '--build-snapshot', entryFile], { env, encoding: 'utf8', cwd: work });
  if (built.status !== 0 || !fs.existsSync(tmp)) {
    const lines = (built.stderr || '').split('\n').filter((l) => l.trim() !== '' && !/^\s+at |Warning: It's not yet fully verified|It may still work|To request support|--trace-warnings/.test(l));
    return `node --build-snapshot failed (exit ${built.status ?? built.signal}): ${lines.slice(-3).join(' / ')}`;
  }
  for (const s of t.smoke(work)) {
    const r = spawnSync(process.execPath, [...nodeFlags, '--snapshot-blob', tmp, ...s.argv], {
      env: { ...env, HOME: work, HPCC_CACHEDIR: path.join(work, 'cache') },
      encoding: 'utf8',
      cwd: work,
    });
    if (!s.ok(r)) return `its smoke run ${s.argv[0]} failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim().split('\n').slice(0, 3).join(' / ')}`;
  }
  return null;
}

/** Build the blob of target t at blob (and its .info), or throw Skip. */
async function build(t, blob) {
  const body = await bundle(t);
  const stamp = { cliDir, entryMtimeMs: fs.statSync(path.join(cliDir, t.lean)).mtimeMs };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hpcc-snapshot-'));
  const tmp = `${blob}.${process.pid}.tmp`;
  try {
    let why = t.undici && !noUndici ? attempt(t, body, stamp, tmp, work, true) : 'not tried';
    if (why !== null) {
      if (t.undici && !noUndici) process.stderr.write(`build-snapshot: undici stays outside the snapshot (${why})\n`);
      why = attempt(t, body, stamp, tmp, work, false);
      if (why !== null) skip(why);
    }
    fs.renameSync(tmp, blob);
    // The node the blob is for, for the front: "REALPATH\tSIZE\tMTIME_SECONDS\tVERSION\n".
    const exe = fs.realpathSync(process.execPath);
    const st = fs.statSync(exe);
    fs.writeFileSync(`${infoFile(blob)}.tmp`, `${exe}\t${st.size}\t${Math.floor(st.mtimeMs / 1000)}\t${process.version}\n`);
    fs.renameSync(`${infoFile(blob)}.tmp`, infoFile(blob));
    if (process.env.HPCC_BUNDLE_VERBOSE) process.stderr.write(`build-snapshot: ${fs.statSync(blob).size} bytes -> ${path.relative(repo, blob)}\n`);
  } finally {
    fs.rmSync(tmp, { force: true });
    fs.rmSync(`${infoFile(blob)}.tmp`, { force: true });
    fs.rmSync(work, { recursive: true, force: true });
  }
}

for (const [t, blob] of jobs) {
  try {
    await build(t, blob);
  } catch (e) {
    note(t, blob, e instanceof Skip ? e.message : `unexpected: ${e instanceof Error ? e.message : String(e)}`);
  }
}
