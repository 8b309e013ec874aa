/**
 * Public entry point of the squashfs module.
 */
export { SquashfsReader, type SqfsDirent, type SqfsStat, type EntryType, type OpenOptions } from './reader/reader.js';
export { extractTree, type ExtractOptions } from './reader/extract.js';
export type { Superblock } from './layout.js';
export { SquashfsWriter } from './writer/writer.js';
export type { EntryMeta, SquashfsWriteResult, SquashfsWriterOptions } from './writer/writer.js';
export type { CodecName } from './codecs/index.js';
