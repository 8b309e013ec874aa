/**
 * OCI image fixtures for registry tests, built at test time without network:
 * small trees made here, packed into an OCI layout with umoci (one layer per
 * `umoci insert`), and an optional hand-made multi-platform index.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTempDir, removeTree } from './env.js';
import { skopeoPush, startRegistry, type RegistryAuth, type TestRegistry } from './registry.js';

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export interface Fixture {
  layout: string;
  /** trees, in layer order (layer i = umoci insert of trees[i] at /) */
  trees: string[];
  /** the merged tree the image should unpack to */
  merged: string;
}

/** Deterministic pseudo-random bytes (so blobs compare across runs). */
function prng(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Two layers: /etc (text, symlink, dirs) and /data (a 1.5 MiB incompressible file). */
export function makeSmallTrees(dir: string, bigBytes = 1536 * 1024): string[] {
  const t1 = path.join(dir, 'tree1');
  const t2 = path.join(dir, 'tree2');
  fs.mkdirSync(path.join(t1, 'etc', 'conf.d'), { recursive: true });
  fs.mkdirSync(path.join(t1, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(t1, 'etc', 'hello'), 'hello from hpcc tests\n');
  fs.writeFileSync(path.join(t1, 'etc', 'conf.d', 'a.conf'), 'a=1\n');
  fs.symlinkSync('hello', path.join(t1, 'etc', 'hello.link'));
  fs.writeFileSync(path.join(t1, 'bin', 'tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  fs.chmodSync(path.join(t1, 'bin', 'tool'), 0o755);
  fs.mkdirSync(path.join(t2, 'data'), { recursive: true });
  fs.writeFileSync(path.join(t2, 'data', 'big.bin'), prng(bigBytes, 42));
  fs.writeFileSync(path.join(t2, 'data', 'small.txt'), 'small\n');
  for (const t of [t1, t2]) {
    spawnSync('find', [t, '-exec', 'touch', '-h', '-d', '@1700000000', '{}', '+']);
  }
  return [t1, t2];
}

/** A busybox-static root: /bin/busybox, one symlink per applet, /etc/passwd, /tmp (1777). */
export function makeBusyboxTree(dir: string): string {
  const out = path.join(dir, 'busybox');
  const bb = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
  if (!bb) throw new Error('busybox-static is needed (scripts/setup-host.sh installs it)');
  for (const d of ['bin', 'etc', 'tmp', 'root', 'var/tmp']) fs.mkdirSync(path.join(out, d), { recursive: true });
  fs.chmodSync(path.join(out, 'tmp'), 0o1777);
  fs.copyFileSync(bb, path.join(out, 'bin', 'busybox'));
  fs.chmodSync(path.join(out, 'bin', 'busybox'), 0o755);
  for (const a of run(bb, ['--list']).split('\n')) {
    if (a !== '' && a !== 'busybox' && /^[a-z0-9_.[-]+$/.test(a)) fs.symlinkSync('busybox', path.join(out, 'bin', a));
  }
  fs.writeFileSync(path.join(out, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(out, 'etc', 'group'), 'root:x:0:\n');
  spawnSync('find', [out, '-exec', 'touch', '-h', '-d', '@1700000000', '{}', '+']);
  return out;
}

/** umoci init (if needed) + new + one insert per tree + config. */
export function umociImage(layout: string, tag: string, trees: string[], cmd = '/bin/sh'): void {
  if (!fs.existsSync(path.join(layout, 'oci-layout'))) run('umoci', ['init', '--layout', layout]);
  run('umoci', ['new', '--image', `${layout}:${tag}`]);
  for (const t of trees) run('umoci', ['insert', '--image', `${layout}:${tag}`, t, '/']);
  run('umoci', ['config', '--image', `${layout}:${tag}`, '--config.cmd', cmd, '--config.env', 'HPCC_FIXTURE=1']);
}

/**
 * Add a hand-made OCI index tagged `tag` to the layout, listing the images
 * tagged `amd64Tag` as linux/amd64 and `arm64Tag` as linux/arm64 (the arm64
 * one is fake: only index resolution is exercised).
 */
export function addMultiPlatformIndex(layout: string, tag: string, amd64Tag: string, arm64Tag: string): string {
  const idxPath = path.join(layout, 'index.json');
  const top = JSON.parse(fs.readFileSync(idxPath, 'utf8')) as {
    manifests: Array<{ mediaType: string; digest: string; size: number; annotations?: Record<string, string> }>;
  };
  const find = (t: string) => {
    const d = top.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === t);
    if (!d) throw new Error(`no ${t} in ${layout}`);
    return { mediaType: d.mediaType, digest: d.digest, size: d.size };
  };
  const idx = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { ...find(arm64Tag), platform: { architecture: 'arm64', os: 'linux' } },
      { ...find(amd64Tag), platform: { architecture: 'amd64', os: 'linux' } },
    ],
  });
  const hex = createHash('sha256').update(idx).digest('hex');
  fs.writeFileSync(path.join(layout, 'blobs', 'sha256', hex), idx);
  top.manifests = top.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== tag);
  top.manifests.push({
    mediaType: 'application/vnd.oci.image.index.v1+json',
    digest: `sha256:${hex}`,
    size: Buffer.byteLength(idx),
    annotations: { 'org.opencontainers.image.ref.name': tag },
  });
  fs.writeFileSync(idxPath, JSON.stringify(top));
  return `sha256:${hex}`;
}

/** The manifest JSON of a tag in a layout (follows the top-level descriptor only). */
export function layoutManifest(layout: string, tag: string): { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number; mediaType: string }> } {
  const top = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
  };
  const d = top.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!;
  return JSON.parse(fs.readFileSync(path.join(layout, 'blobs', 'sha256', d.digest.slice(7)), 'utf8'));
}

export interface SmallImageRegistry {
  /** a temp dir holding the trees and the OCI layout (removed by stop()) */
  work: string;
  layout: string;
  reg: TestRegistry;
  /** stop the registry and remove `work` */
  stop(): Promise<void>;
}

/**
 * A registry (startRegistry's auth and TLS options) serving the small
 * two-layer image (makeSmallTrees with `bigBytes`) under each of `repos`.
 * On a failure the temp dir and any started registry are cleaned up.
 */
export async function startSmallImageRegistry(
  prefix: string,
  auth: RegistryAuth,
  opts: { tls?: boolean; bigBytes?: number; repos?: string[] } = {},
): Promise<SmallImageRegistry> {
  const work = makeTempDir(prefix);
  let reg: TestRegistry | undefined;
  try {
    const layout = path.join(work, 'layout');
    umociImage(layout, 'small', makeSmallTrees(work, opts.bigBytes));
    reg = await startRegistry(auth, opts.tls ? { tls: true } : {});
    for (const repo of opts.repos ?? ['lab/small:latest']) await skopeoPush(reg, `oci:${layout}:small`, repo);
    const started = reg;
    return {
      work,
      layout,
      reg: started,
      async stop() {
        await started.stop();
        removeTree(work);
      },
    };
  } catch (e) {
    await reg?.stop();
    removeTree(work);
    throw e;
  }
}
