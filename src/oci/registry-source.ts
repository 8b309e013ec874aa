/**
 * docker:// images: an ImageSource over an OCI distribution registry.
 * resolve(): manifest by tag or digest (index → platform manifest, bounded
 * depth) → config. The first open()/fetchAll() starts every layer's download
 * into the blob cache through a bounded pool (default 3 at a time); a layer's
 * open() waits for its own download and streams the cached file, verified again.
 */
import { OciError } from '../errors/index.js';
import { checkLayerType, isIndexType, parseImageConfig, parseManifest } from './manifest.js';
import { formatPlatform, hostPlatform, selectManifest } from './platform.js';
import { dockerName, type DockerRef } from './reference.js';
import { lookupCredentials } from './registry/auth.js';
import { RegistryClient } from './registry/client.js';
import { isInsecureRegistry } from './registry/config.js';
import { BlobCache } from './cache/store.js';
import type { ImageSource, LayerRef, OciDescriptor, OciPlatform, ResolvedImage } from './types.js';

export type PullEvent =
  | { type: 'manifest'; reference: string; digest: string; platform: OciPlatform; layers: number; bytes: number }
  | { type: 'layer-start'; index: number; digest: string; size: number }
  | { type: 'layer-wait'; index: number; digest: string; size: number }
  | { type: 'layer-progress'; index: number; digest: string; size: number; bytes: number }
  | { type: 'layer-done'; index: number; digest: string; size: number; fetched: boolean; ms: number };

export interface RegistrySourceOptions {
  /** plain HTTP for this registry (also: [registries] insecure in hpcc.conf, HPCC_INSECURE_REGISTRIES) */
  insecure?: boolean;
  cache?: BlobCache;
  /** parallel layer downloads (default 3, HPCC_PULL_CONCURRENCY) */
  concurrency?: number;
  onEvent?: (ev: PullEvent) => void;
  client?: RegistryClient;
  env?: NodeJS.ProcessEnv;
  /**
   * Asked once, with the platform manifest's digest, before the config is
   * fetched: true starts every layer's download at once (e.g. when no SIF of
   * that manifest is cached), instead of on the first open()/fetchAll(). Not
   * asked when a --platform must first be checked against the config (a
   * manifest outside an index), so a refused image downloads nothing. Events
   * keep their order: 'manifest' is emitted first, the layers' events after it.
   */
  prefetch?: (manifestDigest: string) => boolean | Promise<boolean>;
}

export interface RegistryResolvedImage extends ResolvedImage {
  /** wait until every layer is in the cache (rejects with the first failure) */
  fetchAll(): Promise<void>;
  /** cache paths of the layers (valid after fetchAll) */
  layerPaths(): string[];
  cache: BlobCache;
}

const MAX_INDEX_DEPTH = 4;

export class RegistrySource implements ImageSource {
  constructor(
    readonly ref: DockerRef,
    private readonly opts: RegistrySourceOptions = {},
  ) {}

  private client(): RegistryClient {
    if (this.opts.client) return this.opts.client;
    const env = this.opts.env ?? process.env;
    return new RegistryClient({
      registry: this.ref.registry,
      insecure: this.opts.insecure === true || isInsecureRegistry(this.ref.registry, env),
      // Looked up while the first requests go out: only a 401 waits for them.
      credentials: lookupCredentials(this.ref.registry, env),
    });
  }

  async resolve(o: { platform?: OciPlatform } = {}): Promise<RegistryResolvedImage> {
    const client = this.client();
    const cache = this.opts.cache ?? new BlobCache();
    cache.prepare().catch(() => undefined); // made while the manifest comes (a failure shows in ensureBlob)
    const onEvent = this.opts.onEvent ?? (() => undefined);
    // Layer events wait here until the 'manifest' event is out (prefetch can start them earlier).
    let held: PullEvent[] | null = [];
    const emit = (ev: PullEvent) => (held === null ? onEvent(ev) : held.push(ev));
    const repo = this.ref.repository;
    const reference = dockerName(this.ref);
    const want = o.platform ?? hostPlatform();

    let m = await client.getManifest(repo, this.ref.digest ?? this.ref.tag ?? 'latest');
    let parsed = parseManifest(m.bytes, m.mediaType);
    let chosen: OciDescriptor | undefined;
    for (let depth = 0; parsed.kind === 'index'; depth++) {
      if (depth >= MAX_INDEX_DEPTH) throw new OciError('HPCC_E_OCI_MANIFEST', `indexes nested more than ${MAX_INDEX_DEPTH} deep in ${reference}`);
      chosen = selectManifest(parsed.manifests, want, reference);
      m = await client.getManifest(repo, chosen.digest);
      if (chosen.size !== m.bytes.length) {
        throw new OciError('HPCC_E_OCI_MANIFEST', `manifest ${chosen.digest} is ${m.bytes.length} bytes, the index says ${chosen.size}`);
      }
      parsed = parseManifest(m.bytes, chosen.mediaType || m.mediaType);
    }
    if (chosen && isIndexType(chosen.mediaType)) throw new OciError('HPCC_E_OCI_MANIFEST', `descriptor says index but ${chosen.digest} is a manifest`);
    const manifest = parsed;
    for (const l of manifest.layers) checkLayerType(l.mediaType);

    // Background downloads, bounded.
    const limit = Math.max(1, this.opts.concurrency ?? (Number(process.env.HPCC_PULL_CONCURRENCY) || 3));
    let cancelled = false;
    const queue: Array<() => void> = [];
    let running = 0;
    const slot = () =>
      new Promise<void>((resolve) => {
        if (running < limit) {
          running++;
          resolve();
        } else queue.push(() => {
          running++;
          resolve();
        });
      });
    const freeSlot = () => {
      running--;
      queue.shift()?.();
    };
    const fetchLayer = async (l: OciDescriptor, index: number): Promise<string> => {
      await slot();
      try {
        if (cancelled) throw new OciError('HPCC_E_OCI_CANCELLED', `download of ${l.digest} cancelled`);
        const t0 = Date.now();
        emit({ type: 'layer-start', index, digest: l.digest, size: l.size });
        let lastEmit = 0;
        const progress = (bytes: number) => {
          const now = Date.now();
          if (now - lastEmit >= 200 || bytes === l.size) {
            lastEmit = now;
            emit({ type: 'layer-progress', index, digest: l.digest, size: l.size, bytes });
          }
        };
        // The GET goes out before the cache's lock is taken (see ensureBlob).
        const r = await cache.ensureBlob(l.digest, l.size, { start: () => client.startBlob(repo, l.digest, l.size, progress) }, () =>
          emit({ type: 'layer-wait', index, digest: l.digest, size: l.size }),
        );
        emit({ type: 'layer-done', index, digest: l.digest, size: l.size, fetched: r.fetched, ms: Date.now() - t0 });
        return r.path;
      } finally {
        freeSlot();
      }
    };
    // Started on the first open()/fetchAll(), all at once (the pool bounds them),
    // so a caller that only needs the manifest digest (SIF cache hit) downloads nothing.
    let downloads: Array<Promise<string>> | undefined;
    const start = (): Array<Promise<string>> => {
      if (!downloads) {
        downloads = manifest.layers.map((l, i) => fetchLayer(l, i));
        for (const d of downloads) d.catch(() => undefined); // observed by open()/fetchAll()
      }
      return downloads;
    };
    const checkPlatform = o.platform !== undefined && chosen === undefined;
    if (this.opts.prefetch && !checkPlatform && (await this.opts.prefetch(m.digest))) start();
    let configBytes: Buffer;
    let config: ReturnType<typeof parseImageConfig>;
    try {
      configBytes = await client.getBlobBytes(repo, manifest.config.digest, manifest.config.size);
      config = parseImageConfig(configBytes);
    } catch (e) {
      // Started downloads are not abandoned half-way: the ones running finish (or fail), no new one starts.
      cancelled = true;
      if (downloads) await Promise.allSettled(downloads);
      throw e;
    }
    const platform: OciPlatform = {
      os: config.os ?? chosen?.platform?.os ?? 'linux',
      architecture: config.architecture ?? chosen?.platform?.architecture ?? want.architecture,
    };
    const variant = config.variant ?? chosen?.platform?.variant;
    if (variant) platform.variant = variant;
    if (checkPlatform && config.architecture !== undefined && config.architecture !== want.architecture) {
      throw new OciError('HPCC_E_OCI_PLATFORM', `${reference} is ${formatPlatform(platform)}, not ${formatPlatform(want)}`, {
        hint: 'Drop --platform/--arch to convert the image as it is.',
      });
    }
    onEvent({
      type: 'manifest',
      reference,
      digest: m.digest,
      platform,
      layers: manifest.layers.length,
      bytes: manifest.layers.reduce((a, l) => a + l.size, 0),
    });
    for (const ev of held) onEvent(ev);
    held = null;

    const paths: string[] = [];
    const layers: LayerRef[] = manifest.layers.map((l, i) => ({
      digest: l.digest,
      size: l.size,
      mediaType: l.mediaType,
      open: async () => {
        paths[i] = await start()[i]!;
        return cache.readBlob(l.digest, l.size);
      },
    }));
    return {
      reference,
      manifestDigest: m.digest,
      configBytes,
      config,
      layers,
      platform,
      cache,
      async fetchAll() {
        try {
          const p = await Promise.all(start());
          p.forEach((x, i) => (paths[i] = x));
        } catch (e) {
          cancelled = true;
          throw e;
        }
      },
      layerPaths: () => paths.slice(),
      async close() {
        cancelled = true;
        if (downloads) await Promise.allSettled(downloads);
      },
    };
  }
}
