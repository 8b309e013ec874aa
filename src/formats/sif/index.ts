/** SIF (Singularity Image Format) v01: reader, writer, byte layouts, views. */
export * from './types.js';
export { archToSif, goArchName, sifArchCode, sifArchName, ARCH_UNKNOWN_CODE } from './arch.js';
export {
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
  type PartitionExtra,
  type SifDescriptor,
  type SifHeader,
  type SignatureExtra,
} from './layout.js';
export { SifReader, isSifError, DEFAULT_MAX_OBJECT_BYTES, MAX_DESCRIPTORS } from './reader.js';
export { SifWriter, type PartitionWriteFn, type SifObjectInput, type SifPartitionInput, type SifWriterOptions } from './writer.js';
export { descriptorJson, headerJson, renderHeaderText, renderInfoText, renderListText, readableSize, goTime, typeSummary, parseObjectId } from './view.js';
