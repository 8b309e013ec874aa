import { expect } from 'chai';
import { RegistryError, parseRegistryErrorBody, registryHttpError } from '../../../../src/oci/registry/errors.js';
import { MANIFEST_ACCEPT_HEADER, apiHost, checkDigest, parseChallenge } from '../../../../src/oci/registry/client.js';

describe('registry client pieces', () => {
  it('parses WWW-Authenticate challenges (Bearer with quoted params, Basic)', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"')).to.deep.equal({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' },
    });
    expect(parseChallenge('Basic realm="hpcc-test"')).to.deep.equal({ scheme: 'basic', params: { realm: 'hpcc-test' } });
    expect(parseChallenge('Bearer realm="a\\"b", error=invalid_token')?.params).to.deep.equal({ realm: 'a"b', error: 'invalid_token' });
    expect(parseChallenge(undefined)).to.equal(null);
    expect(parseChallenge('')).to.equal(null);
  });

  it('asks for all four manifest types', () => {
    for (const t of [
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
      'application/vnd.docker.distribution.manifest.v2+json',
    ]) {
      expect(MANIFEST_ACCEPT_HEADER).to.contain(t);
    }
  });

  it('Docker Hub API host', () => {
    expect(apiHost('docker.io')).to.equal('registry-1.docker.io');
    expect(apiHost('ghcr.io')).to.equal('ghcr.io');
  });

  it('maps HTTP statuses to codes with the registry error code in the message', () => {
    const body = JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] });
    const cases: Array<[number, string]> = [
      [401, 'HPCC_E_REGISTRY_UNAUTHORIZED'],
      [403, 'HPCC_E_REGISTRY_DENIED'],
      [404, 'HPCC_E_REGISTRY_NOT_FOUND'],
      [429, 'HPCC_E_REGISTRY_RATE_LIMITED'],
      [500, 'HPCC_E_REGISTRY_SERVER'],
      [503, 'HPCC_E_REGISTRY_SERVER'],
      [418, 'HPCC_E_REGISTRY_HTTP'],
    ];
    for (const [status, code] of cases) {
      const e = registryHttpError(status, 'manifest x:1', 'r.example', body);
      expect(e).to.be.instanceOf(RegistryError);
      expect(e.code).to.equal(code);
      expect(e.status).to.equal(status);
      expect(e.exitCode).to.equal(81);
      expect(e.registryCode).to.equal('DENIED');
      expect(e.message).to.contain(`HTTP ${status}`).and.to.contain('DENIED: requested access');
      expect(e.hint).to.be.a('string');
    }
  });

  it('error bodies are parsed defensively', () => {
    expect(parseRegistryErrorBody('<html>')).to.deep.equal({});
    expect(parseRegistryErrorBody('{"errors":"x"}')).to.deep.equal({});
    expect(parseRegistryErrorBody(JSON.stringify({ errors: [{ code: 'X'.repeat(1000) }] })).code).to.have.length(100);
  });

  it('accepts only sha256:<64 hex> digests (they become cache file names)', () => {
    expect(() => checkDigest(`sha256:${'a'.repeat(64)}`)).to.not.throw();
    for (const bad of [`sha256:${'A'.repeat(64)}`, `sha512:${'a'.repeat(128)}`, 'sha256:../../etc/passwd', `sha256:${'a'.repeat(63)}`, '']) {
      expect(() => checkDigest(bad), bad).to.throw(RegistryError);
    }
  });
});
