// The release's JavaScript (scripts/release.mjs, docs/release.md "Layout"): all of hpcc's
// JavaScript and its npm dependencies bundled by esbuild into LIB/bin/run.js (bin/run.js's
// own logic, every oclif command, the lean paths, @oclif/core, undici, ini, the codec
// libraries' JavaScript), plus the two files Node starts as their own entry points (the codec
// worker thread, the build's namespace worker), each bundled at its dist/src path. What
// cannot be JavaScript lies next to them as files, loaded by path from LIB/dist/native:
// node (Node 24), the launch helper and front, xattr.node, deflate.node, lzma-native.node,
// lz4-napi.node and zstd.wasm.
//
// How the bundle stands in for the file tree it replaces:
//  - commands: oclif's "explicit" strategy (the release's package.json): oclif imports
//    LIB/dist/commands.js, which hands over the command classes the bundle registered
//    (COMMANDS, generated here from dist/src/commands; checked against oclif.manifest.json);
//  - lean paths: bin/run.js's import of the lean module by URL becomes a static import;
//  - import.meta.url in each first-party module is the URL its module would have in
//    LIB/dist/src, so paths relative to it (addons, helpers, install root) resolve as unbundled;
//  - createRequire(...) in first-party code returns a require that serves the npm packages
//    hpcc loads by name at run time (ini, undici's parts, the codec libraries) from the bundle;
//  - the three packages that load binary files through __dirname get LIB/dist/native instead.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

/** Files that do not exist in the release but whose paths the bundle's modules are given. */
const BUNDLED = '/hpcc-bundled/';

/**
 * Bundle into lib (the release's lib/hpcc). repo: the built checkout. Returns the list of
 * binary files (source, name in LIB/dist/native) the bundle loads by path.
 */
export async function bundleRelease(repo, lib, die) {
  const esbuild = await import('esbuild').catch(() => die('esbuild (a devDependency) is needed to make a release: run `npm ci`'));
  const req = createRequire(path.join(repo, 'package.json'));
  const distSrc = path.join(repo, 'dist', 'src');
  const NATIVE = {
    'lzma-native.node': path.join(path.dirname(req.resolve('lzma-native')), 'prebuilds', 'linux-x64', 'node.napi.node'),
    'lz4-napi.node': req.resolve('@antoniomuso/lz4-napi-linux-x64-gnu'),
    'zstd.wasm': path.join(path.dirname(req.resolve('@bokuweb/zstd-wasm')), 'zstd.wasm'),
  };
  // The packages first-party code require()s by name at run time, and the file zstdwasm.ts
  // takes from the package's directory (resolveCodecFile, requireFile).
  const zstdMain = req.resolve('@bokuweb/zstd-wasm');
  const BY_NAME = {
    ini: req.resolve('ini'),
    'lzma-native': req.resolve('lzma-native'),
    'lz4-napi': req.resolve('lz4-napi'),
    '@bokuweb/zstd-wasm': zstdMain,
    [`${BUNDLED}zstd-wasm/module.js`]: path.join(path.dirname(zstdMain), 'module.js'),
    ...Object.fromEntries(
      ['lib/dispatcher/agent.js', 'lib/dispatcher/dispatcher.js', 'lib/api/index.js', 'lib/dispatcher/env-http-proxy-agent.js'].map((f) => [
        `undici/${f}`,
        path.join(path.dirname(req.resolve('undici')), f),
      ]),
    ),
    undici: req.resolve('undici'),
  };
  const RESOLVED = { '@bokuweb/zstd-wasm': `${BUNDLED}zstd-wasm/index.node.js` };

  // COMMANDS: every compiled command module, by oclif's id (its path below dist/src/commands, ':'-joined).
  const cmdDir = path.join(distSrc, 'commands');
  const ids = [];
  (function walk(dir, prefix) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.isDirectory()) walk(path.join(dir, e.name), [...prefix, e.name]);
      else if (e.name.endsWith('.js')) ids.push([[...prefix, e.name.slice(0, -3)].join(':'), path.join(dir, e.name)]);
    }
  })(cmdDir, []);
  const manifest = JSON.parse(fs.readFileSync(path.join(repo, 'oclif.manifest.json'), 'utf8'));
  const want = Object.keys(manifest.commands).sort().join(' ');
  const have = ids.map(([id]) => id).sort().join(' ');
  if (want !== have) die(`the commands in dist/src/commands (${have}) are not oclif.manifest.json's (${want}): run \`npm run build\``);
  const commandsModule =
    ids.map(([, f], i) => `import C${i} from ${JSON.stringify(f)};`).join('\n') +
    `\nexport const COMMANDS = {${ids.map(([id], i) => `${JSON.stringify(id)}: C${i}`).join(', ')}};\n`;

  const runJs = path.join(repo, 'bin', 'run.js');
  /** bin/run.js's text with the lean import and the oclif start made static; fails when they moved. */
  function entryText() {
    let t = fs.readFileSync(runJs, 'utf8');
    const swap = (from, to) => {
      if (!t.includes(from)) die(`bin/run.js no longer has \`${from}\` (scripts/release-bundle.mjs replaces it)`);
      t = t.replace(from, to);
    };
    swap(
      'await import(new URL(bundleIsCurrent(cli, name) ? `${name}.bundle.js` : `${name}.js`, cli).href)',
      "await (name === 'fast-launch' ? import('../dist/src/cli/fast-launch.js') : import('../dist/src/cli/fast-pull.js'))",
    );
    swap(
      'await execute({ dir: import.meta.url });',
      "globalThis[Symbol.for('hpcc.commands')] = (await import('hpcc-release:commands')).COMMANDS;\nawait execute({ dir: import.meta.url });",
    );
    return t;
  }

  /** One bundle: entry (a file of the checkout) -> out (a path below lib). */
  async function bundle(entry, out) {
    const outDir = path.dirname(out);
    // the URL a module of the checkout's dist/src (or bin) has in the release, from the bundle's
    const urlOf = (abs) => {
      const rel = path.relative(outDir, path.join(lib, path.relative(repo, abs))).split(path.sep).join('/');
      return `new URL(${JSON.stringify(rel.startsWith('.') ? rel : `./${rel}`)}, import.meta.url).href`;
    };
    const nativeDir = `(${JSON.stringify(path.relative(outDir, path.join(lib, 'dist', 'native')).split(path.sep).join('/') + '/')})`;
    const plugin = {
      name: 'hpcc-release',
      setup(build) {
        build.onResolve({ filter: /^hpcc-release:/ }, (a) => ({ path: a.path.slice('hpcc-release:'.length), namespace: 'hpcc-release' }));
        build.onResolve({ filter: /^node:module$/ }, (a) =>
          a.importer.startsWith(distSrc) ? { path: 'module', namespace: 'hpcc-release' } : undefined,
        );
        build.onLoad({ filter: /.*/, namespace: 'hpcc-release' }, (a) => {
          if (a.path === 'commands') return { contents: commandsModule, loader: 'js', resolveDir: repo };
          // node:module for first-party code: createRequire serves BY_NAME from the bundle
          const table = Object.entries(BY_NAME).map(([k, f]) => `${JSON.stringify(k)}: () => require(${JSON.stringify(f)})`);
          return {
            loader: 'js',
            resolveDir: repo,
            contents: `const real = process.getBuiltinModule('node:module');
const BY_NAME = {${table.join(',\n')}};
const RESOLVED = ${JSON.stringify(RESOLVED)};
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
          let text = fs.readFileSync(file, 'utf8');
          if (file === runJs) return { contents: entryText(), loader: 'js', resolveDir: path.dirname(file) };
          if (file.startsWith(distSrc)) {
            if (!text.includes('import.meta.url')) return undefined;
            return { contents: text.replaceAll('import.meta.url', urlOf(file)), loader: 'js', resolveDir: path.dirname(file) };
          }
          // the dependencies that find binary files through __dirname
          const native = (from, to) => {
            if (!text.includes(from)) die(`${file} no longer has \`${from}\` (scripts/release-bundle.mjs replaces it)`);
            text = text.replace(from, to);
          };
          const here = '__hpccNative';
          if (file === BY_NAME['lzma-native']) native("require('node-gyp-build')(__dirname)", `require(${here} + 'lzma-native.node')`);
          else if (file === BY_NAME['lz4-napi']) text = `module.exports = require(${here} + 'lz4-napi.node');\n`;
          else if (file === zstdMain) native("resolve(__dirname, './zstd.wasm')", `resolve(${here}, 'zstd.wasm')`);
          else return undefined;
          return { contents: text, loader: 'js', resolveDir: path.dirname(file) };
        });
      },
    };
    const result = await esbuild.build({
      entryPoints: [entry],
      outfile: out,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node24',
      plugins: [plugin],
      // oclif reads a tsconfig with TypeScript when it finds one (development only); as in an
      // npm install, where TypeScript (a devDependency) is absent, that require fails and oclif goes on
      external: ['typescript'],
      // a real require for what the bundle loads from files: the addons, by path
      // and LIB/dist/native, where the dependencies' binary files are
      banner: {
        js:
          "import { createRequire as __hpccCreateRequire } from 'node:module';\nconst require = __hpccCreateRequire(import.meta.url);\n" +
          `const __hpccNative = process.getBuiltinModule('node:url').fileURLToPath(new URL(${nativeDir}, import.meta.url));`,
      },
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: 'none',
      logLevel: 'warning',
    }).catch((e) => die(`esbuild failed for ${path.relative(repo, entry)}: ${e instanceof Error ? e.message : String(e)}`));
    // nothing in the bundle may still import a file by a relative path: the release has no dist/src
    const text = fs.readFileSync(out, 'utf8');
    for (const m of text.matchAll(/\b(?:from|import)\s*\(?\s*(["'])(\.\.?\/[^"']+)\1/g)) die(`the release bundle ${path.relative(lib, out)} still imports ${m[2]}`);
    return result;
  }

  await bundle(runJs, path.join(lib, 'bin', 'run.js'));
  await bundle(path.join(distSrc, 'formats', 'squashfs', 'codecs', 'worker.js'), path.join(lib, 'dist', 'src', 'formats', 'squashfs', 'codecs', 'worker.js'));
  await bundle(path.join(distSrc, 'build', 'def', 'ns-worker.js'), path.join(lib, 'dist', 'src', 'build', 'def', 'ns-worker.js'));
  // oclif's "explicit" command strategy imports this: the classes bin/run.js registered
  fs.writeFileSync(path.join(lib, 'dist', 'commands.js'), "// Generated by scripts/release-bundle.mjs: the command classes bin/run.js (the bundle) registered.\nexport const COMMANDS = globalThis[Symbol.for('hpcc.commands')];\n");
  return Object.entries(NATIVE);
}
