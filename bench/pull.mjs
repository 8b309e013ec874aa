#!/usr/bin/env node
// Pull from a local registry: hpcc vs skopeo, same image, same machine, interleaved.
//   skopeo        skopeo copy docker://127.0.0.1:PORT/bench/img oci:FRESH_DIR:img
//                 (download, digest check, write blobs; layers copied as they are, no recompression)
//   hpcc fetch    RegistrySource.fetchAll() into a fresh HPCC_CACHEDIR: resolve the manifest, then
//                 download + sha256/size check while streaming + fsync + rename, as `hpcc pull` does
//                 before converting (a fresh node process, so start-up and imports count)
//   hpcc fetch (before)  the same with another build's dist/ (BEFORE_DIST=/path/to/dist), to
//                 compare a change against its baseline in the same run
//   hpcc pull     hpcc pull --insecure OUT.sif (fresh cache: download + convert to a gzip SIF); PULL=0 skips it
// Image: one layer, the tree of /usr/lib/python3* (umoci insert), pushed with skopeo to
// Debian's docker-registry on 127.0.0.1 (storage in a temp dir). With one layer, the
// parallel-download settings of either tool do not matter: each fetches one blob over one
// connection. Each command runs as a fresh process; the median of ROUNDS (default 7)
// rounds, order shuffled per round. Target (issue 4): hpcc fetch ≤ 1.0× skopeo.
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
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const work = mkdtempSync(path.join(tmpdir(), 'hpcc-bench-pull-'));
const reg = await startRegistry('none');
try {
  const tree = path.join(work, 'tree');
  mkdirSync(path.join(tree, 'usr', 'lib'), { recursive: true });
  for (const d of ['python3', 'python3.11', 'python3.12', 'python3.13']) {
    if (existsSync(`/usr/lib/${d}`)) execFileSync('cp', ['-a', `/usr/lib/${d}`, path.join(tree, 'usr', 'lib', d)]);
  }
  const layout = path.join(work, 'layout');
  execFileSync('umoci', ['init', '--layout', layout]);
  execFileSync('umoci', ['new', '--image', `${layout}:img`]);
  execFileSync('umoci', ['insert', '--image', `${layout}:img`, tree, '/']);
  await skopeoPush(reg, `oci:${layout}:img`, 'bench/img:latest');
  const ref = `docker://${reg.host}/bench/img:latest`;
  const size = execFileSync('du', ['-sb', path.join(layout, 'blobs')], { encoding: 'utf8' }).split('\t')[0];
  console.log(`image: ${(Number(size) / 1048576).toFixed(1)} MiB of blobs, 1 layer; registry ${reg.host}; ${rounds} rounds; load average ${load()}`);

  const fetchScript = (dist) => `
    const { RegistrySource } = await import(${JSON.stringify(path.join(dist, 'src/oci/registry-source.js'))});
    const { BlobCache } = await import(${JSON.stringify(path.join(dist, 'src/oci/cache/store.js'))});
    const { parseReference } = await import(${JSON.stringify(path.join(dist, 'src/oci/reference.js'))});
    const { closeDefaultAgent } = await import(${JSON.stringify(path.join(dist, 'src/oci/registry/client.js'))});
    const img = await new RegistrySource(parseReference(process.argv[1]), { insecure: true, cache: new BlobCache(process.argv[2]) }).resolve({});
    await img.fetchAll(); await img.close(); await closeDefaultAgent();`;
  let n = 0;
  const fresh = () => path.join(work, `run-${++n}`);
  const cmds = {
    skopeo: () => ['skopeo', ['copy', '--quiet', '--src-tls-verify=false', ref, `oci:${fresh()}:img`], {}],
    'hpcc fetch': () => [process.execPath, ['--input-type=module', '-e', fetchScript(path.join(root, 'dist')), ref, fresh()], {}],
    ...(before ? { 'hpcc fetch (before)': () => [process.execPath, ['--input-type=module', '-e', fetchScript(before), ref, fresh()], {}] } : {}),
    ...(process.env.PULL !== '0'
      ? {
          'hpcc pull': () => {
            const d = fresh();
            mkdirSync(d, { recursive: true });
            return [process.execPath, [path.join(root, 'bin/run.js'), 'pull', '--quiet', '--insecure', path.join(d, 'o.sif'), ref], { HPCC_CACHEDIR: path.join(d, 'cache') }];
          },
        }
      : {}),
  };
  // Fairness check: skopeo stores the registry's layer blobs unchanged (no recompression).
  const blob = (d) => JSON.parse(readFileSync(path.join(layout, 'blobs', 'sha256', d.slice(7)), 'utf8'));
  const idx = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8'));
  const layerBlobs = blob(idx.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'img').digest).layers.map((l) => l.digest.slice(7));
  {
    const [cmd, args] = cmds.skopeo();
    execFileSync(cmd, args);
    const copied = readdirSync(path.join(args[args.length - 1].slice(4, -4), 'blobs', 'sha256'));
    if (layerBlobs.length !== 1 || !layerBlobs.every((b) => copied.includes(b))) throw new Error('skopeo changed the blobs (recompressed?); the comparison would not be fair');
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
  const base = med(times.skopeo);
  for (const [k, a] of Object.entries(times)) {
    console.log(`${k.padEnd(19)} median ${med(a).toFixed(0).padStart(6)} ms   ratio vs skopeo ${(med(a) / base).toFixed(2)}   runs ${a.map((x) => x.toFixed(0)).join(' ')}`);
  }
  const ratio = med(times['hpcc fetch']) / base;
  console.log(`target hpcc fetch ≤ 1.00× skopeo: ${ratio.toFixed(2)}× ${ratio <= 1 ? 'PASS' : 'MISS'}`);
  if (before) console.log(`hpcc fetch after / before: ${(med(times['hpcc fetch']) / med(times['hpcc fetch (before)'])).toFixed(2)}×`);
  console.log(`load average at the end ${load()}`);
} finally {
  await reg.stop();
  rmSync(work, { recursive: true, force: true });
}
