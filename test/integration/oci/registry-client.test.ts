/**
 * The registry client and RegistrySource against Debian's docker-registry on
 * 127.0.0.1 (no auth, htpasswd Basic, Bearer tokens), with fixtures pushed by
 * skopeo from umoci layouts, and faults injected by a proxy.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DigestMismatchError, HpccError } from '../../../src/errors/index.js';
import { BlobCache } from '../../../src/oci/cache/store.js';
import { parseReference, type DockerRef } from '../../../src/oci/reference.js';
import { storeCredentials } from '../../../src/oci/registry/auth.js';
import { RegistryClient } from '../../../src/oci/registry/client.js';
import { RegistryError } from '../../../src/oci/registry/errors.js';
import { RegistrySource } from '../../../src/oci/registry-source.js';
import { makeTempDir, removeTree, requireTools } from '../../helpers/env.js';
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js';
import { holdLockInChild } from '../../helpers/lock-holder.js';
import { addMultiPlatformIndex, layoutManifest, makeSmallTrees, startSmallImageRegistry, umociImage, type SmallImageRegistry } from '../../helpers/registry-fixtures.js';
import {
  TEST_PASSWORD,
  TEST_USER_NAME,
  registryBlobFile,
  skopeoDigest,
  skopeoPush,
  startRegistry,
  type TestRegistry,
} from '../../helpers/registry.js';

const TOOLS = ['docker-registry', 'skopeo', 'umoci', 'htpasswd', 'openssl'];
const sha256File = (p: string) => `sha256:${createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`;
const ref = (s: string) => parseReference(s) as DockerRef;

async function expectReject(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

function cacheFiles(cache: BlobCache): string[] {
  return fs.existsSync(cache.blobDir) ? fs.readdirSync(cache.blobDir).sort() : [];
}

describe('registry client against docker-registry (no auth)', function () {
  this.timeout(60_000);
  let work: string;
  let layout: string;
  let reg: TestRegistry | undefined;
  let env: NodeJS.ProcessEnv;

  before(async function () {
    requireTools(this, ...TOOLS);
    work = makeTempDir('hpcc-reg-');
    layout = path.join(work, 'layout');
    const trees = makeSmallTrees(work);
    umociImage(layout, 'small', trees);
    const other = path.join(work, 'other');
    fs.mkdirSync(path.join(other, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(other, 'etc', 'other'), 'the arm64 one\n');
    umociImage(layout, 'other', [other]);
    addMultiPlatformIndex(layout, 'multi', 'small', 'other');
    reg = await startRegistry('none');
    await skopeoPush(reg, `oci:${layout}:small`, 'lab/small:latest');
    await skopeoPush(reg, `oci:${layout}:small`, 'lab/small:v2s2', ['--format', 'v2s2']);
    await skopeoPush(reg, `oci:${layout}:multi`, 'lab/multi:latest', ['--all']);
    env = { ...process.env, HOME: work, XDG_CONFIG_HOME: path.join(work, 'cfg'), DOCKER_CONFIG: path.join(work, 'docker') };
  });
  after(async () => {
    await reg?.stop();
    if (work) removeTree(work);
  });

  const source = (r: string, cache: BlobCache, extra: Partial<ConstructorParameters<typeof RegistrySource>[1]> = {}) =>
    new RegistrySource(ref(r), { insecure: true, cache, env, ...extra });

  for (const [tag, mt] of [
    ['latest', 'application/vnd.oci.image.layer.v1.tar+gzip'],
    ['v2s2', 'application/vnd.docker.image.rootfs.diff.tar.gzip'],
  ] as const) {
    it(`resolves and downloads lab/small:${tag} into the cache, matching skopeo's digests`, async () => {
      const cache = new BlobCache(path.join(work, `cache-${tag}`));
      const img = await source(`docker://${reg!.host}/lab/small:${tag}`, cache).resolve({ platform: { os: 'linux', architecture: 'amd64' } });
      try {
        expect(img.manifestDigest).to.equal(await skopeoDigest(reg!, `lab/small:${tag}`));
        expect(img.layers).to.have.length(2);
        expect(img.layers.every((l) => l.mediaType === mt)).to.equal(true);
        const m = layoutManifest(layout, 'small');
        if (tag === 'latest') expect(img.layers.map((l) => l.digest)).to.deep.equal(m.layers.map((l) => l.digest));
        expect(img.config.config?.Cmd).to.deep.equal(['/bin/sh']);
        await img.fetchAll();
        const paths = img.layerPaths();
        img.layers.forEach((l, i) => {
          expect(sha256File(paths[i]!)).to.equal(l.digest);
          expect(fs.statSync(paths[i]!).size).to.equal(l.size);
        });
        // open() streams the cached bytes
        const chunks: Uint8Array[] = [];
        for await (const c of await img.layers[1]!.open()) chunks.push(c);
        expect(`sha256:${createHash('sha256').update(Buffer.concat(chunks)).digest('hex')}`).to.equal(img.layers[1]!.digest);
        expect(cacheFiles(cache).filter((n) => n.startsWith('.'))).to.deep.equal([]);
      } finally {
        await img.close();
      }
    });
  }

  it('chooses the platform from a multi-platform index, and reports platforms it lacks', async () => {
    const cache = new BlobCache(path.join(work, 'cache-multi'));
    const small = layoutManifest(layout, 'small');
    const amd = await source(`docker://${reg!.host}/lab/multi`, cache).resolve({ platform: { os: 'linux', architecture: 'amd64' } });
    expect(amd.layers.map((l) => l.digest)).to.deep.equal(small.layers.map((l) => l.digest));
    await amd.close();
    const arm = await source(`docker://${reg!.host}/lab/multi`, cache).resolve({ platform: { os: 'linux', architecture: 'arm64' } });
    expect(arm.layers).to.have.length(1);
    expect(arm.platform.architecture).to.equal('amd64'); // the fake arm64 entry's config says amd64
    await arm.fetchAll();
    await arm.close();
    const e = await expectReject(source(`docker://${reg!.host}/lab/multi`, cache).resolve({ platform: { os: 'linux', architecture: 's390x' } }));
    expect((e as HpccError).code).to.equal('HPCC_E_OCI_PLATFORM');
    expect((e as HpccError).hint).to.match(/linux\/amd64/);
  });

  it('pulls by digest and verifies the manifest digest', async () => {
    const cache = new BlobCache(path.join(work, 'cache-digest'));
    const d = await skopeoDigest(reg!, 'lab/small:latest');
    const img = await source(`docker://${reg!.host}/lab/small@${d}`, cache).resolve({});
    expect(img.manifestDigest).to.equal(d);
    await img.close();
    const missing = `sha256:${'0'.repeat(64)}`;
    const e = await expectReject(source(`docker://${reg!.host}/lab/small@${missing}`, cache).resolve({}));
    expect(e).to.be.instanceOf(RegistryError);
    expect((e as RegistryError).status).to.equal(404);
    expect((e as RegistryError).code).to.equal('HPCC_E_REGISTRY_NOT_FOUND');
  });

  it('404 for an unknown repository names the registry error code', async () => {
    const cache = new BlobCache(path.join(work, 'cache-404'));
    const e = await expectReject(source(`docker://${reg!.host}/lab/nope:latest`, cache).resolve({}));
    expect((e as RegistryError).code).to.equal('HPCC_E_REGISTRY_NOT_FOUND');
    expect((e as RegistryError).registryCode).to.match(/^(NAME|MANIFEST)_UNKNOWN$/); // distribution 2.8 says MANIFEST_UNKNOWN
    expect(e.message).to.match(/not found on 127\.0\.0\.1:\d+ \(HTTP 404\)/);
  });

  it('a tampered blob in the registry storage → digest error, nothing left in the cache', async () => {
    const t = path.join(work, 'tampered-tree');
    fs.mkdirSync(path.join(t, 'srv'), { recursive: true });
    fs.writeFileSync(path.join(t, 'srv', 'unique'), `only in the tamper image ${Date.now()}\n`.repeat(1000));
    umociImage(layout, 'tamper', [t]);
    await skopeoPush(reg!, `oci:${layout}:tamper`, 'lab/tamper:latest');
    const layer = layoutManifest(layout, 'tamper').layers[0]!;
    const f = registryBlobFile(reg!, layer.digest);
    const b = fs.readFileSync(f);
    b[Math.floor(b.length / 2)]! ^= 0xff;
    fs.writeFileSync(f, b);
    const cache = new BlobCache(path.join(work, 'cache-tamper'));
    const img = await source(`docker://${reg!.host}/lab/tamper`, cache).resolve({});
    const e = await expectReject(img.fetchAll());
    await img.close();
    expect(e).to.be.instanceOf(DigestMismatchError);
    expect((e as HpccError).code).to.equal('HPCC_E_OCI_DIGEST');
    expect(cacheFiles(cache)).to.deep.equal([]);
  });

  it('blob download: more bytes than declared → digest error at once; a file that cannot be written → its error, not retried', async () => {
    const client = new RegistryClient({ registry: reg!.host, insecure: true, retries: 2, retryBaseMs: 10 });
    const big = layoutManifest(layout, 'small').layers.reduce((a, l) => (l.size > a.size ? l : a));
    expect(big.size).to.be.greaterThan(1 << 20); // more than one write batch
    const p = path.join(work, 'dl-blob');
    let fh = await fs.promises.open(p, 'w');
    try {
      const e = await expectReject(client.downloadBlob('lab/small', big.digest, big.size - 1, fh));
      expect(e).to.be.instanceOf(DigestMismatchError);
      expect(e.message).to.contain(`more than the ${big.size - 1} bytes`);
    } finally {
      await fh.close();
    }
    fh = await fs.promises.open(p, 'r');
    try {
      const e = await expectReject(client.downloadBlob('lab/small', big.digest, big.size, fh));
      expect((e as NodeJS.ErrnoException).code).to.equal('EBADF');
    } finally {
      await fh.close();
    }
    fh = await fs.promises.open(p, 'w');
    const seen: number[] = [];
    try {
      await client.downloadBlob('lab/small', big.digest, big.size, fh, (n) => seen.push(n));
    } finally {
      await fh.close();
    }
    expect(sha256File(p)).to.equal(big.digest);
    expect(seen[seen.length - 1]).to.equal(big.size);
    expect(seen).to.deep.equal([...seen].sort((a, b) => a - b));
  });

  describe('through a fault proxy', () => {
    let proxy: FaultProxy;
    beforeEach(async () => {
      proxy = await startFaultProxy(reg!.host);
    });
    afterEach(async () => {
      await proxy?.stop();
    });
    const viaProxy = (cache: BlobCache, retries = 3) =>
      new RegistrySource(ref(`docker://${proxy.host}/lab/small:latest`), {
        cache,
        env,
        client: new RegistryClient({ registry: proxy.host, insecure: true, retries, retryBaseMs: 10 }),
        concurrency: 1,
      });

    // Cut before the first 1 MiB write batch, and after it (bytes already written in the background).
    for (const cutAt of [300_000, 1_100_000])
    it(`resumes a blob with Range after the connection drops mid-blob (after ${cutAt} bytes)`, async () => {
      proxy.cutBlobAfter = cutAt;
      proxy.statusPath = /^$/;
      const cache = new BlobCache(path.join(work, `cache-cut-${cutAt}`));
      const img = await viaProxy(cache).resolve({});
      await img.fetchAll();
      await img.close();
      img.layers.forEach((l, i) => expect(sha256File(img.layerPaths()[i]!)).to.equal(l.digest));
      const cut = proxy.log.find((r) => r.cut);
      expect(cut, JSON.stringify(proxy.log)).to.not.equal(undefined);
      const resumed = proxy.log.find((r) => r.path === cut!.path && r.range !== undefined);
      expect(resumed?.range).to.match(/^bytes=[1-9]\d*-$/);
      expect(resumed?.status).to.equal(206);
      expect(cacheFiles(cache).filter((n) => n.startsWith('.'))).to.deep.equal([]);
    });

    it('a layer another process holds the lock of: its early GET is dropped, and it is fetched once that process dies without it', async () => {
      const cache = new BlobCache(path.join(work, 'cache-held'));
      const events: string[] = [];
      const img = await new RegistrySource(ref(`docker://${proxy.host}/lab/small:latest`), {
        cache,
        env,
        client: new RegistryClient({ registry: proxy.host, insecure: true, retryBaseMs: 10 }),
        onEvent: (ev) => events.push(`${ev.type}${'index' in ev ? ` ${ev.index}` : ''}`),
      }).resolve({});
      const held = img.layers[0]!;
      await cache.prepare();
      const child = await holdLockInChild(cache.lockPath('blob', held.digest.slice(7)));
      try {
        const all = img.fetchAll();
        while (!events.includes('layer-wait 0')) await new Promise((r) => setTimeout(r, 20));
        child.kill('SIGKILL');
        await all;
        await img.close();
      } finally {
        child.kill('SIGKILL');
      }
      img.layers.forEach((l, i) => expect(sha256File(img.layerPaths()[i]!)).to.equal(l.digest));
      // one GET sent before the lock was known to be busy (dropped), one after the holder died
      const gets = proxy.log.filter((r) => r.path.endsWith(held.digest));
      expect(gets, JSON.stringify(proxy.log)).to.have.length(2);
      expect(cacheFiles(cache)).to.deep.equal(img.layers.map((l) => l.digest.slice(7)).sort());
      expect(fs.readdirSync(cache.lockDir)).to.deep.equal([]);
    });

    it('restarts from byte 0 when the server ignores Range', async () => {
      proxy.cutBlobAfter = 300_000;
      proxy.ignoreRange = true;
      const cache = new BlobCache(path.join(work, 'cache-norange'));
      const img = await viaProxy(cache).resolve({});
      await img.fetchAll();
      await img.close();
      img.layers.forEach((l, i) => expect(sha256File(img.layerPaths()[i]!)).to.equal(l.digest));
      expect(proxy.log.filter((r) => r.cut)).to.have.length(1);
    });

    it('retries 429/500 with backoff, then succeeds', async () => {
      proxy.status = 429;
      proxy.statusTimes = 2;
      const cache = new BlobCache(path.join(work, 'cache-429'));
      const img = await viaProxy(cache).resolve({});
      await img.fetchAll();
      await img.close();
      expect(proxy.log.slice(0, 2).map((r) => r.status)).to.deep.equal([429, 429]);
    });

    it('a registry that keeps answering 500 → RegistryError after bounded retries', async () => {
      proxy.status = 500;
      const cache = new BlobCache(path.join(work, 'cache-500'));
      const e = await expectReject(viaProxy(cache, 2).resolve({}));
      expect(e).to.be.instanceOf(RegistryError);
      expect((e as RegistryError).code).to.equal('HPCC_E_REGISTRY_SERVER');
      expect((e as RegistryError).status).to.equal(500);
      expect(e.message).to.match(/HTTP 500 \(UNKNOWN: injected HTTP 500\)/);
      expect(proxy.log).to.have.length(3); // 1 + 2 retries
    });

    it('a registry answering 401 without a challenge → unauthorized, with a login hint', async () => {
      proxy.status = 401;
      const e = await expectReject(viaProxy(new BlobCache(path.join(work, 'cache-401'))).resolve({}));
      expect((e as RegistryError).code).to.equal('HPCC_E_REGISTRY_UNAUTHORIZED');
      expect((e as RegistryError).hint).to.match(/hpcc registry login/);
    });
  });

  it('a Docker config naming a credential helper that is not installed does not stop a pull the registry serves anonymously', async () => {
    const dc = path.join(work, 'docker-absent-helper');
    fs.mkdirSync(dc, { recursive: true });
    fs.writeFileSync(path.join(dc, 'config.json'), JSON.stringify({ credsStore: 'hpcc-test-absent' }));
    const cache = new BlobCache(path.join(work, 'cache-absent-helper'));
    const img = await source(`docker://${reg!.host}/lab/small:latest`, cache, { env: { ...env, DOCKER_CONFIG: dc } }).resolve({});
    await img.fetchAll();
    await img.close();
    expect(cacheFiles(cache)).to.deep.equal(img.layers.map((l) => l.digest.slice(7)).sort());
  });

  it('two concurrent pulls in one process share one download per blob', async () => {
    const cache = new BlobCache(path.join(work, 'cache-conc'));
    const [a, b] = await Promise.all([
      source(`docker://${reg!.host}/lab/small:latest`, cache).resolve({}),
      source(`docker://${reg!.host}/lab/small:latest`, cache).resolve({}),
    ]);
    await Promise.all([a.fetchAll(), b.fetchAll()]);
    await Promise.all([a.close(), b.close()]);
    expect(cacheFiles(cache)).to.deep.equal(a.layers.map((l) => l.digest.slice(7)).sort());
  });
});

describe('registry client with htpasswd Basic auth', function () {
  this.timeout(60_000);
  let small: SmallImageRegistry | undefined;
  let work: string;
  let reg: TestRegistry | undefined;
  before(async function () {
    requireTools(this, ...TOOLS);
    small = await startSmallImageRegistry('hpcc-reg-basic-', 'basic', { bigBytes: 64 * 1024 });
    ({ work, reg } = small);
  });
  after(async () => {
    await small?.stop();
  });

  it('anonymous → 401 with a login hint', async () => {
    const env = { HOME: path.join(work, 'home-anon') };
    const e = await expectReject(
      new RegistrySource(ref(`docker://${reg!.host}/lab/small`), { insecure: true, env, cache: new BlobCache(path.join(work, 'c1')) }).resolve({}),
    );
    expect((e as RegistryError).code).to.equal('HPCC_E_REGISTRY_UNAUTHORIZED');
    expect((e as RegistryError).hint).to.contain(`hpcc registry login ${reg!.host}`);
  });

  it('credentials from a Docker config.json (auths, base64 user:pass)', async () => {
    const home = path.join(work, 'home-docker');
    fs.mkdirSync(path.join(home, '.docker'), { recursive: true });
    const auth = Buffer.from(`${TEST_USER_NAME}:${TEST_PASSWORD}`).toString('base64');
    fs.writeFileSync(path.join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [`http://${reg!.host}`]: { auth } } }));
    const img = await new RegistrySource(ref(`docker://${reg!.host}/lab/small`), {
      insecure: true,
      env: { HOME: home },
      cache: new BlobCache(path.join(work, 'c2')),
    }).resolve({});
    await img.fetchAll();
    await img.close();
  });

  it('credentials from a Docker credential helper (credHelpers → docker-credential-NAME get)', async () => {
    const home = path.join(work, 'home-helper');
    const bin = path.join(work, 'helper-bin');
    fs.mkdirSync(path.join(home, '.docker'), { recursive: true });
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(
      path.join(bin, 'docker-credential-hpcc-test'),
      `#!/bin/sh\nread -r url\n[ "$url" = "${reg!.host}" ] || { echo "credentials not found"; exit 1; }\n` +
        `printf '{"ServerURL":"%s","Username":"${TEST_USER_NAME}","Secret":"${TEST_PASSWORD}"}' "$url"\n`,
      { mode: 0o755 },
    );
    fs.writeFileSync(path.join(home, '.docker', 'config.json'), JSON.stringify({ credHelpers: { [reg!.host]: 'hpcc-test' } }));
    const img = await new RegistrySource(ref(`docker://${reg!.host}/lab/small`), {
      insecure: true,
      env: { HOME: home, PATH: `${bin}:/usr/bin:/bin` },
      cache: new BlobCache(path.join(work, 'c-helper')),
    }).resolve({});
    await img.fetchAll();
    await img.close();
  });

  it('a registry that asks for credentials while the named credential helper is missing → the helper error', async () => {
    const dc = path.join(work, 'docker-absent-helper');
    fs.mkdirSync(dc, { recursive: true });
    fs.writeFileSync(path.join(dc, 'config.json'), JSON.stringify({ credsStore: 'hpcc-test-absent' }));
    const e = await expectReject(
      new RegistrySource(ref(`docker://${reg!.host}/lab/small`), { insecure: true, env: { HOME: work, DOCKER_CONFIG: dc }, cache: new BlobCache(path.join(work, 'c-absent')) }).resolve({}),
    );
    expect((e as HpccError).code).to.equal('HPCC_E_AUTH_HELPER');
    expect(e.message).to.match(/hpcc-test-absent/);
  });

  it('wrong password → 401', async () => {
    const home = path.join(work, 'home-bad');
    await storeCredentials(reg!.host, TEST_USER_NAME, 'wrong', { HOME: home });
    const e = await expectReject(
      new RegistrySource(ref(`docker://${reg!.host}/lab/small`), { insecure: true, env: { HOME: home }, cache: new BlobCache(path.join(work, 'c3')) }).resolve({}),
    );
    expect((e as RegistryError).status).to.equal(401);
  });
});

describe('registry client with Bearer tokens from a trusted token issuer', function () {
  this.timeout(60_000);
  let small: SmallImageRegistry | undefined;
  let work: string;
  let reg: TestRegistry | undefined;
  before(async function () {
    requireTools(this, ...TOOLS);
    small = await startSmallImageRegistry('hpcc-reg-token-', 'token', { bigBytes: 64 * 1024, repos: ['lab/small:latest', 'private/small:latest'] });
    ({ work, reg } = small);
  });
  after(async () => {
    await small?.stop();
  });

  it('anonymous token for a public repository', async () => {
    reg!.tokenRequests.length = 0;
    const img = await new RegistrySource(ref(`docker://${reg!.host}/lab/small`), {
      insecure: true,
      env: { HOME: path.join(work, 'anon') },
      cache: new BlobCache(path.join(work, 'c1')),
    }).resolve({});
    await img.fetchAll();
    await img.close();
    expect(reg!.tokenRequests).to.deep.include({ scope: 'repository:lab/small:pull', user: null });
  });

  it('a private repository: anonymous → 401; with `hpcc registry login` credentials → token for alice', async () => {
    const anon = await expectReject(
      new RegistrySource(ref(`docker://${reg!.host}/private/small`), {
        insecure: true,
        env: { HOME: path.join(work, 'anon2') },
        cache: new BlobCache(path.join(work, 'c2')),
      }).resolve({}),
    );
    expect((anon as RegistryError).code).to.equal('HPCC_E_REGISTRY_UNAUTHORIZED');
    const home = path.join(work, 'home-login');
    const file = await storeCredentials(reg!.host, TEST_USER_NAME, TEST_PASSWORD, { HOME: home });
    expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
    reg!.tokenRequests.length = 0;
    const img = await new RegistrySource(ref(`docker://${reg!.host}/private/small`), {
      insecure: true,
      env: { HOME: home },
      cache: new BlobCache(path.join(work, 'c3')),
    }).resolve({});
    await img.fetchAll();
    await img.close();
    expect(reg!.tokenRequests).to.deep.include({ scope: 'repository:private/small:pull', user: TEST_USER_NAME });
  });

  it('rejected credentials at the token service → 401 naming where they came from', async () => {
    const home = path.join(work, 'home-wrong');
    await storeCredentials(reg!.host, TEST_USER_NAME, 'nope', { HOME: home });
    const e = await expectReject(
      new RegistrySource(ref(`docker://${reg!.host}/private/small`), { insecure: true, env: { HOME: home }, cache: new BlobCache(path.join(work, 'c4')) }).resolve({}),
    );
    expect((e as RegistryError).status).to.equal(401);
    expect(e.message).to.contain('auth.json');
  });
});

describe('registry client: HTTPS registry whose token realm is plain HTTP', function () {
  this.timeout(60_000);
  let small: SmallImageRegistry | undefined;
  let reg: TestRegistry | undefined;
  before(async function () {
    requireTools(this, ...TOOLS);
    small = await startSmallImageRegistry('hpcc-reg-realm-', 'token', { tls: true, bigBytes: 16 * 1024, repos: ['private/small:latest'] });
    ({ reg } = small);
  });
  after(async () => {
    await small?.stop();
  });

  it('credentials are never sent to an http:// realm of an https registry', async () => {
    const { Agent } = await import('undici');
    const agent = new Agent({ connect: { ca: fs.readFileSync(reg!.caFile!, 'utf8') } });
    try {
      const client = new RegistryClient({
        registry: reg!.host,
        credentials: { username: TEST_USER_NAME, password: TEST_PASSWORD, source: 'test' },
        dispatcher: agent,
      });
      reg!.tokenRequests.length = 0;
      const e = await expectReject(client.getManifest('private/small', 'latest'));
      expect((e as RegistryError).code).to.equal('HPCC_E_REGISTRY_AUTH');
      expect(e.message).to.contain('plain HTTP');
      expect(reg!.tokenRequests).to.deep.equal([]);
    } finally {
      await agent.close();
    }
  });
});
