/**
 * SIF v01 on-disk structures: pure encode/decode on byte arrays, no I/O.
 * Spec: shared docs sif-format.md; reference: github.com/sylabs/sif/v2 pkg/sif
 * (sif.go header, descriptor.go rawDescriptor). Little-endian, packed.
 *
 *   offset 0 .--------------------------------------------.
 *            | global header (128 B)                      |
 *            |   launch script, SIF_MAGIC, "01", arch, ID |
 *            |   times, descriptor counts, section bounds |
 *            |--------------------------------------------|
 *            | (zero gap)                                 |
 *  desc.off  |--------------------------------------------|  default 4096
 *            | descriptor 1 (585 B)  id=1 type offset size|--.
 *            | descriptor 2 ...                           |  |
 *            | ... total slots, unused = all zero         |  |
 *  data.off  |--------------------------------------------|  default 4096+48*585 = 32176
 *            | object 1 (deffile, JSON, ...) unaligned    |<-'
 *            | padding to 4096                            |
 *            | partition (squashfs "hsqs" ...) aligned    |
 *            | object n ...                               |
 *  data.off+ `--------------------------------------------'
 *  data.size
 *
 * Readers trust each descriptor's offset and size, never this picture.
 * 64-bit fields become JS numbers; values beyond 2^53 are rejected.
 */
import { SifFormatError } from '../../errors/index.js';
import { sifArchName } from './arch.js';
import {
  DESCRIPTOR_SIZE,
  ENTITY_LEN,
  EXTRA_LEN,
  GROUP_MASK,
  HEADER_SIZE,
  LAUNCH_SCRIPT_LEN,
  MAGIC,
  NAME_LEN,
  SifDataType,
  hashTypeName,
} from './types.js';

export interface SifHeader {
  /** Launch script with trailing NULs removed (@0, 32 bytes). */
  launchScript: string;
  /** Magic with trailing NULs removed (@32, 10 bytes): "SIF_MAGIC". */
  magic: string;
  /** Spec version with trailing NULs removed (@42, 3 bytes): "01". */
  version: string;
  /** Go arch name of the primary partition ("amd64"), or "unknown" (@45, 3 bytes). */
  arch: string;
  /** The raw two-digit arch code ("02"). */
  archCode: string;
  /** Raw 16 UUID bytes (@48). */
  id: Uint8Array;
  /** The same ID formatted as a UUID string. */
  uuid: string;
  createdAt: number; // @64 int64 unix seconds
  modifiedAt: number; // @72
  descriptorsFree: number; // @80
  descriptorsTotal: number; // @88
  descriptorsOffset: number; // @96
  descriptorsSize: number; // @104 total × 585
  dataOffset: number; // @112
  dataSize: number; // @120 end of last object − data offset
}

export interface PartitionExtra {
  fsType: number; // extra @0 int32
  partType: number; // extra @4 int32
  /** Go arch name ("amd64" or "unknown"). */
  arch: string;
  archCode: string; // extra @8, 3 bytes
}

export interface SignatureExtra {
  hashType: number; // extra @0 int32
  /** Go name of the hash ("SHA-256"), undefined when the code is unsupported. */
  hashName?: string;
  /** Entity bytes (@4, 256 bytes). */
  entity: Uint8Array;
  /** Upper-case hex of the first 20 bytes (PGP fingerprint), absent when they are all zero. */
  fingerprint?: string;
}

export interface SifDescriptor {
  /** Slot index in the descriptor table. */
  index: number;
  dataType: number; // @0 int32
  used: boolean; // @4 bool
  id: number; // @5 uint32
  /** Group without the 0xF0000000 mask; 0 = no group (@9 uint32). */
  groupId: number;
  /** The group field as stored, mask included. */
  rawGroupId: number;
  /** Linked object or group id without the mask; 0 = none (@13 uint32). */
  linkedId: number;
  linkedIsGroup: boolean;
  offset: number; // @17 int64
  size: number; // @25 int64
  sizeWithPadding: number; // @33 int64
  createdAt: number; // @41 int64
  modifiedAt: number; // @49 int64
  uid: number; // @57 int64 (deprecated)
  gid: number; // @65 int64 (deprecated)
  /** Name with trailing NULs removed (@73, 128 bytes). */
  name: string;
  /** Raw type-specific bytes (@201, 384 bytes). */
  extra: Uint8Array;
  /** ID − smallest ID of the same group (set by the reader; signatures digest it). */
  relativeId: number;
  partition?: PartitionExtra;
  signature?: SignatureExtra;
  cryptoMessage?: { formatType: number; messageType: number };
  sbom?: { format: number };
  /** OCI root index / blob digest text ("sha256:…"). */
  ociDigest?: string;
}

/** The fields an encoder needs (index and decoded extras are derived). */
export type DescriptorFields = Omit<SifDescriptor, 'index' | 'rawGroupId' | 'relativeId' | 'partition' | 'signature' | 'cryptoMessage' | 'sbom' | 'ociDigest'>;

const utf8 = new TextDecoder('utf-8');
const utf8enc = new TextEncoder();

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function trimNul(b: Uint8Array): Uint8Array {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.subarray(0, end);
}

function text(b: Uint8Array): string {
  return utf8.decode(trimNul(b));
}

/** int64 → number, or a typed error when it does not fit in 2^53. */
function i64(dv: DataView, off: number, code: string, field: string): number {
  const v = dv.getBigInt64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new SifFormatError(code, `${field} ${v} is out of range`);
  }
  return Number(v);
}

function putI64(dv: DataView, off: number, v: number): void {
  dv.setBigInt64(off, BigInt(v), true);
}

function putText(dst: Uint8Array, off: number, len: number, s: string | Uint8Array, what: string): void {
  const b = typeof s === 'string' ? utf8enc.encode(s) : s;
  if (b.length > len) throw new SifFormatError('HPCC_E_SIF_FIELD_TOO_LONG', `${what} is ${b.length} bytes, at most ${len} fit`);
  dst.set(b, off);
}

export function formatUuid(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Decode the 128-byte global header. Checks nothing but lengths and ranges. */
export function decodeHeader(b: Uint8Array): SifHeader {
  if (b.length < HEADER_SIZE) {
    throw new SifFormatError('HPCC_E_SIF_TRUNCATED', `file is ${b.length} bytes, shorter than the ${HEADER_SIZE}-byte SIF header`);
  }
  const dv = view(b);
  const c = 'HPCC_E_SIF_BAD_HEADER';
  const archCode = text(b.subarray(45, 48));
  const id = b.slice(48, 64);
  return {
    launchScript: text(b.subarray(0, LAUNCH_SCRIPT_LEN)),
    magic: text(b.subarray(32, 42)),
    version: text(b.subarray(42, 45)),
    arch: sifArchName(archCode),
    archCode,
    id,
    uuid: formatUuid(id),
    createdAt: i64(dv, 64, c, 'header created-at'),
    modifiedAt: i64(dv, 72, c, 'header modified-at'),
    descriptorsFree: i64(dv, 80, c, 'descriptors free'),
    descriptorsTotal: i64(dv, 88, c, 'descriptors total'),
    descriptorsOffset: i64(dv, 96, c, 'descriptors offset'),
    descriptorsSize: i64(dv, 104, c, 'descriptors size'),
    dataOffset: i64(dv, 112, c, 'data offset'),
    dataSize: i64(dv, 120, c, 'data size'),
  };
}

/** Is the magic exactly "SIF_MAGIC\0" at 32 (as the reference's isValidSif)? */
export function hasMagic(b: Uint8Array): boolean {
  if (b.length < 42) return false;
  for (let i = 0; i < MAGIC.length; i++) if (b[32 + i] !== MAGIC.charCodeAt(i)) return false;
  return true;
}

/** Is the version field exactly "01\0"? */
export function hasVersion01(b: Uint8Array): boolean {
  return b.length >= 45 && b[42] === 0x30 && b[43] === 0x31 && b[44] === 0;
}

export function encodeHeader(h: Omit<SifHeader, 'arch' | 'uuid' | 'magic' | 'version'>): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE);
  const dv = view(b);
  putText(b, 0, LAUNCH_SCRIPT_LEN - 1, h.launchScript, 'launch script');
  putText(b, 32, 10, MAGIC, 'magic');
  putText(b, 42, 3, '01\0', 'version');
  putText(b, 45, 2, h.archCode, 'arch code');
  if (h.id.length !== 16) throw new SifFormatError('HPCC_E_SIF_FIELD_TOO_LONG', 'SIF ID must be 16 bytes');
  b.set(h.id, 48);
  putI64(dv, 64, h.createdAt);
  putI64(dv, 72, h.modifiedAt);
  putI64(dv, 80, h.descriptorsFree);
  putI64(dv, 88, h.descriptorsTotal);
  putI64(dv, 96, h.descriptorsOffset);
  putI64(dv, 104, h.descriptorsSize);
  putI64(dv, 112, h.dataOffset);
  putI64(dv, 120, h.dataSize);
  return b;
}

/** Only the "used" flag (@4): cheap test before decoding a slot. */
export function descriptorUsed(b: Uint8Array): boolean {
  return b[4] !== 0;
}

/** Decode one 585-byte descriptor slot; typed extras are parsed by data type. */
export function decodeDescriptor(b: Uint8Array, index: number): SifDescriptor {
  if (b.length < DESCRIPTOR_SIZE) throw new SifFormatError('HPCC_E_SIF_TRUNCATED', `descriptor ${index + 1} is truncated`);
  const dv = view(b);
  const c = 'HPCC_E_SIF_BAD_DESCRIPTOR';
  const what = `descriptor slot ${index + 1}`;
  const rawGroup = dv.getUint32(9, true);
  const rawLink = dv.getUint32(13, true);
  const d: SifDescriptor = {
    index,
    dataType: dv.getInt32(0, true),
    used: b[4] !== 0,
    id: dv.getUint32(5, true),
    groupId: (rawGroup & ~GROUP_MASK) >>> 0,
    rawGroupId: rawGroup,
    linkedId: (rawLink & ~GROUP_MASK) >>> 0,
    linkedIsGroup: (rawLink & GROUP_MASK) >>> 0 === GROUP_MASK,
    offset: i64(dv, 17, c, `${what} offset`),
    size: i64(dv, 25, c, `${what} size`),
    sizeWithPadding: i64(dv, 33, c, `${what} size with padding`),
    createdAt: i64(dv, 41, c, `${what} created-at`),
    modifiedAt: i64(dv, 49, c, `${what} modified-at`),
    uid: i64(dv, 57, c, `${what} uid`),
    gid: i64(dv, 65, c, `${what} gid`),
    name: text(b.subarray(73, 73 + NAME_LEN)),
    extra: b.slice(201, 201 + EXTRA_LEN),
    relativeId: 0,
  };
  decodeExtras(d);
  return d;
}

function decodeExtras(d: SifDescriptor): void {
  const e = d.extra;
  const dv = view(e);
  switch (d.dataType) {
    case SifDataType.Partition: {
      const archCode = text(e.subarray(8, 11));
      d.partition = { fsType: dv.getInt32(0, true), partType: dv.getInt32(4, true), arch: sifArchName(archCode), archCode };
      break;
    }
    case SifDataType.Signature: {
      const hashType = dv.getInt32(0, true);
      const entity = e.slice(4, 4 + ENTITY_LEN);
      const sig: SignatureExtra = { hashType, entity };
      const name = hashTypeName(hashType);
      if (name !== undefined) sig.hashName = name;
      if (entity.subarray(0, 20).some((x) => x !== 0)) sig.fingerprint = Buffer.from(entity.subarray(0, 20)).toString('hex').toUpperCase();
      d.signature = sig;
      break;
    }
    case SifDataType.CryptoMessage:
      d.cryptoMessage = { formatType: dv.getInt32(0, true), messageType: dv.getInt32(4, true) };
      break;
    case SifDataType.SBOM:
      d.sbom = { format: dv.getInt32(0, true) };
      break;
    case SifDataType.OCIRootIndex:
    case SifDataType.OCIBlob: {
      const nul = e.indexOf(0);
      d.ociDigest = utf8.decode(e.subarray(0, nul < 0 ? e.length : nul));
      break;
    }
    default:
      break;
  }
}

export function encodeDescriptor(d: DescriptorFields): Uint8Array {
  const b = new Uint8Array(DESCRIPTOR_SIZE);
  const dv = view(b);
  dv.setInt32(0, d.dataType, true);
  b[4] = d.used ? 1 : 0;
  dv.setUint32(5, d.id, true);
  dv.setUint32(9, (d.groupId | GROUP_MASK) >>> 0, true);
  dv.setUint32(13, d.linkedIsGroup ? (d.linkedId | GROUP_MASK) >>> 0 : d.linkedId >>> 0, true);
  putI64(dv, 17, d.offset);
  putI64(dv, 25, d.size);
  putI64(dv, 33, d.sizeWithPadding);
  putI64(dv, 41, d.createdAt);
  putI64(dv, 49, d.modifiedAt);
  putI64(dv, 57, d.uid);
  putI64(dv, 65, d.gid);
  putText(b, 73, NAME_LEN, d.name, 'object name');
  putText(b, 201, EXTRA_LEN, d.extra, 'descriptor extra');
  return b;
}

/** Partition extra: fstype int32 @0, parttype int32 @4, arch [3] @8. */
export function encodePartitionExtra(fsType: number, partType: number, archCode: string): Uint8Array {
  const b = new Uint8Array(11);
  const dv = view(b);
  dv.setInt32(0, fsType, true);
  dv.setInt32(4, partType, true);
  putText(b, 8, 2, archCode, 'arch code');
  return b;
}

/** Signature extra: hash type int32 @0, entity [256] @4 (fingerprint, zero padded). */
export function encodeSignatureExtra(hashType: number, entity: Uint8Array): Uint8Array {
  const b = new Uint8Array(4 + ENTITY_LEN);
  view(b).setInt32(0, hashType, true);
  putText(b, 4, ENTITY_LEN, entity, 'signature entity');
  return b;
}

/** Crypto message extra: format int32 @0, message type int32 @4. */
export function encodeCryptoMessageExtra(formatType: number, messageType: number): Uint8Array {
  const b = new Uint8Array(8);
  view(b).setInt32(0, formatType, true);
  view(b).setInt32(4, messageType, true);
  return b;
}

/** SBOM extra: format int32 @0. */
export function encodeSbomExtra(format: number): Uint8Array {
  const b = new Uint8Array(4);
  view(b).setInt32(0, format, true);
  return b;
}

/** OCI blob / root index extra: "sha256:<hex>" NUL terminated. */
export function encodeOciDigestExtra(digest: string): Uint8Array {
  const t = utf8enc.encode(digest);
  if (t.length >= EXTRA_LEN) throw new SifFormatError('HPCC_E_SIF_FIELD_TOO_LONG', 'OCI digest too long for a descriptor');
  return t;
}
