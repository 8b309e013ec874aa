import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  dockerConfigPath,
  hpccAuthPath,
  lookupCredentials,
  normalizeRegistryKey,
  removeCredentials,
  storeCredentials,
} from '../../../../src/oci/registry/auth.js';
import { configFiles, insecureRegistries, isInsecureRegistry } from '../../../../src/oci/registry/config.js';
import { passwdHome } from '../../../../src/util/cache-root.js';
import { HpccError } from '../../../../src/errors/index.js';
import { makeTempDir, removeTree } from '../../../helpers/env.js';

describe('registry credentials (auth.ts)', () => {
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir('hpcc-auth-');
  });
  afterEach(() => removeTree(dir));

  it('normalises registry keys: scheme, path, case, Docker Hub aliases', () => {
    expect(normalizeRegistryKey('https://index.docker.io/v1/')).to.equal('docker.io');
    expect(normalizeRegistryKey('registry-1.docker.io')).to.equal('docker.io');
    expect(normalizeRegistryKey('http://127.0.0.1:5000')).to.equal('127.0.0.1:5000');
    expect(normalizeRegistryKey('GHCR.io/org')).to.equal('ghcr.io');
  });

  it('paths follow XDG_CONFIG_HOME, HOME and DOCKER_CONFIG', () => {
    expect(hpccAuthPath({ HOME: '/h' })).to.equal('/h/.config/hpcc/auth.json');
    expect(hpccAuthPath({ HOME: '/h', XDG_CONFIG_HOME: '/x' })).to.equal('/x/hpcc/auth.json');
    expect(hpccAuthPath({ HOME: '/h', XDG_CONFIG_HOME: 'relative' })).to.equal('/h/.config/hpcc/auth.json');
    expect(dockerConfigPath({ HOME: '/h' })).to.equal('/h/.docker/config.json');
    expect(dockerConfigPath({ HOME: '/h', DOCKER_CONFIG: '/d' })).to.equal('/d/config.json');
  });

  it('store → lookup → remove, file 0600 in a 0700 directory, other entries kept', async () => {
    const env = { HOME: dir };
    await storeCredentials('ghcr.io', 'bob', 'pw-1', env);
    const file = await storeCredentials('https://127.0.0.1:5000/', 'alice', 'p:a:ss', env);
    expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).to.equal(0o700);
    expect(await lookupCredentials('127.0.0.1:5000', env)).to.deep.include({ username: 'alice', password: 'p:a:ss' });
    await storeCredentials('127.0.0.1:5000', 'alice', 'new', env);
    expect((await lookupCredentials('127.0.0.1:5000', env))?.password).to.equal('new');
    expect(Object.keys((JSON.parse(fs.readFileSync(file, 'utf8')) as { auths: object }).auths)).to.deep.equal(['ghcr.io', '127.0.0.1:5000']);
    expect(await removeCredentials('127.0.0.1:5000', env)).to.equal(true);
    expect(await removeCredentials('127.0.0.1:5000', env)).to.equal(false);
    expect(await lookupCredentials('127.0.0.1:5000', env)).to.equal(null);
    expect((await lookupCredentials('ghcr.io', env))?.username).to.equal('bob');
    expect(fs.readdirSync(path.dirname(file))).to.deep.equal(['auth.json']); // no temp files
  });

  it("reads Docker's config.json auths (base64 user:pass, Docker Hub's v1 key); hpcc's own store wins", async () => {
    const env = { HOME: dir };
    fs.mkdirSync(path.join(dir, '.docker'));
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    fs.writeFileSync(
      dockerConfigPath(env),
      JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('hubuser:hubpw') }, 'reg.example:5000': { auth: b64('d:x') } } }),
    );
    expect(await lookupCredentials('docker.io', env)).to.deep.include({ username: 'hubuser', password: 'hubpw', source: dockerConfigPath(env) });
    expect(await lookupCredentials('reg.example:5000', env)).to.deep.include({ username: 'd', password: 'x' });
    await storeCredentials('reg.example:5000', 'mine', 'y', env);
    expect((await lookupCredentials('reg.example:5000', env))?.username).to.equal('mine');
    expect(await lookupCredentials('other.example', env)).to.equal(null);
  });

  it('a corrupt auth file is a typed error, not a crash', async () => {
    const env = { HOME: dir };
    fs.mkdirSync(path.dirname(hpccAuthPath(env)), { recursive: true });
    fs.writeFileSync(hpccAuthPath(env), '{not json');
    try {
      await lookupCredentials('x.io', env);
      expect.fail('should throw');
    } catch (e) {
      expect((e as HpccError).code).to.equal('HPCC_E_AUTH_FILE');
    }
  });

  it('refuses user names with a colon', async () => {
    try {
      await storeCredentials('x.io', 'a:b', 'p', { HOME: dir });
      expect.fail('should throw');
    } catch (e) {
      expect((e as HpccError).code).to.equal('HPCC_E_USAGE');
    }
  });
});

describe('config and credential paths: the cache root\'s HOME rule', () => {
  // A relative or missing HOME must not make hpcc read or write credentials
  // relative to the working directory: the password database's home is used.
  const home = passwdHome();
  for (const env of [{ HOME: 'relative/home' }, {}, { HOME: '' }]) {
    it(`HOME=${JSON.stringify(env.HOME)}: auth.json, docker config and hpcc.conf below the password database's home`, () => {
      expect(hpccAuthPath(env)).to.equal(path.join(home, '.config/hpcc/auth.json'));
      expect(dockerConfigPath(env)).to.equal(path.join(home, '.docker/config.json'));
      expect(configFiles(env)).to.deep.equal(['/etc/hpcc/hpcc.conf', path.join(home, '.config/hpcc/hpcc.conf')]);
    });
  }
  it('an absolute XDG_CONFIG_HOME wins, a relative one is ignored', () => {
    expect(hpccAuthPath({ HOME: '/h', XDG_CONFIG_HOME: '/x' })).to.equal('/x/hpcc/auth.json');
    expect(hpccAuthPath({ HOME: '/h', XDG_CONFIG_HOME: 'x' })).to.equal('/h/.config/hpcc/auth.json');
  });
});

describe('insecure registries (config.ts)', () => {
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir('hpcc-conf-');
  });
  afterEach(() => removeTree(dir));

  it('[registries] insecure in hpcc.conf (comma/space lists) plus HPCC_INSECURE_REGISTRIES', () => {
    fs.mkdirSync(path.join(dir, 'hpcc'));
    fs.writeFileSync(path.join(dir, 'hpcc', 'hpcc.conf'), '[registries]\ninsecure = 127.0.0.1:5000, Reg.Local:5000 other:1\n');
    const env = { HOME: '/nonexistent', XDG_CONFIG_HOME: dir, HPCC_INSECURE_REGISTRIES: 'env.local:80' };
    expect([...insecureRegistries(env)].sort()).to.deep.equal(['127.0.0.1:5000', 'env.local:80', 'other:1', 'reg.local:5000']);
    expect(isInsecureRegistry('reg.local:5000', env)).to.equal(true);
    expect(isInsecureRegistry('ghcr.io', env)).to.equal(false);
  });

  it('HPCC_CONFIG replaces the default files', () => {
    const f = path.join(dir, 'only.conf');
    fs.writeFileSync(f, '[registries]\ninsecure = a:1\n');
    expect([...insecureRegistries({ HPCC_CONFIG: f, XDG_CONFIG_HOME: dir })]).to.deep.equal(['a:1']);
    expect([...insecureRegistries({ HPCC_CONFIG: path.join(dir, 'missing') })]).to.deep.equal([]);
  });
});
