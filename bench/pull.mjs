#!/usr/bin/env node
// Pull from a local registry: hpcc vs skopeo, same image, same machine, interleaved.
//   skopeo        skopeo copy docker://127.0.0.1:PORT/bench/img oci:FRESH_DIR   (download + write blobs)
//   hpcc fetch    RegistrySource.fetchAll() into a fresh HPCC_CACHEDIR           (download + verify + cache)
//   hpcc pull     hpcc pull --insecure OUT.sif (fresh cache: download + convert to a gzip SIF)
// Image: one layer = a tree of /usr/lib/python3* (umoci insert), pushed with skopeo to
// Debian's docker-registry on 127.0.0.1 (storage in a temp dir). Each command runs as a
// fresh process; the median of ROUNDS (default 5) rounds, order shuffled per round.
//
//   npx tsc -p . && node bench/pull.mjs
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { startRegistry, skopeoPush } = await import(path.join(root, 'dist/test/helpers/registry.js'));
const rounds = Number(process.env.ROUNDS ?? 5);
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
  console.log(`image: ${(Number(size) / 1048576).toFixed(1)} MiB of blobs; registry ${reg.host}; ${rounds} rounds; load ${loadavg()[0].toFixed(2)}`);

  const fetchScript = `
    const { RegistrySource } = await import(${JSON.stringify(path.join(root, 'dist/src/oci/registry-source.js'))});
    const { BlobCache } = await import(${JSON.stringify(path.join(root, 'dist/src/oci/cache/store.js'))});
    const { parseReference } = await import(${JSON.stringify(path.join(root, 'dist/src/oci/reference.js'))});
    const { closeDefaultAgent } = await import(${JSON.stringify(path.join(root, 'dist/src/oci/registry/client.js'))});
    const img = await new RegistrySource(parseReference(process.argv[1]), { insecure: true, cache: new BlobCache(process.argv[2]) }).resolve({});
    await img.fetchAll(); await img.close(); await closeDefaultAgent();`;
  let n = 0;
  const fresh = () => path.join(work, `run-${++n}`);
  const cmds = {
    skopeo: () => ['skopeo', ['copy', '--quiet', '--src-tls-verify=false', ref, `oci:${fresh()}:img`], {}],
    'hpcc fetch': () => [process.execPath, ['--input-type=module', '-e', fetchScript, ref, fresh()], {}],
    'hpcc pull': () => {
      const d = fresh();
      return [process.execPath, [path.join(root, 'bin/run.js'), 'pull', '--quiet', '--insecure', path.join(d, 'o.sif'), ref], { HPCC_CACHEDIR: path.join(d, 'cache') }];
    },
  };
  const times = Object.fromEntries(Object.keys(cmds).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    const order = Object.keys(cmds).sort(() => Math.random() - 0.5);
    for (const k of order) {
      const [cmd, args, env] = cmds[k]();
      if (k === 'hpcc pull') mkdirSync(path.dirname(args[args.length - 2]), { recursive: true });
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
    console.log(`${k.padEnd(11)} median ${med(a).toFixed(0).padStart(6)} ms   ratio vs skopeo ${(med(a) / base).toFixed(2)}   runs ${a.map((x) => x.toFixed(0)).join(' ')}`);
  }
} finally {
  await reg.stop();
  rmSync(work, { recursive: true, force: true });
}
