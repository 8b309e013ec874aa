/**
 * RegistrySource's `prefetch`: layer downloads that start as soon as the
 * manifest is known (overlapping the config fetch), against Debian's
 * docker-registry on 127.0.0.1. No timing: what is checked is which blobs
 * reach the cache without open()/fetchAll(), the event order, and that a
 * failed config fetch leaves no download running and no temp file behind.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DigestMismatchError } from '../../../src/errors/index.js';
import { BlobCache } from '../../../src/oci/cache/store.js';
import { parseReference, type DockerRef } from '../../../src/oci/reference.js';
import { RegistrySource, type PullEvent } from '../../../src/oci/registry-source.js';
import { requireTools } from '../../helpers/env.js';
import { layoutManifest, startSmallImageRegistry, umociImage, type SmallImageRegistry } from '../../helpers/registry-fixtures.js';
import { registryBlobFile, skopeoPush, type TestRegistry } from '../../helpers/registry.js';

const ref = (s: string) => parseReference(s) as DockerRef;
const cached = (cache: BlobCache) => (fs.existsSync(cache.blobDir) ? fs.readdirSync(cache.blobDir).sort() : []);

describe('registry source: prefetch of the layers while the config is fetched', function () {
  this.timeout(60_000);
  let small: SmallImageRegistry | undefined;
  let work: string;
  let layout: string;
  let reg: TestRegistry | undefined;
  let env: NodeJS.ProcessEnv;

  before(async function () {
    requireTools(this, 'docker-registry', 'skopeo', 'umoci');
    small = await startSmallImageRegistry('hpcc-prefetch-', 'none');
    ({ work, layout, reg } = small);
    env = { ...process.env, HOME: work, XDG_CONFIG_HOME: path.join(work, 'cfg'), DOCKER_CONFIG: path.join(work, 'docker') };
  });
  after(async () => {
    await small?.stop();
  });

  const source = (name: string, cache: BlobCache, extra: Partial<ConstructorParameters<typeof RegistrySource>[1]> = {}) =>
    new RegistrySource(ref(`docker://${reg!.host}/${name}`), { insecure: true, cache, env, concurrency: 8, ...extra });

  it('prefetch → true: every layer is downloaded without open()/fetchAll(); the manifest event comes first', async () => {
    const cache = new BlobCache(path.join(work, 'c-yes'));
    const asked: string[] = [];
    const events: PullEvent[] = [];
    const img = await source('lab/small', cache, {
      prefetch: (d) => {
        asked.push(d);
        return true;
      },
      onEvent: (ev) => events.push(ev),
    }).resolve({});
    await img.close(); // waits for the started downloads (close starts none)
    expect(asked).to.deep.equal([img.manifestDigest]);
    const layers = layoutManifest(layout, 'small').layers.map((l) => l.digest.slice(7));
    expect(cached(cache)).to.deep.equal([...layers].sort());
    expect(events[0]?.type).to.equal('manifest');
    expect(events.filter((e) => e.type === 'layer-done').length).to.equal(layers.length);
  });

  it('prefetch → false (e.g. the SIF is cached) or absent: nothing is downloaded', async () => {
    for (const [name, extra] of [
      ['c-no', { prefetch: async () => false }],
      ['c-absent', {}],
    ] as const) {
      const cache = new BlobCache(path.join(work, name));
      const img = await source('lab/small', cache, extra).resolve({});
      await img.close();
      expect(cached(cache), name).to.deep.equal([]);
    }
  });

  it('a --platform checked against the config of a plain manifest: prefetch is not asked', async () => {
    const cache = new BlobCache(path.join(work, 'c-plat'));
    let asked = 0;
    const img = await source('lab/small', cache, { prefetch: () => (asked++, true) }).resolve({ platform: { os: 'linux', architecture: 'amd64' } });
    await img.close();
    expect(asked).to.equal(0);
    expect(cached(cache)).to.deep.equal([]);
  });

  it('a config that fails its digest check after the downloads started: the error, no download left running, no temp file', async () => {
    const t = path.join(work, 'badcfg-tree');
    fs.mkdirSync(path.join(t, 'srv'), { recursive: true });
    fs.writeFileSync(path.join(t, 'srv', 'f'), `bad config image ${Date.now()}\n`.repeat(20000));
    umociImage(layout, 'badcfg', [t]);
    await skopeoPush(reg!, `oci:${layout}:badcfg`, 'lab/badcfg:latest');
    const cfg = layoutManifest(layout, 'badcfg').config;
    const f = registryBlobFile(reg!, cfg.digest);
    const b = fs.readFileSync(f);
    b[1]! ^= 0x01; // same size, other digest
    fs.writeFileSync(f, b);
    const cache = new BlobCache(path.join(work, 'c-badcfg'));
    let asked = 0;
    let err: unknown;
    try {
      await source('lab/badcfg', cache, { prefetch: () => (asked++, true) }).resolve({});
    } catch (e) {
      err = e;
    }
    expect(asked).to.equal(1);
    expect(err).to.be.instanceOf(DigestMismatchError);
    // resolve() settled only after the started download did: no temp file, no lock.
    expect(cached(cache).filter((n) => n.startsWith('.'))).to.deep.equal([]);
    expect(fs.existsSync(cache.lockDir) ? fs.readdirSync(cache.lockDir) : []).to.deep.equal([]);
  });
});
