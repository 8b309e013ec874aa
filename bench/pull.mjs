#!/usr/bin/env node
// Pull from a local registry: hpcc vs skopeo, same image, same machine, interleaved.
//   skopeo        skopeo copy docker://127.0.0.1:PORT/bench/TAG oci:FRESH_DIR:img
//                 (download, digest check, write blobs; layers copied as they are, no recompression)
//   hpcc fetch    RegistrySource.fetchAll() into a fresh HPCC_CACHEDIR: resolve the manifest, then
//                 download + sha256/size check while streaming + fsync + rename, as `hpcc pull` does
//                 before converting (a fresh node process, so start-up and imports count)
//   hpcc fetch (before)  the same with another build's dist/ (BEFORE_DIST=/path/to/dist), to
//                 compare a change against its baseline in the same run
//   hpcc pull     hpcc pull --insecure OUT.sif (fresh cache: download + convert to a gzip SIF); PULL=0 skips it
// Images: "one" — one layer, the tree of /usr/lib/python3* (umoci insert); "four" — the same
// files in four layers (each python directory's entries dealt round-robin). Pushed with skopeo
// to Debian's docker-registry on 127.0.0.1 (storage in a temp dir). Parallel downloads: skopeo
// copies up to 6 blobs at once by default (containers/image), so hpcc runs with
// HPCC_PULL_CONCURRENCY=6 too (override with the variable). Each command runs as a fresh
// process; the median of ROUNDS (default 7) rounds, order shuffled per round.
// Target (issue 4): hpcc fetch ≤ 1.0× skopeo.
//
//   npx tsc -p . && node bench/pull.mjs
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { startRegistry, skopeoPush } = await import(path.join(root, 'dist/test/helpers/registry.js'));
const rounds = Number(process.env.ROUNDS ?? 7);
const before = process.env.BEFORE_DIST ? path.resolve(process.env.BEFORE_DIST) : null;
const concurrency = Number(process.env.HPCC_PULL_CONCURRENCY ?? 6);
/** Layer digests (hex) and their total size for a tag of an OCI layout. */
function imageFacts(layout, tag) {
  const blob = (d) => JSON.parse(readFileSync(path.join(layout, 'blobs', 'sha256', d.slice(7)), 'utf8'));
  const idx = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8'));
  const m = blob(idx.manifests.find((x) => x.annotations?.['org.opencontainers.image.ref.name'] === tag).digest);
  return { layers: m.layers.map((l) => l.digest.slice(7)), bytes: m.layers.reduce((a, l) => a + l.size, 0) };
}
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const work = mkdtempSync(path.join(tmpdir(), 'hpcc-bench-pull-'));
const reg = await startRegistry('none');
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
  for (const tag of ['one', 'four']) {
    await skopeoPush(reg, `oci:${layout}:${tag}`, `bench/${tag}:latest`);
    images[tag] = { ref: `docker://${reg.host}/bench/${tag}:latest`, ...imageFacts(layout, tag) };
    console.log(`image ${tag}: ${images[tag].layers.length} layers, ${(images[tag].bytes / 1048576).toFixed(1)} MiB of layers`);
  }
  console.log(`registry ${reg.host}; ${rounds} rounds; HPCC_PULL_CONCURRENCY=${concurrency} (skopeo's default of parallel blob copies); load average ${load()}`);

  const fetchScript = (dist) => `
    const { RegistrySource } = await import(${JSON.stringify(path.join(dist, 'src/oci/registry-source.js'))});
    const { BlobCache } = await import(${JSON.stringify(path.join(dist, 'src/oci/cache/store.js'))});
    const { parseReference } = await import(${JSON.stringify(path.join(dist, 'src/oci/reference.js'))});
    const { closeDefaultAgent } = await import(${JSON.stringify(path.join(dist, 'src/oci/registry/client.js'))});
    const img = await new RegistrySource(parseReference(process.argv[1]), { insecure: true, cache: new BlobCache(process.argv[2]) }).resolve({});
    await img.fetchAll(); await img.close(); await closeDefaultAgent();`;
  let n = 0;
  const fresh = () => path.join(work, `run-${++n}`);
  const hpccEnv = { HPCC_PULL_CONCURRENCY: String(concurrency) };
  const cmds = {};
  for (const [tag, { ref }] of Object.entries(images)) {
    cmds[`${tag}: skopeo`] = () => ['skopeo', ['copy', '--quiet', '--src-tls-verify=false', ref, `oci:${fresh()}:img`], {}];
    cmds[`${tag}: hpcc fetch`] = () => [process.execPath, ['--input-type=module', '-e', fetchScript(path.join(root, 'dist')), ref, fresh()], hpccEnv];
    if (before) cmds[`${tag}: hpcc fetch (before)`] = () => [process.execPath, ['--input-type=module', '-e', fetchScript(before), ref, fresh()], hpccEnv];
    if (process.env.PULL !== '0') {
      cmds[`${tag}: hpcc pull`] = () => {
        const d = fresh();
        mkdirSync(d, { recursive: true });
        return [process.execPath, [path.join(root, 'bin/run.js'), 'pull', '--quiet', '--insecure', path.join(d, 'o.sif'), ref], { ...hpccEnv, HPCC_CACHEDIR: path.join(d, 'cache') }];
      };
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
      const [cmd, args, env] = cmds[k]();
      const t0 = process.hrtime.bigint();
      const res = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8' });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (res.status !== 0) throw new Error(`${k} failed: ${res.stderr}`);
      times[k].push(ms);
    }
    for (let i = 1; i <= n; i++) rmSync(path.join(work, `run-${i}`), { recursive: true, force: true });
  }
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  for (const tag of Object.keys(images)) {
    const base = med(times[`${tag}: skopeo`]);
    for (const [k, a] of Object.entries(times)) {
      if (!k.startsWith(`${tag}: `)) continue;
      console.log(`${k.padEnd(25)} median ${med(a).toFixed(0).padStart(6)} ms   ratio vs skopeo ${(med(a) / base).toFixed(2)}   runs ${a.map((x) => x.toFixed(0)).join(' ')}`);
    }
    const ratio = med(times[`${tag}: hpcc fetch`]) / base;
    console.log(`${tag}: target hpcc fetch ≤ 1.00× skopeo: ${ratio.toFixed(2)}× ${ratio <= 1 ? 'PASS' : 'MISS'}`);
    if (before) console.log(`${tag}: hpcc fetch after / before: ${(med(times[`${tag}: hpcc fetch`]) / med(times[`${tag}: hpcc fetch (before)`])).toFixed(2)}×`);
  }
  console.log(`load average at the end ${load()}`);
} finally {
  await reg.stop();
  rmSync(work, { recursive: true, force: true });
}
