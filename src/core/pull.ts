/**
 * `hpcc pull`: a reference → a SIF, through the cache.
 *   docker:// images: resolve the platform manifest (registry), then the SIF
 *   cache entry keyed by the manifest digest (and the non-default conversion
 *   options) is built once — layers downloaded into the blob cache in
 *   parallel and streamed into the converter — and copied to OUT (temp + rename).
 *   Other references (oci:, oci-archive:, docker-archive:) convert straight to OUT.
 * `ensureCachedSif` is the same first half, for `exec|run|shell docker://…`.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { UsageError, addContext } from '../errors/index.js';
import type { CodecName } from '../formats/squashfs/index.js';
import { BlobCache } from '../oci/cache/store.js';
import { formatPlatform } from '../oci/platform.js';
import { bootstrapOf, dockerName, parseReference, type DockerRef, type ImageRef } from '../oci/reference.js';
import { RegistrySource, type PullEvent } from '../oci/registry-source.js';
import { resolveSource } from '../oci/sources.js';
import type { OciPlatform, ResolvedImage } from '../oci/types.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { CACHE_LAYOUT, ensureCacheDir, entryState } from '../util/cache-root.js';
import { checkOutput } from './build.js';
import { convertImage, type ConvertOptions } from './convert.js';
import type { Timings } from '../runtime/timings.js';

export interface PullOptions {
  platform?: OciPlatform;
  insecure?: boolean;
  force?: boolean;
  compressor?: CodecName;
  level?: number;
  blockSize?: number;
  cache?: BlobCache;
  /** also keep/reuse the converted SIF in the cache (docker:// only; default true) */
  useSifCache?: boolean;
  onEvent?: (ev: PullEvent) => void;
  onWarning?: (msg: string) => void;
  onConvertProgress?: ConvertOptions['onProgress'];
  /**
   * --timings: resolve (the manifest and config), fetch (first layer download
   * started to last one done: it overlaps convert, into which the layers
   * stream), convert (the layers into squashfs), write (tables, SIF, the copy to OUT)
   */
  timings?: Timings;
}

export interface PullResult {
  output: string;
  reference: string;
  manifestDigest: string;
  platform: string;
  layers: number;
  /** the SIF came from the cache (no conversion) */
  sifCached: boolean;
  cachedSif?: string;
}

/** Apptainer-style default output name: <last name component>_<tag>.sif. */
export function defaultOutputName(ref: ImageRef): string {
  switch (ref.transport) {
    case 'docker': {
      const name = ref.repository.split('/').pop()!;
      const tag = ref.tag ?? (ref.digest ? ref.digest.slice(7, 19) : 'latest');
      return `${name}_${tag}.sif`;
    }
    default: {
      const base = path.basename(ref.path).replace(/\.(tar|oci|docker)(\.tar)?$/i, '').replace(/[^A-Za-z0-9._-]/g, '_') || 'image';
      const tag = ref.transport === 'docker-archive' ? (ref.ref?.split(':').pop() ?? 'latest') : (ref.tag ?? 'latest');
      return `${base}_${tag.replace(/[^A-Za-z0-9._-]/g, '_')}.sif`;
    }
  }
}

/** The SIF-cache variant for non-default conversion options ('' for the defaults). */
export function sifVariant(o: { compressor?: string; level?: number; blockSize?: number }): string {
  const parts: string[] = [];
  if (o.compressor && o.compressor !== 'gzip') parts.push(o.compressor);
  if (o.level !== undefined) parts.push(`l${o.level}`);
  if (o.blockSize !== undefined && o.blockSize !== 131072) parts.push(`b${o.blockSize}`);
  return parts.join('_');
}

/**
 * `sifVariant`: the SIF cache entry the caller will look for (undefined: no SIF
 * cache, the image is converted anyway). The layer downloads then start as
 * soon as the manifest is known, overlapping the config fetch, unless that
 * SIF is already cached (nothing is downloaded then).
 */
async function resolveRef(ref: ImageRef, opts: PullOptions, cache: BlobCache, sifVariant?: string): Promise<ResolvedImage> {
  if (opts.timings) opts = { ...opts, onEvent: fetchTimer(opts.timings, opts.onEvent) };
  const prefetch = async (manifestDigest: string) => sifVariant === undefined || !(await cache.hasSif(manifestDigest, sifVariant));
  const src =
    ref.transport === 'docker'
      ? new RegistrySource(ref, { cache, prefetch, ...(opts.insecure ? { insecure: true } : {}), ...(opts.onEvent ? { onEvent: opts.onEvent } : {}) })
      : resolveSource(ref);
  const image = await src.resolve(opts.platform ? { platform: opts.platform } : {});
  opts.timings?.mark('resolve');
  return image;
}

/** --timings' fetch: from the first layer download's start to the last one's end, as it happens. */
function fetchTimer(t: Timings, next?: (ev: PullEvent) => void): (ev: PullEvent) => void {
  let first: bigint | undefined;
  let last: bigint | undefined;
  return (ev) => {
    const now = process.hrtime.bigint();
    if (ev.type === 'layer-start' && first === undefined) first = now;
    if (ev.type === 'layer-done' && first !== undefined) {
      t.add('fetch', now - (last ?? first));
      last = now;
    }
    next?.(ev);
  };
}

function convertOpts(ref: ImageRef, opts: PullOptions, force: boolean): ConvertOptions {
  return {
    ...(opts.compressor ? { compressor: opts.compressor } : {}),
    ...(opts.level !== undefined ? { level: opts.level } : {}),
    ...(opts.blockSize !== undefined ? { blockSize: opts.blockSize } : {}),
    force,
    bootstrap: bootstrapOf(ref),
    ...(opts.onConvertProgress ? { onProgress: opts.onConvertProgress } : {}),
    ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
    ...(opts.timings ? { onFilled: () => opts.timings!.mark('convert') } : {}),
  };
}

/** Resolve a docker:// reference and make sure its SIF is in the cache; returns its path. */
export async function ensureCachedSif(
  refText: string | ImageRef,
  opts: PullOptions = {},
): Promise<{ path: string; image: ResolvedImage; built: boolean }> {
  const ref = typeof refText === 'string' ? parseReference(refText) : refText;
  if (ref.transport !== 'docker') throw new UsageError('only docker:// references are cached as SIF files');
  const cache = opts.cache ?? new BlobCache();
  const variant = sifVariant(opts);
  const image = await resolveRef(ref, opts, cache, variant);
  try {
    const r = await cache.ensureSif(image.manifestDigest, variant, async (tmp) => {
      await convertImage(image, tmp, convertOpts(ref, opts, true));
    });
    await writeRefRecord(cache, ref, variant, opts.platform, image.manifestDigest);
    opts.timings?.mark('write');
    return { path: r.path, image, built: r.fetched };
  } finally {
    await image.close();
  }
}

/**
 * Which manifest a docker:// reference resolved to last (with these conversion
 * options and platform): CACHE/refs/<sha256 of the key>.json. Written by every
 * resolution (`hpcc pull`, exec|run|shell of a reference); read by launches
 * under the pull policy "missing" (runImageRef).
 */
function refRecordPath(cache: BlobCache, ref: DockerRef, variant: string, platform?: OciPlatform): string {
  const key = JSON.stringify([dockerName(ref), ref.digest ?? '', variant, platform ? formatPlatform(platform) : '']);
  return path.join(cache.root, CACHE_LAYOUT.refs, `${createHash('sha256').update(key).digest('hex')}.json`);
}

async function writeRefRecord(cache: BlobCache, ref: DockerRef, variant: string, platform: OciPlatform | undefined, manifestDigest: string): Promise<void> {
  const file = refRecordPath(cache, ref, variant, platform);
  try {
    ensureCacheDir(cache.root, CACHE_LAYOUT.refs);
    const rec = { reference: dockerName(ref), manifestDigest, variant, resolvedAt: new Date().toISOString() };
    await writeFileAtomic(file, JSON.stringify(rec) + '\n', { mode: 0o600, what: `write ${file}` });
  } catch {
    /* only an optimisation: the next launch resolves the reference again */
  }
}

/** The cached SIF the last resolution of `ref` gave, when it is still there; null otherwise. */
async function recordedSif(cache: BlobCache, ref: DockerRef, variant: string, platform?: OciPlatform): Promise<string | null> {
  let digest: unknown;
  const file = refRecordPath(cache, ref, variant, platform);
  // only a record of ours in a directory of ours (cache-root.ts); any other is ignored and rewritten
  if (entryState(path.dirname(file), 'dir') !== 'ok' || entryState(file, 'file') !== 'ok') return null;
  try {
    digest = (JSON.parse(await fs.readFile(file, 'utf8')) as { manifestDigest?: unknown }).manifestDigest;
  } catch {
    return null;
  }
  if (typeof digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(digest)) return null;
  return (await cache.hasSif(digest, variant)) ? cache.sifPath(digest, variant) : null;
}

export type PullPolicy = 'missing' | 'always';

/** HPCC_PULL_POLICY: "missing" (default) or "always". */
export function pullPolicy(env: NodeJS.ProcessEnv = process.env): PullPolicy {
  const v = (env.HPCC_PULL_POLICY ?? 'missing').trim().toLowerCase();
  if (v === 'missing' || v === 'always') return v;
  throw new UsageError(`HPCC_PULL_POLICY=${env.HPCC_PULL_POLICY}: expected "missing" or "always"`, {
    hint: 'missing (default): launches of a docker:// reference use its cached conversion without asking the registry; always: resolve it every time.',
  });
}

/**
 * exec|run|shell of a docker:// reference: the SIF to run. Under the pull
 * policy "missing" (default) a reference converted before runs from the
 * cache without a registry request, as `podman run` does with a local image:
 * a job's ranks then do not each ask the registry (Docker Hub's pull limits
 * count manifest requests). "always" resolves it every time, converting a
 * moved tag. `hpcc pull REF` updates what the reference stands for.
 */
export async function runImageRef(refText: string, opts: PullOptions = {}, policy: PullPolicy = pullPolicy()): Promise<{ path: string; built: boolean }> {
  const ref = parseReference(refText);
  if (ref.transport !== 'docker') throw new UsageError('only docker:// references are cached as SIF files');
  const cache = opts.cache ?? new BlobCache();
  if (policy === 'missing') {
    const sif = await recordedSif(cache, ref, sifVariant(opts), opts.platform);
    if (sif) return { path: sif, built: false };
  }
  const r = await ensureCachedSif(ref, { ...opts, cache });
  return { path: r.path, built: r.built };
}

async function copyInto(src: string, out: string): Promise<void> {
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await fs.copyFile(src, tmp, fs.constants.COPYFILE_FICLONE);
    const fh = await fs.open(tmp, 'r+');
    try {
      // the cached SIF is private (0600); the user's copy gets the usual mode
      await fh.chmod(0o666 & ~process.umask());
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, out);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw addContext(`write ${out}`, e);
  }
}

export async function pullImage(refText: string, out: string | undefined, opts: PullOptions = {}): Promise<PullResult> {
  const ref = parseReference(refText);
  const output = path.resolve(out ?? defaultOutputName(ref));
  await checkOutput(output, opts.force ?? false);
  const cache = opts.cache ?? new BlobCache();
  if (ref.transport === 'docker' && opts.useSifCache !== false) {
    const r = await ensureCachedSif(ref, { ...opts, cache });
    await checkOutput(output, opts.force ?? false); // still free after the download?
    await copyInto(r.path, output);
    opts.timings?.mark('write');
    const p = r.image.platform;
    return {
      output,
      reference: r.image.reference,
      manifestDigest: r.image.manifestDigest,
      platform: `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`,
      layers: r.image.layers.length,
      sifCached: !r.built,
      cachedSif: r.path,
    };
  }
  const image = await resolveRef(ref, opts, cache);
  try {
    const c = await convertImage(image, output, convertOpts(ref, opts, opts.force ?? false));
    opts.timings?.mark('write');
    return { output, reference: image.reference, manifestDigest: c.manifestDigest, platform: c.platform, layers: c.layers, sifCached: false };
  } finally {
    await image.close();
  }
}
