/**
 * SIF v01 constants and enums (shared docs: sif-format.md; values as in the
 * reference implementation github.com/sylabs/sif/v2 pkg/sif).
 */

/** Global header: 128 bytes at offset 0 (sif-format.md "Global header"). */
export const HEADER_SIZE = 128;
/** One descriptor slot: 585 bytes, packed (sif-format.md "Descriptor"). */
export const DESCRIPTOR_SIZE = 585;
export const LAUNCH_SCRIPT_LEN = 32;
export const MAGIC_OFFSET = 32;
export const MAGIC = 'SIF_MAGIC\0';
export const VERSION = '01';
export const NAME_LEN = 128;
export const EXTRA_LEN = 384;
export const ENTITY_LEN = 256;
/** Group ids are stored OR-ed with this mask; a bare mask means "no group". */
export const GROUP_MASK = 0xf0000000;

/** Reference writer defaults (pkg/sif create.go). */
export const DEFAULT_DESCRIPTORS_TOTAL = 48;
export const DEFAULT_DESCRIPTORS_OFFSET = 4096;
export const PARTITION_ALIGNMENT = 4096;
export const DEFAULT_GROUP = 1;
export const DEFAULT_LAUNCH_SCRIPT = '#!/usr/bin/env run-singularity\n';
/** Go's zero time.Time as unix seconds: what the reference's deterministic mode stores. */
export const GO_ZERO_TIME = -62135596800;

export enum SifDataType {
  Deffile = 0x4001,
  EnvVar,
  Labels,
  Partition,
  Signature,
  GenericJSON,
  Generic,
  CryptoMessage,
  SBOM,
  OCIRootIndex,
  OCIBlob,
}

export enum FsType {
  Squash = 1,
  Ext3,
  ImmuObj,
  Raw,
  EncryptedSquashfs,
  /** Apptainer's extension. */
  GocryptfsSquashfs,
}

export enum PartType {
  System = 1,
  PrimSys,
  Data,
  Overlay,
}

export enum HashType {
  SHA256 = 1,
  SHA384,
  SHA512,
  BLAKE2S,
  BLAKE2B,
}

export enum CryptoFormatType {
  OpenPGP = 1,
  PEM,
}

export enum CryptoMessageType {
  ClearSignature = 0x100,
  RSAOAEP = 0x200,
}

export enum SbomFormat {
  CycloneDXJSON = 1,
  CycloneDXXML,
  GitHubJSON,
  SPDXJSON,
  SPDXRDF,
  SPDXTagValue,
  SPDXYAML,
  SyftJSON,
}

/** Display names, as the reference's String() methods print them. */
export function dataTypeName(t: number): string {
  switch (t) {
    case SifDataType.Deffile: return 'Def.FILE';
    case SifDataType.EnvVar: return 'Env.Vars';
    case SifDataType.Labels: return 'JSON.Labels';
    case SifDataType.Partition: return 'FS';
    case SifDataType.Signature: return 'Signature';
    case SifDataType.GenericJSON: return 'JSON.Generic';
    case SifDataType.Generic: return 'Generic/Raw';
    case SifDataType.CryptoMessage: return 'Cryptographic Message';
    case SifDataType.SBOM: return 'SBOM';
    case SifDataType.OCIRootIndex: return 'OCI.RootIndex';
    case SifDataType.OCIBlob: return 'OCI.Blob';
    default: return 'Unknown';
  }
}

export function fsTypeName(t: number): string {
  switch (t) {
    case FsType.Squash: return 'Squashfs';
    case FsType.Ext3: return 'Ext3';
    case FsType.ImmuObj: return 'Archive';
    case FsType.Raw: return 'Raw';
    case FsType.EncryptedSquashfs: return 'Encrypted squashfs';
    case FsType.GocryptfsSquashfs: return 'Gocryptfs squashfs';
    default: return 'Unknown';
  }
}

export function partTypeName(t: number): string {
  switch (t) {
    case PartType.System: return 'System';
    case PartType.PrimSys: return '*System';
    case PartType.Data: return 'Data';
    case PartType.Overlay: return 'Overlay';
    default: return 'Unknown';
  }
}

/** Names as Go's crypto.Hash.String(); undefined for codes the reference rejects. */
export function hashTypeName(t: number): string | undefined {
  switch (t) {
    case HashType.SHA256: return 'SHA-256';
    case HashType.SHA384: return 'SHA-384';
    case HashType.SHA512: return 'SHA-512';
    case HashType.BLAKE2S: return 'BLAKE2s-256';
    case HashType.BLAKE2B: return 'BLAKE2b-256';
    default: return undefined;
  }
}

export function cryptoFormatName(t: number): string {
  switch (t) {
    case CryptoFormatType.OpenPGP: return 'OpenPGP';
    case CryptoFormatType.PEM: return 'PEM';
    default: return 'Unknown';
  }
}

export function cryptoMessageName(t: number): string {
  switch (t) {
    case CryptoMessageType.ClearSignature: return 'Clear Signature';
    case CryptoMessageType.RSAOAEP: return 'RSA-OAEP';
    default: return 'Unknown';
  }
}

const SBOM_NAMES = ['cyclonedx-json', 'cyclonedx-xml', 'github-json', 'spdx-json', 'spdx-rdf', 'spdx-tag-value', 'spdx-yaml', 'syft-json'];

export function sbomFormatName(t: number): string {
  return SBOM_NAMES[t - 1] ?? 'unknown';
}
