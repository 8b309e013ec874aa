import { expect } from 'chai';
import {
  DESCRIPTOR_SIZE,
  GROUP_MASK,
  HEADER_SIZE,
  SifDataType,
  decodeDescriptor,
  decodeHeader,
  encodeCryptoMessageExtra,
  encodeDescriptor,
  encodeHeader,
  encodeOciDigestExtra,
  encodePartitionExtra,
  encodeSbomExtra,
  encodeSignatureExtra,
  formatUuid,
  type DescriptorFields,
} from '../../../../src/formats/sif/index.js';
import { HpccError } from '../../../../src/errors/index.js';

const ID = Uint8Array.from([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef, 0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]);

function baseDescriptor(over: Partial<DescriptorFields> = {}): DescriptorFields {
  return {
    dataType: SifDataType.GenericJSON,
    used: true,
    id: 3,
    groupId: 1,
    linkedId: 0,
    linkedIsGroup: false,
    offset: 32176,
    size: 17,
    sizeWithPadding: 17,
    createdAt: 1593475316,
    modifiedAt: 1593475317,
    uid: 0,
    gid: 0,
    name: 'oci-config.json',
    extra: new Uint8Array(0),
    ...over,
  };
}

describe('formats/sif/layout', () => {
  describe('global header', () => {
    const fields = {
      launchScript: '#!/usr/bin/env run-singularity\n',
      archCode: '02',
      id: ID,
      createdAt: 1593475316,
      modifiedAt: 1593475400,
      descriptorsFree: 45,
      descriptorsTotal: 48,
      descriptorsOffset: 4096,
      descriptorsSize: 48 * DESCRIPTOR_SIZE,
      dataOffset: 32176,
      dataSize: 12345,
    };

    it('encodes every field at its spec offset', () => {
      const b = Buffer.from(encodeHeader(fields));
      expect(b.length).to.equal(HEADER_SIZE);
      expect(b.subarray(0, 31).toString()).to.equal('#!/usr/bin/env run-singularity\n');
      expect(b[31]).to.equal(0);
      expect(b.subarray(32, 42).toString('latin1')).to.equal('SIF_MAGIC\0');
      expect(b.subarray(42, 45).toString('latin1')).to.equal('01\0');
      expect(b.subarray(45, 48).toString('latin1')).to.equal('02\0');
      expect(b.subarray(48, 64)).to.deep.equal(Buffer.from(ID));
      expect(b.readBigInt64LE(64)).to.equal(1593475316n);
      expect(b.readBigInt64LE(72)).to.equal(1593475400n);
      expect(b.readBigInt64LE(80)).to.equal(45n);
      expect(b.readBigInt64LE(88)).to.equal(48n);
      expect(b.readBigInt64LE(96)).to.equal(4096n);
      expect(b.readBigInt64LE(104)).to.equal(28080n);
      expect(b.readBigInt64LE(112)).to.equal(32176n);
      expect(b.readBigInt64LE(120)).to.equal(12345n);
    });

    it('round-trips through decodeHeader', () => {
      const h = decodeHeader(encodeHeader(fields));
      expect(h).to.deep.include({ ...fields, id: ID, magic: 'SIF_MAGIC', version: '01', arch: 'amd64' });
      expect(h.uuid).to.equal('12345678-9abc-4def-8001-020304050607');
    });

    it('maps unknown arch codes to "unknown"', () => {
      expect(decodeHeader(encodeHeader({ ...fields, archCode: '00' })).arch).to.equal('unknown');
      expect(decodeHeader(encodeHeader({ ...fields, archCode: '99' })).arch).to.equal('unknown');
      expect(decodeHeader(encodeHeader({ ...fields, archCode: '13' })).arch).to.equal('loong64');
    });

    it('refuses a launch script of 32 bytes or more', () => {
      expect(() => encodeHeader({ ...fields, launchScript: 'x'.repeat(32) })).to.throw(HpccError).with.property('code', 'HPCC_E_SIF_FIELD_TOO_LONG');
      expect(() => encodeHeader({ ...fields, launchScript: 'x'.repeat(31) })).not.to.throw();
    });

    it('rejects 64-bit values beyond 2^53 with a typed error', () => {
      const b = Buffer.from(encodeHeader(fields));
      b.writeBigInt64LE(1n << 60n, 112);
      expect(() => decodeHeader(b)).to.throw(HpccError).with.property('code', 'HPCC_E_SIF_BAD_HEADER');
    });

    it('reports a short buffer as truncated', () => {
      expect(() => decodeHeader(new Uint8Array(127))).to.throw(HpccError).with.property('code', 'HPCC_E_SIF_TRUNCATED');
    });
  });

  describe('descriptor', () => {
    it('encodes fields at their spec offsets, group stored with the mask', () => {
      const b = Buffer.from(encodeDescriptor(baseDescriptor()));
      expect(b.length).to.equal(DESCRIPTOR_SIZE);
      expect(b.readInt32LE(0)).to.equal(0x4006);
      expect(b[4]).to.equal(1);
      expect(b.readUInt32LE(5)).to.equal(3);
      expect(b.readUInt32LE(9)).to.equal((GROUP_MASK | 1) >>> 0);
      expect(b.readUInt32LE(13)).to.equal(0);
      expect(b.readBigInt64LE(17)).to.equal(32176n);
      expect(b.readBigInt64LE(25)).to.equal(17n);
      expect(b.readBigInt64LE(33)).to.equal(17n);
      expect(b.readBigInt64LE(41)).to.equal(1593475316n);
      expect(b.readBigInt64LE(49)).to.equal(1593475317n);
      expect(b.subarray(73, 73 + 15).toString()).to.equal('oci-config.json');
      expect(b.subarray(73 + 15, 201).every((x) => x === 0)).to.equal(true);
    });

    it('stores "no group" as the bare mask and a linked group with the mask', () => {
      const b = Buffer.from(encodeDescriptor(baseDescriptor({ groupId: 0, linkedId: 2, linkedIsGroup: true })));
      expect(b.readUInt32LE(9)).to.equal(GROUP_MASK);
      expect(b.readUInt32LE(13)).to.equal((GROUP_MASK | 2) >>> 0);
      const d = decodeDescriptor(b, 0);
      expect(d.groupId).to.equal(0);
      expect(d.linkedId).to.equal(2);
      expect(d.linkedIsGroup).to.equal(true);
      const o = decodeDescriptor(encodeDescriptor(baseDescriptor({ linkedId: 7 })), 0);
      expect(o.linkedId).to.equal(7);
      expect(o.linkedIsGroup).to.equal(false);
    });

    it('round-trips every field', () => {
      const f = baseDescriptor({ uid: 1000, gid: 100, sizeWithPadding: 4000, createdAt: -62135596800 });
      const d = decodeDescriptor(encodeDescriptor(f), 5);
      const { extra, ...rest } = f;
      expect(d).to.deep.include(rest);
      expect(d.index).to.equal(5);
      expect(d.extra.length).to.equal(384);
      expect(Buffer.from(d.extra).subarray(0, extra.length)).to.deep.equal(Buffer.from(extra));
    });

    it('decodes partition extras', () => {
      const d = decodeDescriptor(encodeDescriptor(baseDescriptor({ dataType: SifDataType.Partition, extra: encodePartitionExtra(1, 2, '04') })), 0);
      expect(d.partition).to.deep.equal({ fsType: 1, partType: 2, arch: 'arm64', archCode: '04' });
      expect(Buffer.from(d.extra.subarray(0, 12))).to.deep.equal(Buffer.from([1, 0, 0, 0, 2, 0, 0, 0, 0x30, 0x34, 0, 0]));
    });

    it('decodes signature extras with and without a fingerprint', () => {
      const fp = Buffer.from('12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84', 'hex');
      const d = decodeDescriptor(encodeDescriptor(baseDescriptor({ dataType: SifDataType.Signature, extra: encodeSignatureExtra(1, fp) })), 0);
      expect(d.signature?.hashName).to.equal('SHA-256');
      expect(d.signature?.fingerprint).to.equal('12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84');
      const n = decodeDescriptor(encodeDescriptor(baseDescriptor({ dataType: SifDataType.Signature, extra: encodeSignatureExtra(9, new Uint8Array(0)) })), 0);
      expect(n.signature?.hashName).to.equal(undefined);
      expect(n.signature?.fingerprint).to.equal(undefined);
    });

    it('decodes crypto message, SBOM and OCI digest extras', () => {
      const c = decodeDescriptor(encodeDescriptor(baseDescriptor({ dataType: SifDataType.CryptoMessage, extra: encodeCryptoMessageExtra(1, 0x100) })), 0);
      expect(c.cryptoMessage).to.deep.equal({ formatType: 1, messageType: 0x100 });
      const s = decodeDescriptor(encodeDescriptor(baseDescriptor({ dataType: SifDataType.SBOM, extra: encodeSbomExtra(8) })), 0);
      expect(s.sbom).to.deep.equal({ format: 8 });
      const digest = 'sha256:' + 'ab'.repeat(32);
      const o = decodeDescriptor(encodeDescriptor(baseDescriptor({ dataType: SifDataType.OCIBlob, extra: encodeOciDigestExtra(digest) })), 0);
      expect(o.ociDigest).to.equal(digest);
    });

    it('refuses names over 128 bytes and extras over 384 bytes', () => {
      expect(() => encodeDescriptor(baseDescriptor({ name: 'n'.repeat(129) }))).to.throw(HpccError);
      expect(() => encodeDescriptor(baseDescriptor({ extra: new Uint8Array(385) }))).to.throw(HpccError);
      expect(() => encodeDescriptor(baseDescriptor({ name: 'n'.repeat(128) }))).not.to.throw();
    });

    it('rejects out-of-range 64-bit offsets', () => {
      const b = Buffer.from(encodeDescriptor(baseDescriptor()));
      b.writeBigInt64LE(-(1n << 62n), 17);
      expect(() => decodeDescriptor(b, 0)).to.throw(HpccError).with.property('code', 'HPCC_E_SIF_BAD_DESCRIPTOR');
    });
  });

  it('formats UUIDs', () => {
    expect(formatUuid(new Uint8Array(16))).to.equal('00000000-0000-0000-0000-000000000000');
  });
});
