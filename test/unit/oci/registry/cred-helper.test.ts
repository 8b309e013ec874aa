import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HpccError } from '../../../../src/errors/index.js';
import { lookupCredentials, storeCredentials } from '../../../../src/oci/registry/auth.js';
import { makeTempDir, removeTree } from '../../../helpers/env.js';

/** Helper programs on a PATH of their own, as Docker finds docker-credential-NAME. */
const HELPERS: Record<string, string> = {
  // Knows two servers, logs what it was asked on stdin.
  hpcctest: `#!/bin/sh
[ "$1" = get ] || { echo "unexpected action $1" >&2; exit 3; }
read -r url
echo "$url" >> "$HELPER_LOG"
case "$url" in
  127.0.0.1:5000) printf '{"ServerURL":"%s","Username":"alice","Secret":"s3cret:x"}\\n' "$url" ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"hubuser","Secret":"hubpass"}' "$url" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`,
  hang: '#!/bin/sh\nexec sleep 30\n',
  garbage: '#!/bin/sh\ncat > /dev/null; echo "this is not json"\n',
  token: '#!/bin/sh\ncat > /dev/null; echo \'{"Username":"<token>","Secret":"refresh"}\'\n',
  broken: '#!/bin/sh\ncat > /dev/null; echo "keychain locked" >&2; exit 2\n',
};

describe('Docker credential helpers (credHelpers, credsStore)', function () {
  this.timeout(20_000);
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const log = () => (fs.existsSync(env.HELPER_LOG!) ? fs.readFileSync(env.HELPER_LOG!, 'utf8').trim().split('\n') : []);
  const dockerConfig = (cfg: object) => fs.writeFileSync(path.join(dir, 'docker', 'config.json'), JSON.stringify(cfg));
  async function rejection(p: Promise<unknown>): Promise<HpccError> {
    try {
      await p;
    } catch (e) {
      return e as HpccError;
    }
    throw new Error('expected a rejection');
  }

  beforeEach(() => {
    dir = makeTempDir('hpcc-credhelper-');
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.mkdirSync(path.join(dir, 'docker'));
    for (const [name, text] of Object.entries(HELPERS)) fs.writeFileSync(path.join(bin, `docker-credential-${name}`), text, { mode: 0o755 });
    env = {
      PATH: `${bin}:/usr/bin:/bin`,
      HOME: path.join(dir, 'home'),
      DOCKER_CONFIG: path.join(dir, 'docker'),
      HELPER_LOG: path.join(dir, 'helper.log'),
    };
  });
  afterEach(() => removeTree(dir));

  it('credHelpers: the helper named for the registry answers with the host on stdin', async () => {
    dockerConfig({ credHelpers: { '127.0.0.1:5000': 'hpcctest', 'other.example': 'missing' } });
    const c = await lookupCredentials('127.0.0.1:5000', env);
    expect(c).to.deep.include({ username: 'alice', password: 's3cret:x' });
    expect(c!.source).to.contain('docker-credential-hpcctest').and.to.contain(path.join(dir, 'docker', 'config.json'));
    expect(log()).to.deep.equal(['127.0.0.1:5000']);
  });

  it('credsStore: Docker Hub is asked for as https://index.docker.io/v1/; auths entries with credentials come first; "not found" is null', async () => {
    const auth = Buffer.from('bob:frombase64').toString('base64');
    dockerConfig({ credsStore: 'hpcctest', auths: { 'ghcr.io': { auth }, 'https://index.docker.io/v1/': {} } });
    expect(await lookupCredentials('docker.io', env)).to.deep.include({ username: 'hubuser', password: 'hubpass' });
    expect(await lookupCredentials('ghcr.io', env)).to.deep.include({ username: 'bob', password: 'frombase64' });
    expect(await lookupCredentials('quay.io', env)).to.equal(null);
    expect(log()).to.deep.equal(['https://index.docker.io/v1/', 'quay.io']);
  });

  it('credHelpers: a helper without credentials for the server lets the auths entry apply', async () => {
    const auth = Buffer.from('dave:pw').toString('base64');
    dockerConfig({ credHelpers: { 'quay.io': 'hpcctest' }, auths: { 'quay.io': { auth } } });
    expect(await lookupCredentials('quay.io', env)).to.deep.include({ username: 'dave', password: 'pw' });
    expect(log()).to.deep.equal(['quay.io']);
  });

  it("hpcc's own store wins: no helper runs", async () => {
    dockerConfig({ credsStore: 'hpcctest' });
    await storeCredentials('127.0.0.1:5000', 'carol', 'pw', env);
    expect(await lookupCredentials('127.0.0.1:5000', env)).to.deep.include({ username: 'carol', password: 'pw' });
    expect(log()).to.deep.equal([]);
  });

  it('a missing helper is a clear error naming it and the config file (not needed: not run)', async () => {
    const auth = Buffer.from('erin:pw').toString('base64');
    dockerConfig({ credsStore: 'desktop', auths: { 'ghcr.io': { auth } } });
    expect(await lookupCredentials('ghcr.io', env)).to.deep.include({ username: 'erin' });
    const e = await rejection(lookupCredentials('127.0.0.1:5000', env));
    expect(e).to.be.instanceOf(HpccError);
    expect(e.code).to.equal('HPCC_E_AUTH_HELPER');
    expect(e.message).to.contain('docker-credential-desktop').and.to.contain('not found on PATH');
    expect(e.hint).to.contain('hpcc registry login').and.to.contain('config.json');
  });

  it('a helper that hangs is killed after HPCC_CRED_HELPER_TIMEOUT_MS', async () => {
    dockerConfig({ credHelpers: { '127.0.0.1:5000': 'hang' } });
    const e = await rejection(lookupCredentials('127.0.0.1:5000', { ...env, HPCC_CRED_HELPER_TIMEOUT_MS: '300' }));
    expect(e.code).to.equal('HPCC_E_AUTH_HELPER');
    expect(e.message).to.contain('no answer within 0.3 s');
  });

  for (const [name, text] of [
    ['garbage', 'not JSON'],
    ['token', 'identity token'],
    ['broken', 'exit 2): keychain locked'],
    ['../../bin/sh', 'not a valid credential helper name'],
  ] as const) {
    it(`a helper answering badly (${name}) → HPCC_E_AUTH_HELPER`, async () => {
      dockerConfig({ credHelpers: { '127.0.0.1:5000': name } });
      const e = await rejection(lookupCredentials('127.0.0.1:5000', env));
      expect(e.code).to.equal('HPCC_E_AUTH_HELPER');
      expect(e.message).to.contain(text);
    });
  }
});
