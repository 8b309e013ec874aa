import { expect } from 'chai';
import { OciError } from '../../../src/errors/index.js';
import { bootstrapOf, formatReference, isImageReference, parseReference } from '../../../src/oci/reference.js';
import { formatPlatform, normaliseArch, parsePlatform, platformMatches, selectManifest } from '../../../src/oci/platform.js';

const HEX = 'a'.repeat(64);

describe('oci/reference', () => {
  const ok: Array<[string, string]> = [
    ['docker://alpine', 'docker://docker.io/library/alpine:latest'],
    ['docker://alpine:3.19', 'docker://docker.io/library/alpine:3.19'],
    ['docker://python:3.12-slim', 'docker://docker.io/library/python:3.12-slim'],
    ['docker://user/app', 'docker://docker.io/user/app:latest'],
    ['docker://index.docker.io/library/busybox:1.36', 'docker://docker.io/library/busybox:1.36'],
    ['docker://ghcr.io/org/app@sha256:' + HEX, 'docker://ghcr.io/org/app@sha256:' + HEX],
    ['docker://ghcr.io/org/sub/app:v1@sha256:' + HEX, 'docker://ghcr.io/org/sub/app:v1@sha256:' + HEX],
    ['docker://127.0.0.1:5000/lab/busybox:v2s2', 'docker://127.0.0.1:5000/lab/busybox:v2s2'],
    ['docker://localhost/x', 'docker://localhost/x:latest'],
    ['docker://localhost:5000/a_b__c-d.e', 'docker://localhost:5000/a_b__c-d.e:latest'],
    ['oci:/tmp/layout', 'oci:/tmp/layout'],
    ['oci:./layout:latest', 'oci:./layout:latest'],
    ['oci-archive:img.tar:v1', 'oci-archive:img.tar:v1'],
    ['docker-archive:saved.tar', 'docker-archive:saved.tar'],
    ['docker-archive:saved.tar:lab/bb:latest', 'docker-archive:saved.tar:docker.io/lab/bb:latest'],
    ['docker-archive:saved.tar:@1', 'docker-archive:saved.tar:@1'],
  ];
  for (const [input, want] of ok) {
    it(`parses ${input}`, () => {
      expect(formatReference(parseReference(input))).to.equal(want);
      expect(isImageReference(input)).to.equal(true);
    });
  }

  it('gives the parts of a docker reference', () => {
    expect(parseReference('docker://ghcr.io/org/app:v1')).to.deep.equal({ transport: 'docker', registry: 'ghcr.io', repository: 'org/app', tag: 'v1' });
    expect(parseReference('docker://app@sha256:' + HEX)).to.deep.equal({ transport: 'docker', registry: 'docker.io', repository: 'library/app', digest: 'sha256:' + HEX });
  });

  const bad = [
    '',
    'docker://',
    'docker://Alpine',
    'docker://alpine:',
    'docker://alpine:-x',
    'docker://alpine@sha256:abc',
    'docker://alpine@md5:' + HEX,
    'docker://a//b',
    'docker://a/-b',
    'docker://' + 'a'.repeat(300),
    'oci:',
    'oci-archive::tag',
    'http://x/y',
    'alpine',
    'docker-archive:f.tar:repo@sha256:' + HEX,
    'docker://a\0b',
  ];
  for (const input of bad) {
    it(`refuses ${JSON.stringify(input.slice(0, 40))}`, () => {
      let err: unknown;
      try {
        parseReference(input);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(OciError);
      expect((err as OciError).code).to.equal('HPCC_E_OCI_REFERENCE');
    });
  }

  it('says which bootstrap Apptainer would record', () => {
    expect(bootstrapOf(parseReference('docker://busybox:1.33.1'))).to.deep.equal({ bootstrap: 'docker', from: 'busybox:1.33.1' });
    expect(bootstrapOf(parseReference('docker://ghcr.io/o/a:1'))).to.deep.equal({ bootstrap: 'docker', from: 'ghcr.io/o/a:1' });
    expect(bootstrapOf(parseReference('oci-archive:x.tar'))).to.deep.equal({ bootstrap: 'oci-archive', from: 'x.tar' });
    expect(bootstrapOf(parseReference('oci:dir:t'))).to.deep.equal({ bootstrap: 'oci', from: 'dir:t' });
  });

  it('does not take directories for references', () => {
    expect(isImageReference('./rootfs')).to.equal(false);
    expect(isImageReference('/abs/dir')).to.equal(false);
  });
});

describe('oci/platform', () => {
  it('parses --platform and --arch spellings', () => {
    expect(parsePlatform('linux/amd64')).to.deep.equal({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/arm64/v8')).to.deep.equal({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(parsePlatform('aarch64')).to.deep.equal({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('x86_64')).to.deep.equal({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('armhf')).to.deep.equal({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(() => parsePlatform('linux/amd64/v1/x')).to.throw(/invalid platform/);
    expect(() => parsePlatform('linux//amd64')).to.throw(/invalid platform/);
    expect(normaliseArch('x64')).to.deep.equal({ architecture: 'amd64' });
    expect(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v6' })).to.equal('linux/arm/v6');
  });

  it('matches variants: arm64 means v8, a missing wanted variant takes any', () => {
    expect(platformMatches({ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' })).to.equal(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v6' })).to.equal(false);
    expect(platformMatches({ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'arm', variant: 'v6' })).to.equal(true);
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'windows', architecture: 'amd64' })).to.equal(false);
  });

  it('selects the exact variant first and lists what exists when nothing fits', () => {
    const d = (digit: string, os: string, architecture: string, variant?: string) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${digit.repeat(64)}`,
      size: 1,
      platform: variant ? { os, architecture, variant } : { os, architecture },
    });
    const entries = [d('1', 'linux', 'arm'), d('2', 'linux', 'arm', 'v7'), d('3', 'linux', 'amd64'), d('4', 'unknown', 'unknown')];
    expect(selectManifest(entries, { os: 'linux', architecture: 'arm', variant: 'v7' }).digest).to.equal(entries[1]!.digest);
    expect(selectManifest(entries, { os: 'linux', architecture: 'amd64' }).digest).to.equal(entries[2]!.digest);
    try {
      selectManifest(entries, { os: 'linux', architecture: 'riscv64' });
      expect.fail('no error');
    } catch (e) {
      expect((e as OciError).code).to.equal('HPCC_E_OCI_PLATFORM');
      expect((e as OciError).hint).to.equal('Available: linux/arm, linux/arm/v7, linux/amd64; choose one with --platform.');
    }
  });
});
