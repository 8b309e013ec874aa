/**
 * What the local sources share: a blob store (read a blob by digest, small
 * ones whole, layers as verified streams) and the walk from an OCI layout's
 * index.json to a platform manifest, its config and its layers.
 */
import { OciError } from '../../errors/index.js';
import { isIndexType, MAX_MANIFEST_BYTES, parseImageConfig, parseManifest, type ParsedIndex } from '../manifest.js';
import { formatPlatform, hostPlatform, selectManifest } from '../platform.js';
import type { LayerRef, OciDescriptor, OciPlatform, ResolvedImage } from '../types.js';
import { verifyBytes, verifyStream } from '../verify.js';

export interface BlobStore {
  /** The raw bytes of a blob (unverified), or an OciError HPCC_E_OCI_BLOB_MISSING. */
  stream(digest: string): Promise<AsyncIterable<Uint8Array>>;
  /** Stored size of a blob, or undefined when absent. */
  sizeOf(digest: string): Promise<number | undefined>;
  close(): Promise<void>;
}

export const REF_NAME = 'org.opencontainers.image.ref.name';

export function missingBlob(digest: string, where: string): OciError {
  return new OciError('HPCC_E_OCI_BLOB_MISSING', `blob ${digest} is missing from ${where}`, {
    hint: 'The image layout or archive is incomplete; copy it again (skopeo copy / umoci gc can help).',
  });
}

/** Read a small blob whole and verify it (bounded by `max`). */
export async function readSmallBlob(store: BlobStore, d: { digest: string; size: number }, what: string, max = MAX_MANIFEST_BYTES): Promise<Uint8Array> {
  if (d.size > max) throw new OciError('HPCC_E_OCI_MANIFEST', `${what} is ${d.size} bytes (limit ${max})`);
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const c of await store.stream(d.digest)) {
    n += c.length;
    if (n > d.size) break; // verifyBytes reports the size mismatch
    chunks.push(c);
  }
  const buf = Buffer.concat(chunks, Math.min(n, d.size + 1));
  verifyBytes(n > d.size ? Buffer.alloc(d.size + 1) : buf, d, what);
  return buf;
}

/** A layer of a local image: streamed from the store, verified against digest and size. */
export function storeLayer(store: BlobStore, d: OciDescriptor, what: string): LayerRef {
  return {
    digest: d.digest,
    size: d.size,
    mediaType: d.mediaType,
    open: async () => verifyStream(await store.stream(d.digest), d, what),
  };
}

/** Pick the descriptor from an index.json for a tag (ref.name annotation), or the only one. */
export function pickFromTopIndex(index: ParsedIndex, tag: string | undefined, where: string): OciDescriptor {
  if (tag !== undefined) {
    const hits = index.manifests.filter((m) => m.annotations?.[REF_NAME] === tag);
    if (hits.length === 0) {
      const tags = index.manifests.map((m) => m.annotations?.[REF_NAME]).filter((t): t is string => t !== undefined);
      throw new OciError('HPCC_E_OCI_TAG', `no image tagged ${JSON.stringify(tag)} in ${where}`, {
        hint: tags.length > 0 ? `Tags there: ${tags.slice(0, 20).join(', ')}` : 'The layout has no tagged images.',
      });
    }
    return hits[hits.length - 1]!;
  }
  if (index.manifests.length === 1) return index.manifests[0]!;
  const tags = index.manifests.map((m) => m.annotations?.[REF_NAME]).filter((t): t is string => t !== undefined);
  throw new OciError('HPCC_E_OCI_TAG', `${where} holds ${index.manifests.length} images; name one with :TAG`, {
    hint: tags.length > 0 ? `Tags there: ${tags.slice(0, 20).join(', ')}` : 'Give the tag after the path, e.g. oci:DIR:latest.',
  });
}

/**
 * From a descriptor (manifest or nested index) to a ResolvedImage: nested
 * indexes are followed (bounded depth) choosing the wanted platform.
 */
export async function resolveFromStore(
  store: BlobStore,
  start: OciDescriptor,
  opts: { platform?: OciPlatform; reference: string; where: string },
): Promise<ResolvedImage> {
  const want = opts.platform ?? hostPlatform();
  let desc = start;
  for (let depth = 0; ; depth++) {
    if (depth > 4) throw new OciError('HPCC_E_OCI_MANIFEST', `indexes nested more than 4 deep in ${opts.where}`);
    const bytes = await readSmallBlob(store, desc, `manifest ${desc.digest}`);
    const parsed = parseManifest(bytes, desc.mediaType);
    if (parsed.kind === 'index') {
      desc = selectManifest(parsed.manifests, want, opts.reference);
      continue;
    }
    if (isIndexType(desc.mediaType)) throw new OciError('HPCC_E_OCI_MANIFEST', `descriptor says index but ${desc.digest} is a manifest`);
    const configBytes = await readSmallBlob(store, parsed.config, `config ${parsed.config.digest}`);
    const config = parseImageConfig(configBytes);
    const platform: OciPlatform = {
      os: config.os ?? desc.platform?.os ?? 'linux',
      architecture: config.architecture ?? desc.platform?.architecture ?? want.architecture,
    };
    const variant = config.variant ?? desc.platform?.variant;
    if (variant) platform.variant = variant;
    if (opts.platform !== undefined && start === desc && config.architecture !== undefined && config.architecture !== want.architecture) {
      throw new OciError('HPCC_E_OCI_PLATFORM', `${opts.reference} is ${formatPlatform(platform)}, not ${formatPlatform(want)}`, {
        hint: 'Drop --platform/--arch to convert the image as it is.',
      });
    }
    return {
      reference: opts.reference,
      manifestDigest: desc.digest,
      configBytes,
      config,
      layers: parsed.layers.map((l, i) => storeLayer(store, l, `layer ${i + 1} (${l.digest})`)),
      platform,
      close: () => store.close(),
    };
  }
}
