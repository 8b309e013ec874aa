// The release's JavaScript (scripts/release.mjs, docs/release.md "Layout"): all of hpcc's
// JavaScript and its npm dependencies (@oclif/core, undici, ini, the codec libraries'
// JavaScript) bundled by esbuild, no node_modules. What cannot be JavaScript lies in
// LIB/dist/native, loaded by path: node (Node 24), the front, hpcc-launch, xattr.node,
// deflate.node, lzma-native.node, lz4-napi.node, zstd.wasm. The JavaScript, in LIB (then
// scripts/release-sea.mjs makes Node and the first four one single-executable application,
// unless --few-files):
//   bin/run.js      bin/run.js's own logic and the modules it loads before it turns Node's
//                   compile cache on (so that every later file is compiled with the cache)
//   dist/launch.js  the lean launch path (`hpcc exec|run|shell|test`), as the checkout's
//                   fast-launch.bundle.js: a first launch reads this and not the rest
//   dist/hpcc.js    everything else: every oclif command, the pull path, the launch path's
//                   cold modules (scripts/lean-cold.mjs), the dependencies
//   dist/errors.js  the error classes, one copy for the two above (instanceof must agree)
//   dist/src/formats/squashfs/codecs/worker.js, dist/src/build/def/ns-worker.js
//                   the entries Node starts on their own (codec worker thread, build worker)
// How the bundles stand in for the file tree they replace:
//  - commands: oclif's "explicit" strategy (the release's package.json): oclif imports
//    dist/hpcc.js and takes its COMMANDS, the table generated here from dist/src/commands
//    (checked against oclif.manifest.json), set by bin/run.js before it starts oclif;
//  - bin/run.js's later imports (the lean path's by URL among them) become loads from
//    dist/launch.js or dist/hpcc.js; the launch path's cold imports load from dist/hpcc.js;
//  - import.meta.url in each of hpcc's modules is the URL its module would have in
//    LIB/dist/src, so paths relative to it (addons, helpers, the install root) resolve as unbundled;
//  - createRequire(...) in hpcc's modules returns a require that serves the npm packages hpcc
//    loads by name at run time (ini, undici's parts, the codec libraries) from the bundle;
//  - the three packages that load binary files through __dirname get LIB/dist/native instead;
//  - built-ins are taken with process.getBuiltinModule when first required (esbuild hoists an
//    ES import of a built-in to the top of the bundle: each would load at every start).
import * as fs from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import * as path from 'node:path';
import { COLD } from './lean-cold.mjs';

/** A path that does not exist in the release, for the zstd-wasm file zstdwasm.ts asks for. */
const BUNDLED = '/hpcc-bundled/';

/**
 * Bundle into lib (the release's lib/hpcc). repo: the built checkout. Returns the binary
 * files (name in LIB/dist/native, source) the bundles load by path.
 */
export async function bundleRelease(repo, lib, die) {
  const esbuild = await import('esbuild').catch(() => die('esbuild (a devDependency) is needed to make a release: run `npm ci`'));
  const req = createRequire(path.join(repo, 'package.json'));
  const distSrc = path.join(repo, 'dist', 'src');
  const rel = (abs) => path.relative(repo, abs).split(path.sep).join('/');
  const NATIVE = {
    'lzma-native.node': path.join(path.dirname(req.resolve('lzma-native')), 'prebuilds', 'linux-x64', 'node.napi.node'),
    'lz4-napi.node': req.resolve('@antoniomuso/lz4-napi-linux-x64-gnu'),
    'zstd.wasm': path.join(path.dirname(req.resolve('@bokuweb/zstd-wasm')), 'zstd.wasm'),
  };
  // The packages hpcc's modules require() by name at run time, and the file zstdwasm.ts takes
  // from the package's directory (resolveCodecFile, requireFile).
  const zstdMain = req.resolve('@bokuweb/zstd-wasm');
  const undiciLib = (f) => [`undici/lib/${f}`, path.join(path.dirname(req.resolve('undici')), 'lib', f)];
  const BY_NAME = {
    ini: req.resolve('ini'),
    'lzma-native': req.resolve('lzma-native'),
    'lz4-napi': req.resolve('lz4-napi'),
    '@bokuweb/zstd-wasm': zstdMain,
    [`${BUNDLED}zstd-wasm/module.js`]: path.join(path.dirname(zstdMain), 'module.js'),
    ...Object.fromEntries(['dispatcher/agent.js', 'dispatcher/dispatcher.js', 'api/index.js', 'dispatcher/env-http-proxy-agent.js'].map(undiciLib)),
    undici: req.resolve('undici'),
  };
  const RESOLVED = { '@bokuweb/zstd-wasm': `${BUNDLED}zstd-wasm/index.node.js` };
  const ERRORS = path.join(distSrc, 'errors', 'index.js');
  const LAUNCH_COLD = COLD['fast-launch'].map((p) => path.join(distSrc, p));

  // COMMANDS: every compiled command module, by oclif's id (its path below dist/src/commands, ':'-joined).
  const ids = [];
  (function walk(dir, prefix) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.isDirectory()) walk(path.join(dir, e.name), [...prefix, e.name]);
      else if (e.name.endsWith('.js')) ids.push([[...prefix, e.name.slice(0, -3)].join(':'), path.join(dir, e.name)]);
    }
  })(path.join(distSrc, 'commands'), []);
  const manifest = JSON.parse(fs.readFileSync(path.join(repo, 'oclif.manifest.json'), 'utf8'));
  const want = Object.keys(manifest.commands).sort().join(' ');
  const have = ids.map(([id]) => id).sort().join(' ');
  if (want !== have) die(`the commands in dist/src/commands (${have}) are not oclif.manifest.json's (${want}): run \`npm run build\``);
  const commandsModule =
    ids.map(([, f], i) => `import C${i} from ${JSON.stringify(f)};`).join('\n') +
    `\nexport const COMMANDS = {${ids.map(([id], i) => `${JSON.stringify(id)}: C${i}`).join(', ')}};\n`;

  // bin/run.js: its later imports become loads from dist/launch.js (the lean launch path) or
  // dist/hpcc.js (anything else), keyed by module path (repo-relative) or package name
  const runJs = path.join(repo, 'bin', 'run.js');
  const IN_RUN_JS = ['../dist/src/util/cache-path.js', '../dist/src/cli/launch-options.js'];
  const LEAN_IMPORT = 'await import(new URL(bundleIsCurrent(cli, name) ? `${name}.bundle.js` : `${name}.js`, cli).href)';
  const hpccKeys = new Set(LAUNCH_COLD.map(rel));
  function entryText() {
    let t = fs.readFileSync(runJs, 'utf8');
    if (!t.includes(LEAN_IMPORT)) die(`bin/run.js no longer has \`${LEAN_IMPORT}\` (scripts/release-bundle.mjs replaces it)`);
    t = t.replace(LEAN_IMPORT, "await (name === 'fast-launch' ? import('../dist/launch.js') : import('../dist/src/cli/fast-pull.js'))");
    for (const spec of IN_RUN_JS) if (!t.includes(`import('${spec}')`)) die(`bin/run.js no longer imports ${spec} (scripts/release-bundle.mjs keeps it in bin/run.js)`);
    t = t.replace(/\bimport\((["'])([^"']+)\1\)/g, (m, q, spec) => {
      if (spec.startsWith('node:') || IN_RUN_JS.includes(spec) || spec === '../dist/launch.js') return m;
      const key = spec.startsWith('.') ? rel(path.resolve(path.dirname(runJs), spec)) : spec;
      hpccKeys.add(key);
      return `import('../dist/hpcc.js').then((m) => m.load[${JSON.stringify(key)}]())`;
    });
    if (!t.includes('await execute({ dir: import.meta.url });')) die('bin/run.js no longer starts oclif with `await execute({ dir: import.meta.url });`');
    return t.replace('await execute({ dir: import.meta.url });', "await (await import('../dist/hpcc.js')).loadCommands();\nawait execute({ dir: import.meta.url });");
  }
  const mainModule = () =>
    `export const load = {\n${[...hpccKeys].map((k) => `  ${JSON.stringify(k)}: () => import(${JSON.stringify(k.startsWith('dist/') ? path.join(repo, k) : k)}),`).join('\n')}\n};\n` +
    "/** oclif's command table (package.json: the explicit strategy), set before oclif starts. */\nexport let COMMANDS;\n" +
    "export async function loadCommands() {\n  COMMANDS = (await import('hpcc-release:commands')).COMMANDS;\n}\n";

  /** One bundle: entry -> out (a path below lib); lean: the launch bundle (cold modules from dist/hpcc.js, only ini by name). */
  async function bundle(entry, out, { sharedErrors = true, lean = false } = {}) {
    const outDir = path.dirname(out);
    const fromOut = (abs) => {
      const r = path.relative(outDir, abs).split(path.sep).join('/');
      return r.startsWith('.') ? r : `./${r}`;
    };
    // the URL a module of the checkout's dist/src has in the release, from the bundle's
    const urlOf = (abs) => `new URL(${JSON.stringify(fromOut(path.join(lib, rel(abs))))}, import.meta.url).href`;
    const hpccJs = fromOut(path.join(lib, 'dist', 'hpcc.js'));
    const errorsJs = fromOut(path.join(lib, 'dist', 'errors.js'));
    const byName = lean ? { ini: BY_NAME.ini } : BY_NAME;
    const plugin = {
      name: 'hpcc-release',
      setup(build) {
        build.onResolve({ filter: /^hpcc-release:/ }, (a) => ({ path: a.path.slice('hpcc-release:'.length), namespace: 'hpcc-release' }));
        // oclif requires TypeScript to read a tsconfig (NODE_ENV=development only): absent, as in an npm
        // install, where it is a devDependency; a module that throws, so that no require('typescript')
        // searches node_modules directories above the install or in $HOME (nor bundles its 6.5 MB)
        build.onResolve({ filter: /^typescript$/ }, () => ({ path: 'typescript', namespace: 'hpcc-release' }));
        build.onResolve({ filter: /^\.\.?\// }, (a) => {
          if (a.path === hpccJs || a.path === '../dist/hpcc.js' || a.path === '../dist/launch.js') return { path: a.path, external: true };
          const abs = path.resolve(a.resolveDir, a.path);
          return sharedErrors && abs === ERRORS ? { path: errorsJs, external: true } : undefined;
        });
        build.onResolve({ filter: /^node:module$/ }, (a) => (a.importer.startsWith(distSrc) ? { path: 'module', namespace: 'hpcc-release' } : undefined));
        build.onResolve({ filter: /^[a-z_]/ }, (a) => {
          const name = a.path.startsWith('node:') ? a.path.slice(5) : a.path;
          if (!a.path.startsWith('node:') && !builtinModules.includes(name)) return undefined;
          return { path: `node:${name}`, namespace: 'hpcc-builtin', sideEffects: false };
        });
        build.onLoad({ filter: /.*/, namespace: 'hpcc-builtin' }, (a) => ({
          contents: `module.exports = process.getBuiltinModule(${JSON.stringify(a.path)});`,
          loader: 'js',
        }));
        build.onLoad({ filter: /.*/, namespace: 'hpcc-release' }, (a) => {
          if (a.path === 'commands') return { contents: commandsModule, loader: 'js', resolveDir: repo };
          if (a.path === 'main') return { contents: mainModule(), loader: 'js', resolveDir: repo };
          if (a.path === 'typescript') return { contents: "throw new Error('TypeScript is not part of an hpcc release');\n", loader: 'js' };
          // node:module for hpcc's modules: createRequire serves byName from the bundle
          const table = Object.entries(byName).map(([k, f]) => `${JSON.stringify(k)}: () => require(${JSON.stringify(f)})`);
          return {
            loader: 'js',
            resolveDir: repo,
            contents: `const real = process.getBuiltinModule('node:module');
const BY_NAME = {${table.join(',\n')}};
const RESOLVED = ${JSON.stringify(lean ? {} : RESOLVED)};
export function createRequire(url) {
  const r = real.createRequire(url);
  const q = (id) => (Object.hasOwn(BY_NAME, id) ? BY_NAME[id]() : r(id));
  q.resolve = (id, o) => (Object.hasOwn(RESOLVED, id) ? RESOLVED[id] : r.resolve(id, o));
  return q;
}
export default { ...real, createRequire };
`,
          };
        });
        build.onLoad({ filter: /\.js$/ }, (a) => {
          const file = a.path;
          const read = fs.readFileSync(file, 'utf8');
          // one character outside ASCII (a regular expression of ansis, oclif's colours) makes
          // Node decode a whole bundle as UTF-16 (~12 ms more per start): as \u escapes, which
          // mean the same in strings, regular expressions, identifiers and comments
          let text = read.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
          const done = () => (text === read ? undefined : { contents: text, loader: 'js', resolveDir: path.dirname(file) });
          if (file === runJs) return { contents: entryText(), loader: 'js', resolveDir: path.dirname(file) };
          if (file.startsWith(distSrc)) {
            text = text.replaceAll('import.meta.url', urlOf(file));
            if (lean) {
              text = text.replace(/\bimport\((["'])(\.\.?\/[^"']+)\1\)/g, (m, q, spec) => {
                const abs = path.resolve(path.dirname(file), spec);
                return LAUNCH_COLD.includes(abs) ? `import(${JSON.stringify(hpccJs)}).then((m) => m.load[${JSON.stringify(rel(abs))}]())` : m;
              });
            }
            return done();
          }
          // the dependencies that find binary files through __dirname
          const native = (from, to) => {
            if (!text.includes(from)) die(`${file} no longer has \`${from}\` (scripts/release-bundle.mjs replaces it)`);
            text = text.replace(from, to);
          };
          if (file === BY_NAME['lzma-native']) native("require('node-gyp-build')(__dirname)", "require(__hpccNative + 'lzma-native.node')");
          else if (file === BY_NAME['lz4-napi']) text = "module.exports = require(__hpccNative + 'lz4-napi.node');\n";
          else if (file === zstdMain) native("resolve(__dirname, './zstd.wasm')", "resolve(__hpccNative, 'zstd.wasm')");
          return done();
        });
      },
    };
    const nativeDir = JSON.stringify(`${fromOut(path.join(lib, 'dist', 'native'))}/`);
    await esbuild
      .build({
        entryPoints: [entry],
        outfile: out,
        bundle: true,
        format: 'esm',
        platform: 'node',
        target: 'node24',
        plugins: [plugin],
        // a real require for what the bundle loads from files (the addons, by path), and
        // LIB/dist/native, where the dependencies' binary files are
        banner: {
          js:
            "import { createRequire as __hpccCreateRequire } from 'node:module';\nconst require = __hpccCreateRequire(import.meta.url);\n" +
            `const __hpccNative = process.getBuiltinModule('node:url').fileURLToPath(new URL(${nativeDir}, import.meta.url));`,
        },
        minifyWhitespace: true,
        minifySyntax: true,
        legalComments: 'none',
        logLevel: 'warning',
      })
      .catch((e) => die(`esbuild failed for ${entry}: ${e instanceof Error ? e.message : String(e)}`));
    // nothing may still import a file by a relative path but the release's own bundles
    const text = fs.readFileSync(out, 'utf8');
    if (/[^\x00-\x7f]/.test(text)) die(`the release bundle ${path.relative(lib, out)} is not ASCII`);
    const ours = new Set([hpccJs, errorsJs, '../dist/hpcc.js', '../dist/launch.js']);
    for (const m of text.matchAll(/\b(?:from|import)\s*\(?\s*(["'])(\.\.?\/[^"']+)\1/g)) {
      if (!ours.has(m[2])) die(`the release bundle ${path.relative(lib, out)} still imports ${m[2]}`);
    }
  }

  const at = (...p) => path.join(lib, ...p);
  await bundle(runJs, at('bin', 'run.js'));
  await bundle(path.join(distSrc, 'cli', 'fast-launch.js'), at('dist', 'launch.js'), { lean: true });
  await bundle('hpcc-release:main', at('dist', 'hpcc.js')); // after bin/run.js: it lists what bin/run.js loads
  await bundle(ERRORS, at('dist', 'errors.js'), { sharedErrors: false });
  await bundle(path.join(distSrc, 'formats', 'squashfs', 'codecs', 'worker.js'), at('dist', 'src', 'formats', 'squashfs', 'codecs', 'worker.js'), { sharedErrors: false });
  await bundle(path.join(distSrc, 'build', 'def', 'ns-worker.js'), at('dist', 'src', 'build', 'def', 'ns-worker.js'), { sharedErrors: false });
  return Object.entries(NATIVE);
}
