/**
 * Archive sources, read in place (the archive is indexed, blobs are streamed
 * from their offsets):
 *  - `oci-archive:FILE[:tag]`: a tar of an OCI image layout;
 *  - `docker-archive:FILE[:name:tag|@N]`: `docker save` / skopeo output —
 *    manifest.json `[{Config, RepoTags, Layers}]`, layers uncompressed tars
 *    or gzip. Layer files have no stored digest, so their integrity comes
 *    from the config's rootfs.diff_ids, checked by the flattener on the
 *    uncompressed stream; the config is checked against its file name when
 *    that is a sha256 (newer docker save) .
 */
import { createHash } from 'node:crypto';
import { OciError } from '../../errors/index.js';
import { MAX_MANIFEST_BYTES, MT, parseImageConfig, parseManifest } from '../manifest.js';
import { formatPlatform, hostPlatform, platformMatches } from '../platform.js';
import type { ImageSource, LayerRef, OciPlatform, ResolvedImage } from '../types.js';
import { verifyBytes } from '../verify.js';
import { TarArchive } from './archive-index.js';
import { missingBlob, pickFromTopIndex, resolveFromStore, type BlobStore } from './store.js';

class ArchiveStore implements BlobStore {
  constructor(private readonly ar: TarArchive) {}
  async stream(digest: string): Promise<AsyncIterable<Uint8Array>> {
    const [alg, hex] = digest.split(':');
    const e = this.ar.find(`blobs/${alg}/${hex}`);
    if (e === undefined) throw missingBlob(digest, `archive ${this.ar.file}`);
    return this.ar.stream(e);
  }
  async sizeOf(digest: string): Promise<number | undefined> {
    const [alg, hex] = digest.split(':');
    return this.ar.find(`blobs/${alg}/${hex}`)?.size;
  }
  close(): Promise<void> {
    return this.ar.close();
  }
}

export class OciArchiveSource implements ImageSource {
  constructor(
    private readonly file: string,
    private readonly tag: string | undefined,
    private readonly reference: string,
  ) {}

  async resolve(opts: { platform?: OciPlatform }): Promise<ResolvedImage> {
    const ar = await TarArchive.open(this.file);
    try {
      const where = `archive ${this.file}`;
      const idx = ar.find('index.json');
      if (idx === undefined || ar.find('oci-layout') === undefined) {
        throw new OciError('HPCC_E_OCI_LAYOUT', `${this.file} is not an OCI archive (no index.json / oci-layout)`, {
          hint: ar.find('manifest.json') ? 'It looks like a docker archive: use docker-archive:FILE.' : 'oci-archive:FILE expects a tar of an OCI image layout.',
        });
      }
      const index = parseManifest(await ar.readWhole(idx, MAX_MANIFEST_BYTES, 'index.json'), MT.ociIndex);
      if (index.kind !== 'index') throw new OciError('HPCC_E_OCI_LAYOUT', `${where}: index.json is not an image index`);
      const desc = pickFromTopIndex(index, this.tag, where);
      return await resolveFromStore(new ArchiveStore(ar), desc, { ...(opts.platform ? { platform: opts.platform } : {}), reference: this.reference, where });
    } catch (e) {
      await ar.close();
      throw e;
    }
  }
}

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

function parseDockerManifest(buf: Buffer, file: string): DockerManifestEntry[] {
  let j: unknown;
  try {
    j = JSON.parse(buf.toString('utf8'));
  } catch {
    j = undefined;
  }
  const ok =
    Array.isArray(j) &&
    j.every(
      (m) =>
        m !== null &&
        typeof m === 'object' &&
        typeof (m as DockerManifestEntry).Config === 'string' &&
        Array.isArray((m as DockerManifestEntry).Layers) &&
        (m as DockerManifestEntry).Layers.every((l) => typeof l === 'string') &&
        ((m as DockerManifestEntry).RepoTags == null || (Array.isArray((m as DockerManifestEntry).RepoTags) && (m as DockerManifestEntry).RepoTags!.every((t) => typeof t === 'string'))),
    );
  if (!ok) throw new OciError('HPCC_E_OCI_MANIFEST', `${file}: manifest.json is not a docker-archive manifest`);
  return j as DockerManifestEntry[];
}

/** Normalise a RepoTag the way docker does (docker.io/library/ for short names). */
function normTag(t: string): string {
  const slash = t.indexOf('/');
  const first = slash < 0 ? '' : t.slice(0, slash);
  const hasHost = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  const named = hasHost ? t : `docker.io/${t}`;
  const parts = named.split('/');
  if (parts[0] === 'docker.io' && parts.length === 2) return `docker.io/library/${parts[1]}`;
  return named;
}

export class DockerArchiveSource implements ImageSource {
  constructor(
    private readonly file: string,
    private readonly sel: { ref?: string; index?: number },
    private readonly reference: string,
  ) {}

  async resolve(opts: { platform?: OciPlatform }): Promise<ResolvedImage> {
    const ar = await TarArchive.open(this.file);
    try {
      const me = ar.find('manifest.json');
      if (me === undefined) {
        throw new OciError('HPCC_E_OCI_LAYOUT', `${this.file} is not a docker archive (no manifest.json)`, {
          hint: ar.find('index.json') ? 'It looks like an OCI archive: use oci-archive:FILE.' : 'docker-archive:FILE expects `docker save` output.',
        });
      }
      const list = parseDockerManifest(await ar.readWhole(me, MAX_MANIFEST_BYTES, 'manifest.json'), this.file);
      let m: DockerManifestEntry | undefined;
      if (this.sel.ref !== undefined) {
        const want = normTag(this.sel.ref.replace(/^docker\.io\//, ''));
        m = list.find((x) => (x.RepoTags ?? []).some((t) => normTag(t) === want));
        if (m === undefined) throw new OciError('HPCC_E_OCI_TAG', `no image tagged ${this.sel.ref} in ${this.file}`);
      } else if (this.sel.index !== undefined) {
        m = list[this.sel.index];
        if (m === undefined) throw new OciError('HPCC_E_OCI_TAG', `${this.file} has ${list.length} images, no @${this.sel.index}`);
      } else {
        if (list.length !== 1) {
          throw new OciError('HPCC_E_OCI_TAG', `${this.file} holds ${list.length} images; name one with :name:tag or :@N`);
        }
        m = list[0]!;
      }
      const ce = ar.find(m.Config);
      if (ce === undefined) throw missingBlob(m.Config, `archive ${this.file}`);
      const configBytes = await ar.readWhole(ce, MAX_MANIFEST_BYTES, 'image config');
      const hexName = /(?:^|\/)([a-f0-9]{64})(?:\.json)?$/.exec(m.Config);
      if (hexName) verifyBytes(configBytes, { digest: `sha256:${hexName[1]}` }, `config ${m.Config}`);
      const config = parseImageConfig(configBytes);
      const platform: OciPlatform = { os: config.os ?? 'linux', architecture: config.architecture ?? hostPlatform().architecture };
      if (config.variant) platform.variant = config.variant;
      if (opts.platform !== undefined && !platformMatches(opts.platform, platform)) {
        throw new OciError('HPCC_E_OCI_PLATFORM', `${this.reference} is ${formatPlatform(platform)}, not ${formatPlatform(opts.platform)}`);
      }
      const diffIds = config.rootfs?.diff_ids ?? [];
      const layers: LayerRef[] = m.Layers.map((name, i) => {
        const e = ar.find(name);
        if (e === undefined) throw missingBlob(name, `archive ${this.file}`);
        const hex = /(?:^|\/)([a-f0-9]{64})(?:\/layer\.tar|\.tar)?$/.exec(name);
        return {
          digest: diffIds[i] ?? (hex ? `sha256:${hex[1]}` : `sha256:${'0'.repeat(64)}`),
          size: e.size,
          mediaType: 'application/vnd.docker.image.rootfs.diff.tar',
          open: async () => ar.stream(e),
        };
      });
      return {
        reference: this.reference,
        manifestDigest: `sha256:${createHash('sha256').update(configBytes).digest('hex')}`,
        configBytes,
        config,
        layers,
        platform,
        close: () => ar.close(),
      };
    } catch (e) {
      await ar.close();
      throw e;
    }
  }
}
