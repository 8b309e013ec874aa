/**
 * Manifests and image configs (pure): parse and validate the four manifest
 * kinds a registry or layout can hold — OCI image index, OCI image manifest,
 * Docker manifest list, Docker image manifest v2 schema 2. The top-level
 * `mediaType` field is optional in OCI (umoci omits it), so the kind comes
 * from, in order: the field, the descriptor/Content-Type hint, the content
 * (`manifests` array → index, `config` + `layers` → manifest).
 * Docker schema 1 is refused (deprecated, unsigned content).
 */
import { OciError } from '../errors/index.js';
import { isDigest } from './reference.js';
import type { OciDescriptor, OciImageConfig, OciPlatform } from './types.js';

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** Every manifest type hpcc reads, for an HTTP Accept header. */
export const MANIFEST_ACCEPT = [MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest];

/** Manifests and configs larger than this are refused (bounded memory). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface ParsedIndex {
  kind: 'index';
  mediaType: string;
  manifests: OciDescriptor[];
  annotations?: Record<string, string>;
}

export interface ParsedManifest {
  kind: 'manifest';
  mediaType: string;
  config: OciDescriptor;
  layers: OciDescriptor[];
  annotations?: Record<string, string>;
}

export type ParsedAny = ParsedIndex | ParsedManifest;

export function isIndexType(mt: string | undefined): boolean {
  return mt === MT.ociIndex || mt === MT.dockerList;
}

export function isManifestType(mt: string | undefined): boolean {
  return mt === MT.ociManifest || mt === MT.dockerManifest;
}

function fail(msg: string): OciError {
  return new OciError('HPCC_E_OCI_MANIFEST', msg, { hint: 'The image manifest is malformed or of an unsupported kind; check the image source.' });
}

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.length > MAX_MANIFEST_BYTES) throw fail(`${what} is ${bytes.length} bytes (limit ${MAX_MANIFEST_BYTES})`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch (e) {
    throw fail(`${what} is not JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw fail(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

function strMap(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw fail(`${what} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== 'string') throw fail(`${what}.${k} must be a string`);
    out[k] = x;
  }
  return out;
}

function platformOf(v: unknown, what: string): OciPlatform | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw fail(`${what} must be an object`);
  const p = v as Record<string, unknown>;
  if (typeof p.os !== 'string' || typeof p.architecture !== 'string') throw fail(`${what} needs os and architecture strings`);
  const out: OciPlatform = { os: p.os, architecture: p.architecture };
  if (typeof p.variant === 'string' && p.variant !== '') out.variant = p.variant;
  return out;
}

/** Validate one descriptor (mediaType, digest sha256:<64 hex>, size ≥ 0). */
export function parseDescriptor(v: unknown, what: string): OciDescriptor {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw fail(`${what} is not an object`);
  const d = v as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType.length === 0 || d.mediaType.length > 255) throw fail(`${what} has no mediaType`);
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) {
    throw fail(`${what} digest ${JSON.stringify(String(d.digest).slice(0, 100))} is not sha256:<64 hex digits>`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw fail(`${what} size is not a non-negative integer`);
  const out: OciDescriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  const ann = strMap(d.annotations, `${what}.annotations`);
  if (ann) out.annotations = ann;
  const plat = platformOf(d.platform, `${what}.platform`);
  if (plat) out.platform = plat;
  return out;
}

function descriptorList(v: unknown, what: string, max: number): OciDescriptor[] {
  if (!Array.isArray(v)) throw fail(`${what} is not an array`);
  if (v.length > max) throw fail(`${what} has ${v.length} entries (limit ${max})`);
  return v.map((x, i) => parseDescriptor(x, `${what}[${i}]`));
}

/**
 * Parse a manifest or index. `hint` is the mediaType from the descriptor that
 * pointed here or the HTTP Content-Type (parameters ignored).
 */
export function parseManifest(bytes: Uint8Array, hint?: string): ParsedAny {
  const j = parseJson(bytes, 'manifest');
  const field = typeof j.mediaType === 'string' ? j.mediaType : undefined;
  const h = hint?.split(';')[0]!.trim();
  const known = (t: string | undefined) => t !== undefined && (isIndexType(t) || isManifestType(t));
  let mt = field ?? (known(h) ? h : undefined);
  if (j.schemaVersion === 1 || mt === MT.dockerSchema1 || mt === MT.dockerSchema1Signed || h === MT.dockerSchema1Signed) {
    throw new OciError('HPCC_E_OCI_SCHEMA1', 'Docker schema 1 manifests are not supported', {
      hint: 'Ask the registry for a schema 2 or OCI manifest (push the image again with a current tool).',
    });
  }
  if (j.schemaVersion !== 2) throw fail(`manifest schemaVersion is ${JSON.stringify(j.schemaVersion)}, expected 2`);
  if (mt === undefined) {
    if (Array.isArray(j.manifests)) mt = MT.ociIndex;
    else if (j.config !== undefined && Array.isArray(j.layers)) mt = MT.ociManifest;
    else throw fail('cannot tell the manifest kind: no mediaType, no manifests, no config/layers');
  }
  const annotations = strMap(j.annotations, 'annotations');
  if (isIndexType(mt)) {
    const out: ParsedIndex = { kind: 'index', mediaType: mt, manifests: descriptorList(j.manifests, 'manifests', 4096) };
    if (annotations) out.annotations = annotations;
    return out;
  }
  if (isManifestType(mt)) {
    const out: ParsedManifest = {
      kind: 'manifest',
      mediaType: mt,
      config: parseDescriptor(j.config, 'config'),
      layers: descriptorList(j.layers, 'layers', 4096),
    };
    if (annotations) out.annotations = annotations;
    return out;
  }
  throw fail(`unsupported manifest media type ${JSON.stringify(mt)}`);
}

export type LayerCompression = 'gzip' | 'zstd' | 'none' | 'unknown';

/** Compression named by a layer media type (sniffing the bytes decides when 'unknown'). */
export function layerCompression(mediaType: string): LayerCompression {
  if (/\+gzip$|\.tar\.gzip$|tar\.gzip$/.test(mediaType) || mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip') return 'gzip';
  if (/\+zstd$/.test(mediaType)) return 'zstd';
  if (/\.tar$|layer\.v1\.tar$/.test(mediaType)) return 'none';
  return 'unknown';
}

/** Is this a layer type hpcc can apply (tar, optionally compressed; not encrypted, not foreign URLs)? */
export function checkLayerType(mediaType: string): void {
  if (/encrypted|\+enc/.test(mediaType)) {
    throw new OciError('HPCC_E_OCI_LAYER_TYPE', `encrypted layers (${mediaType}) are not supported`);
  }
  if (!/tar/.test(mediaType) && mediaType !== 'application/octet-stream') {
    throw new OciError('HPCC_E_OCI_LAYER_TYPE', `layer media type ${JSON.stringify(mediaType)} is not a tar layer`, {
      hint: 'This looks like an artifact (Helm chart, WASM, SBOM…) rather than a container image.',
    });
  }
}

/** Parse and lightly validate an image config (only the fields hpcc uses are checked). */
export function parseImageConfig(bytes: Uint8Array): OciImageConfig {
  const j = parseJson(bytes, 'image config') as OciImageConfig & Record<string, unknown>;
  const c = j.config as Record<string, unknown> | undefined | null;
  if (c !== undefined && c !== null) {
    if (typeof c !== 'object' || Array.isArray(c)) throw fail('config.config is not an object');
    const strs = (k: string) => {
      const v = c[k];
      if (v !== undefined && v !== null && (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))) throw fail(`config.${k} must be an array of strings`);
    };
    strs('Env');
    strs('Entrypoint');
    strs('Cmd');
    if (c.Labels !== undefined && c.Labels !== null) strMap(c.Labels, 'config.Labels');
    for (const k of ['User', 'WorkingDir', 'StopSignal']) {
      if (c[k] !== undefined && c[k] !== null && typeof c[k] !== 'string') throw fail(`config.${k} must be a string`);
    }
  } else if (c === null) {
    delete j.config;
  }
  const r = j.rootfs as { type?: unknown; diff_ids?: unknown } | undefined;
  if (r !== undefined && r !== null) {
    if (!Array.isArray(r.diff_ids) || r.diff_ids.some((d) => typeof d !== 'string' || !isDigest(d))) {
      throw fail('config.rootfs.diff_ids must be an array of sha256 digests');
    }
  }
  return j;
}
