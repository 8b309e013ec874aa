import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { DigestMismatchError, OciError } from '../../../src/errors/index.js';
import { MT, layerCompression, parseImageConfig, parseManifest } from '../../../src/oci/manifest.js';
import { verifyBytes, verifyStream } from '../../../src/oci/verify.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const desc = (mediaType: string, c = 'a', extra: object = {}) => ({ mediaType, digest: D(c), size: 10, ...extra });
const j = (v: unknown) => Buffer.from(JSON.stringify(v));

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(OciError);
    return (e as OciError).code;
  }
  return 'no error';
}

describe('oci/manifest', () => {
  it('reads all four kinds, with and without the optional mediaType', () => {
    const oci = { schemaVersion: 2, config: desc(MT.ociConfig), layers: [desc('application/vnd.oci.image.layer.v1.tar+gzip', 'b')] };
    expect(parseManifest(j(oci))).to.include({ kind: 'manifest', mediaType: MT.ociManifest });
    expect(parseManifest(j({ ...oci, mediaType: MT.dockerManifest }))).to.include({ kind: 'manifest', mediaType: MT.dockerManifest });
    expect(parseManifest(j(oci), `${MT.dockerManifest}; charset=utf-8`)).to.include({ mediaType: MT.dockerManifest });
    const idx = { schemaVersion: 2, manifests: [desc(MT.ociManifest, 'c', { platform: { os: 'linux', architecture: 'amd64' } })] };
    const p = parseManifest(j(idx));
    expect(p.kind).to.equal('index');
    expect(p.kind === 'index' && p.manifests[0]!.platform).to.deep.equal({ os: 'linux', architecture: 'amd64' });
    expect(parseManifest(j({ ...idx, mediaType: MT.dockerList })).mediaType).to.equal(MT.dockerList);
  });

  it('refuses schema 1, bad digests, bad sizes, non-JSON and unknown kinds with typed errors', () => {
    expect(code(() => parseManifest(j({ schemaVersion: 1, fsLayers: [] })))).to.equal('HPCC_E_OCI_SCHEMA1');
    expect(code(() => parseManifest(j({ schemaVersion: 2 }), MT.dockerSchema1Signed))).to.equal('HPCC_E_OCI_SCHEMA1');
    expect(code(() => parseManifest(j({ schemaVersion: 2, config: { ...desc(MT.ociConfig), digest: 'sha256:xyz' }, layers: [] })))).to.equal('HPCC_E_OCI_MANIFEST');
    expect(code(() => parseManifest(j({ schemaVersion: 2, config: { ...desc(MT.ociConfig), size: -1 }, layers: [] })))).to.equal('HPCC_E_OCI_MANIFEST');
    expect(code(() => parseManifest(Buffer.from('{nope')))).to.equal('HPCC_E_OCI_MANIFEST');
    expect(code(() => parseManifest(j([1, 2])))).to.equal('HPCC_E_OCI_MANIFEST');
    expect(code(() => parseManifest(j({ schemaVersion: 2, hello: 1 })))).to.equal('HPCC_E_OCI_MANIFEST');
    expect(code(() => parseManifest(j({ schemaVersion: 2, mediaType: 'application/x-helm', layers: [] })))).to.equal('HPCC_E_OCI_MANIFEST');
    expect(code(() => parseManifest(Buffer.alloc(5 * 1024 * 1024, 0x20)))).to.equal('HPCC_E_OCI_MANIFEST');
  });

  it('validates the config fields it uses', () => {
    const c = parseImageConfig(j({ architecture: 'amd64', os: 'linux', config: { Env: ['A=1'], Cmd: null, Labels: null }, rootfs: { type: 'layers', diff_ids: [D('1')] } }));
    expect(c.config?.Env).to.deep.equal(['A=1']);
    expect(code(() => parseImageConfig(j({ config: { Env: 'A=1' } })))).to.equal('HPCC_E_OCI_MANIFEST');
    expect(code(() => parseImageConfig(j({ config: { Labels: { a: 1 } } })))).to.equal('HPCC_E_OCI_MANIFEST');
    expect(code(() => parseImageConfig(j({ rootfs: { diff_ids: ['x'] } })))).to.equal('HPCC_E_OCI_MANIFEST');
  });

  it('names layer compression from media types', () => {
    expect(layerCompression('application/vnd.oci.image.layer.v1.tar+gzip')).to.equal('gzip');
    expect(layerCompression('application/vnd.docker.image.rootfs.diff.tar.gzip')).to.equal('gzip');
    expect(layerCompression('application/vnd.oci.image.layer.v1.tar+zstd')).to.equal('zstd');
    expect(layerCompression('application/vnd.oci.image.layer.v1.tar')).to.equal('none');
  });
});

describe('oci/verify', () => {
  const data = Buffer.from('hello blob');
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  async function drain(src: AsyncIterable<Uint8Array>): Promise<number> {
    let n = 0;
    for await (const c of src) n += c.length;
    return n;
  }
  async function* chunks(...parts: Buffer[]) {
    yield* parts;
  }

  it('passes matching bytes through', async () => {
    expect(await drain(verifyStream(chunks(data.subarray(0, 3), data.subarray(3)), { digest, size: data.length }, 'b'))).to.equal(data.length);
    verifyBytes(data, { digest, size: data.length }, 'b');
  });

  it('fails at the end on a different digest, and as soon as too many bytes arrive', async () => {
    const bad = Buffer.from(data);
    bad[0]! ^= 1;
    for (const [src, size] of [
      [chunks(bad), data.length],
      [chunks(data.subarray(0, 4)), data.length],
      [chunks(data, Buffer.alloc(1 << 20)), data.length],
    ] as const) {
      let err: unknown;
      try {
        await drain(verifyStream(src, { digest, size }, 'blob'));
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(DigestMismatchError);
      expect((err as DigestMismatchError).code).to.equal('HPCC_E_OCI_DIGEST');
    }
    expect(() => verifyBytes(bad, { digest }, 'b')).to.throw(DigestMismatchError);
    expect(() => verifyBytes(data, { digest: 'md5:00' }, 'b')).to.throw(/unsupported digest algorithm/);
  });
});
