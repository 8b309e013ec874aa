/**
 * `oci:DIR[:tag]`: an OCI image layout directory (oci-layout, index.json,
 * blobs/<alg>/<hex>). Blobs are streamed from their files with 1 MiB reads.
 */
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { OciError, addContext } from '../../errors/index.js';
import { MAX_MANIFEST_BYTES, parseManifest } from '../manifest.js';
import { isDigest } from '../reference.js';
import type { ImageSource, OciPlatform, ResolvedImage } from '../types.js';
import { missingBlob, pickFromTopIndex, resolveFromStore, type BlobStore } from './store.js';

export function blobPath(dir: string, digest: string): string {
  if (!isDigest(digest)) throw new OciError('HPCC_E_OCI_MANIFEST', `bad digest ${JSON.stringify(digest.slice(0, 80))}`);
  const [alg, hex] = digest.split(':') as [string, string];
  return path.join(dir, 'blobs', alg, hex);
}

class LayoutStore implements BlobStore {
  constructor(private readonly dir: string) {}
  async stream(digest: string): Promise<AsyncIterable<Uint8Array>> {
    const p = blobPath(this.dir, digest);
    await fs.access(p, fs.constants.R_OK).catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? missingBlob(digest, `layout ${this.dir}`) : addContext(`open blob ${p}`, e);
    });
    return createReadStream(p, { highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>;
  }
  async sizeOf(digest: string): Promise<number | undefined> {
    const st = await fs.stat(blobPath(this.dir, digest)).catch(() => undefined);
    return st?.size;
  }
  async close(): Promise<void> {}
}

/** Read index.json of a layout (checks the oci-layout marker). */
export async function readLayoutIndex(dir: string): Promise<ReturnType<typeof parseManifest>> {
  const marker = await fs.readFile(path.join(dir, 'oci-layout'), 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new OciError('HPCC_E_OCI_LAYOUT', `${dir} is not an OCI image layout (${e.code === 'ENOENT' ? 'no oci-layout file' : e.message})`, {
      hint: 'oci:DIR expects a directory made by umoci, skopeo or buildah (with oci-layout and index.json).',
    });
  });
  let version: unknown;
  try {
    version = (JSON.parse(marker) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch {
    version = undefined;
  }
  if (typeof version !== 'string' || !version.startsWith('1.')) {
    throw new OciError('HPCC_E_OCI_LAYOUT', `${dir}/oci-layout has unsupported imageLayoutVersion ${JSON.stringify(version)}`);
  }
  const fh = await fs.open(path.join(dir, 'index.json'), 'r').catch((e) => {
    throw addContext(`read ${dir}/index.json`, e);
  });
  try {
    const st = await fh.stat();
    if (st.size > MAX_MANIFEST_BYTES) throw new OciError('HPCC_E_OCI_MANIFEST', `${dir}/index.json is too large (${st.size} bytes)`);
    const bytes = await fh.readFile();
    return parseManifest(bytes, 'application/vnd.oci.image.index.v1+json');
  } finally {
    await fh.close();
  }
}

export class OciLayoutSource implements ImageSource {
  constructor(
    private readonly dir: string,
    private readonly tag: string | undefined,
    private readonly reference: string,
  ) {}

  async resolve(opts: { platform?: OciPlatform }): Promise<ResolvedImage> {
    const index = await readLayoutIndex(this.dir);
    if (index.kind !== 'index') throw new OciError('HPCC_E_OCI_LAYOUT', `${this.dir}/index.json is not an image index`);
    const where = `layout ${this.dir}`;
    const desc = pickFromTopIndex(index, this.tag, where);
    return resolveFromStore(new LayoutStore(this.dir), desc, {
      ...(opts.platform ? { platform: opts.platform } : {}),
      reference: this.reference,
      where,
    });
  }
}
