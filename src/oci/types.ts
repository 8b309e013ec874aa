/**
 * The boundary between image sources (registry, oci: layout, archives) and
 * the converter that streams layers into a SIF. A source resolves a
 * reference to a platform-specific image: its config and its layers in
 * order, each layer opened as a stream of the blob's stored bytes (still
 * compressed), verified against digest and size by the source.
 */

export interface OciDescriptor {
  mediaType: string;
  digest: string; // "sha256:<hex>"
  size: number;
  annotations?: Record<string, string>;
  platform?: OciPlatform;
}

export interface OciPlatform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The parts of the OCI image config hpcc uses (application/vnd.oci.image.config.v1+json). */
export interface OciImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, unknown>;
    Volumes?: Record<string, unknown>;
    StopSignal?: string;
  };
  rootfs?: { type: string; diff_ids: string[] };
  history?: unknown[];
  created?: string;
}

export interface LayerRef {
  /** digest of the stored (compressed) blob */
  digest: string;
  size: number;
  /** e.g. application/vnd.oci.image.layer.v1.tar+gzip, ...tar+zstd, ...tar, docker's ...rootfs.diff.tar.gzip */
  mediaType: string;
  /** the stored bytes, verified against digest and size while streaming (throws DigestMismatch at the end) */
  open(): Promise<AsyncIterable<Uint8Array>>;
}

export interface ResolvedImage {
  /** the reference as the user gave it, normalised (e.g. docker.io/library/alpine:latest) */
  reference: string;
  /** digest of the platform manifest */
  manifestDigest: string;
  /** raw bytes of the image config (stored as the SIF's oci-config.json) */
  configBytes: Uint8Array;
  config: OciImageConfig;
  layers: LayerRef[];
  platform: OciPlatform;
  /** release resources (temp dirs, open archives) */
  close(): Promise<void>;
}

export interface ImageSource {
  resolve(opts: { platform?: OciPlatform }): Promise<ResolvedImage>;
}
