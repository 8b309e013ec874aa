#!/usr/bin/env node
// Pull from a local registry: hpcc vs skopeo, same image, same machine, interleaved.
//   skopeo        skopeo copy docker://127.0.0.1:PORT/bench/TAG oci:FRESH_DIR:img
//                 (download, digest check, write blobs; layers copied as they are, no recompression)
//   hpcc fetch    RegistrySource.fetchAll() into a fresh HPCC_CACHEDIR: resolve the manifest, then
//                 download + sha256/size check while streaming + fsync + rename, as `hpcc pull` does
//                 before converting (a fresh node process, so start-up and imports count); with
//                 `prefetch: () => true` as `hpcc pull` on a SIF cache miss (the layers start while
//                 the config is fetched; a build without the option ignores it)
//   hpcc fetch (before)  the same with another build's dist/ (BEFORE_DIST=/path/to/dist), to
//                 compare a change against its baseline in the same run
//   hpcc pull     node bin/run.js pull --quiet --insecure OUT.sif REF (fresh cache: download + convert
//                 to a gzip SIF); PULL=0 skips it
//   hpcc pull (before)  the same with the bin/run.js next to BEFORE_DIST (BEFORE_DIST/../bin/run.js)
//   hpcc pull start (404), NODE_EXTRA_CA_CERTS  when that variable is set in the bench's
//                 environment: every other hpcc row runs with it unset (it costs ~50 ms of Node
//                 start-up reading the file; a cluster user's environment rarely sets it)
//   hpcc pull start (404)  image "one" only, also with PULL=0: `hpcc pull` of a tag the registry does not have
//                 (start-up, modules, undici, /v2/ ping, manifest 404, error): the command's fixed
//                 cost without the download and conversion; with "(before)" as above
// Every hpcc row runs with Node's compile cache in one directory kept for the whole run
// (NODE_COMPILE_CACHE), as a user's cache keeps it from one command to the next (bin/run.js).
// Images: "one" — one layer, the tree of /usr/lib/python3* (umoci insert); "four" — the same
// files in four layers (each python directory's entries dealt round-robin); "py" — the Debian
// bookworm + python3 image of bench/convert.sh (bench/lib/make-oci-archives.sh, one layer,
// ~47 MiB gzip; needs root, PY=0 skips it). Pushed with skopeo
// to Debian's docker-registry on 127.0.0.1 (storage in a temp dir). Parallel downloads: skopeo
// copies up to 6 blobs at once by default (containers/image), so hpcc runs with
// HPCC_PULL_CONCURRENCY=6 too (override with the variable). Each command runs as a fresh
// process; the median of ROUNDS (default 7) rounds, order shuffled per round.
// Target (issue 4): pull ≤ 1.0× skopeo, checked for hpcc fetch (the same bytes and checks as
// skopeo copy) and for the whole hpcc pull command (which also converts to a SIF).
//
//   npm run build && node bench/pull.mjs        (BEFORE_DIST=/other/checkout/dist for before/after)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { startRegistry, skopeoPush } = await import(path.join(root, 'dist/test/helpers/registry.js'));
const rounds = Number(process.env.ROUNDS ?? 7);
const before = process.env.BEFORE_DIST ? path.resolve(process.env.BEFORE_DIST) : null;
const beforeBin = before && existsSync(path.join(before, '..', 'bin', 'run.js')) ? path.join(before, '..', 'bin', 'run.js') : null;
const extraCa = process.env.NODE_EXTRA_CA_CERTS;
const concurrency = Number(process.env.HPCC_PULL_CONCURRENCY ?? 6);
/** Layer digests (hex) and their total size for a tag of an OCI layout (a directory, or its tar). */
function imageFacts(layout, tag) {
  const read = (p) => (layout.endsWith('.tar') ? execFileSync('tar', ['-xOf', layout, `./${p}`], { maxBuffer: 1 << 26 }).toString('utf8') : readFileSync(path.join(layout, p), 'utf8'));
  const blob = (d) => JSON.parse(read(`blobs/sha256/${d.slice(7)}`));
  const idx = JSON.parse(read('index.json'));
  const m = blob(idx.manifests.find((x) => x.annotations?.['org.opencontainers.image.ref.name'] === tag).digest);
  return { layers: m.layers.map((l) => l.digest.slice(7)), bytes: m.layers.reduce((a, l) => a + l.size, 0) };
}
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const work = mkdtempSync(path.join(tmpdir(), 'hpcc-bench-pull-'));
const reg = await startRegistry('none');
// Interrupted (Ctrl-C, kill): stop the registry and remove the work directory as the finally below does.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    void reg.stop().finally(() => {
      rmSync(work, { recursive: true, force: true });
      process.exit(130);
    });
  });
}
try {
  const pyDirs = ['python3', 'python3.11', 'python3.12', 'python3.13'].filter((d) => existsSync(`/usr/lib/${d}`));
  const layout = path.join(work, 'layout');
  execFileSync('umoci', ['init', '--layout', layout]);
  // One layer: the whole tree.
  const tree = path.join(work, 'tree');
  mkdirSync(path.join(tree, 'usr', 'lib'), { recursive: true });
  for (const d of pyDirs) execFileSync('cp', ['-a', `/usr/lib/${d}`, path.join(tree, 'usr', 'lib', d)]);
  execFileSync('umoci', ['new', '--image', `${layout}:one`]);
  execFileSync('umoci', ['insert', '--image', `${layout}:one`, tree, '/']);
  // Four layers: the same files, the entries of each python directory dealt round-robin.
  execFileSync('umoci', ['new', '--image', `${layout}:four`]);
  const parts = [0, 1, 2, 3].map((k) => path.join(work, `part-${k}`));
  let i = 0;
  for (const d of pyDirs) {
    for (const e of readdirSync(`/usr/lib/${d}`).sort()) {
      const dst = path.join(parts[i++ % 4], 'usr', 'lib', d);
      mkdirSync(dst, { recursive: true });
      execFileSync('cp', ['-a', `/usr/lib/${d}/${e}`, dst]);
    }
  }
  for (const p of parts) if (existsSync(p)) execFileSync('umoci', ['insert', '--image', `${layout}:four`, p, '/']);
  const images = {};
  const sources = { one: [`oci:${layout}:one`, layout, 'one'], four: [`oci:${layout}:four`, layout, 'four'] };
  if (process.env.PY !== '0') {
    // The Debian bookworm + python3 image of bench/convert.sh (built once, cached).
    const dir = execFileSync('bash', [path.join(root, 'bench/lib/make-oci-archives.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop();
    const archive = path.join(dir, 'bookworm-py-1.oci.tar');
    sources.py = [`oci-archive:${archive}:bench`, archive, 'bench'];
  }
  for (const [tag, [src, where, name]] of Object.entries(sources)) {
    await skopeoPush(reg, src, `bench/${tag}:latest`);
    images[tag] = { ref: `docker://${reg.host}/bench/${tag}:latest`, ...imageFacts(where, name) };
    console.log(`image ${tag}: ${images[tag].layers.length} layers, ${(images[tag].bytes / 1048576).toFixed(1)} MiB of layers`);
  }
  console.log(`registry ${reg.host}; ${rounds} rounds; HPCC_PULL_CONCURRENCY=${concurrency} (skopeo's default of parallel blob copies); NODE_EXTRA_CA_CERTS unset for hpcc${extraCa ? ' (but one row)' : ''}; load average ${load()}`);

  const fetchScript = (dist) => `
    const { RegistrySource } = await import(${JSON.stringify(path.join(dist, 'src/oci/registry-source.js'))});
    const { BlobCache } = await import(${JSON.stringify(path.join(dist, 'src/oci/cache/store.js'))});
    const { parseReference } = await import(${JSON.stringify(path.join(dist, 'src/oci/reference.js'))});
    const { closeDefaultAgent } = await import(${JSON.stringify(path.join(dist, 'src/oci/registry/client.js'))});
    const img = await new RegistrySource(parseReference(process.argv[1]), { insecure: true, cache: new BlobCache(process.argv[2]), prefetch: () => true }).resolve({});
    await img.fetchAll(); await img.close(); await closeDefaultAgent();`;
  let n = 0;
  const fresh = () => path.join(work, `run-${++n}`);
  const compileCache = path.join(work, 'compile-cache');
  mkdirSync(compileCache, { mode: 0o700 });
  const hpccEnv = { HPCC_PULL_CONCURRENCY: String(concurrency), NODE_EXTRA_CA_CERTS: undefined, NODE_COMPILE_CACHE: compileCache };
  const cmds = {};
  for (const [tag, { ref }] of Object.entries(images)) {
    cmds[`${tag}: skopeo`] = () => ['skopeo', ['copy', '--quiet', '--src-tls-verify=false', ref, `oci:${fresh()}:img`], {}];
    cmds[`${tag}: hpcc fetch`] = () => [process.execPath, ['--input-type=module', '-e', fetchScript(path.join(root, 'dist')), ref, fresh()], hpccEnv];
    if (before) cmds[`${tag}: hpcc fetch (before)`] = () => [process.execPath, ['--input-type=module', '-e', fetchScript(before), ref, fresh()], hpccEnv];
    if (process.env.PULL !== '0') {
      const pull = (bin, env) => () => {
        const d = fresh();
        mkdirSync(d, { recursive: true });
        return [process.execPath, [bin, 'pull', '--quiet', '--insecure', path.join(d, 'o.sif'), ref], { ...env, HPCC_CACHEDIR: path.join(d, 'cache') }];
      };
      cmds[`${tag}: hpcc pull`] = pull(path.join(root, 'bin/run.js'), hpccEnv);
      if (beforeBin) cmds[`${tag}: hpcc pull (before)`] = pull(beforeBin, hpccEnv);
    }
    if (tag === 'one') {
      const missing = ref.replace(/:latest$/, ':missing');
      const start = (bin, env = hpccEnv) => () => {
        const d = fresh();
        mkdirSync(d, { recursive: true });
        return [process.execPath, [bin, 'pull', '--quiet', '--insecure', path.join(d, 'o.sif'), missing], { ...env, HPCC_CACHEDIR: path.join(d, 'cache') }, 81];
      };
      cmds[`${tag}: hpcc pull start (404)`] = start(path.join(root, 'bin/run.js'));
      if (extraCa) cmds[`${tag}: hpcc pull start (404), NODE_EXTRA_CA_CERTS`] = start(path.join(root, 'bin/run.js'), { ...hpccEnv, NODE_EXTRA_CA_CERTS: extraCa });
      if (beforeBin) cmds[`${tag}: hpcc pull start (404) (before)`] = start(beforeBin);
    }
    // Fairness check: skopeo stores the registry's layer blobs unchanged (no recompression).
    const [cmd, args] = cmds[`${tag}: skopeo`]();
    execFileSync(cmd, args);
    const copied = readdirSync(path.join(args[args.length - 1].slice(4, -4), 'blobs', 'sha256'));
    if (!images[tag].layers.every((b) => copied.includes(b))) throw new Error(`skopeo changed the blobs of ${tag} (recompressed?); the comparison would not be fair`);
  }
  const times = Object.fromEntries(Object.keys(cmds).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    const order = Object.keys(cmds).sort(() => Math.random() - 0.5);
    for (const k of order) {
      const [cmd, args, env, status = 0] = cmds[k]();
      const t0 = process.hrtime.bigint();
      const e = { ...process.env, ...env };
      for (const [name, v] of Object.entries(e)) if (v === undefined) delete e[name];
      const res = spawnSync(cmd, args, { env: e, encoding: 'utf8' });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (res.status !== status) throw new Error(`${k} failed (exit ${res.status}): ${res.stderr}`);
      times[k].push(ms);
    }
    for (let i = 1; i <= n; i++) rmSync(path.join(work, `run-${i}`), { recursive: true, force: true });
  }
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  for (const tag of Object.keys(images)) {
    const base = med(times[`${tag}: skopeo`]);
    for (const [k, a] of Object.entries(times)) {
      if (!k.startsWith(`${tag}: `)) continue;
      console.log(`${k.padEnd(48)} median ${med(a).toFixed(0).padStart(6)} ms   ratio vs skopeo ${(med(a) / base).toFixed(2)}   runs ${a.map((x) => x.toFixed(0)).join(' ')}`);
    }
    const verdict = (row) => {
      const ratio = med(times[`${tag}: ${row}`]) / base;
      console.log(`${tag}: target ${row} ≤ 1.00× skopeo: ${ratio.toFixed(2)}× ${ratio <= 1 ? 'PASS' : 'MISS'}`);
    };
    const afterBefore = (row) => {
      if (times[`${tag}: ${row} (before)`]) console.log(`${tag}: ${row} after / before: ${(med(times[`${tag}: ${row}`]) / med(times[`${tag}: ${row} (before)`])).toFixed(2)}×`);
    };
    verdict('hpcc fetch');
    afterBefore('hpcc fetch');
    afterBefore('hpcc pull start (404)');
    if (times[`${tag}: hpcc pull`]) {
      verdict('hpcc pull');
      afterBefore('hpcc pull');
    }
  }
  console.log(`load average at the end ${load()}`);
} finally {
  await reg.stop();
  rmSync(work, { recursive: true, force: true });
}
