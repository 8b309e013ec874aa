/**
 * SIF reader: validates the global header and descriptor table against the
 * file's real size, then serves objects by descriptor. It trusts each
 * descriptor's offset and size (any layout: data at 32176, 32768, ...) and
 * accepts every data type, group, link and extra (sif-format.md "Reading rules").
 *
 * Everything read is bounded by the file size; hostile input yields a
 * SifFormatError with a stable code, never another exception.
 */
import { createReadStream, fstatSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { HpccError, SifFormatError, addContext } from '../../errors/index.js';
import { decodeDescriptor, decodeHeader, descriptorUsed, hasMagic, hasVersion01, type SifDescriptor, type SifHeader } from './layout.js';
import { DESCRIPTOR_SIZE, HEADER_SIZE, PartType, SifDataType } from './types.js';

/** Refuse descriptor tables beyond this many slots (the reference writes 48). */
export const MAX_DESCRIPTORS = 65536;
/** Default cap for readObject(): objects are buffered in memory. */
export const DEFAULT_MAX_OBJECT_BYTES = 256 * 1024 * 1024;

/** Random-access bytes: a file or an in-memory buffer. */
interface ByteSource {
  readonly size: number;
  read(pos: number, len: number): Promise<Buffer>;
  stream(pos: number, len: number): Readable;
  close(): Promise<void>;
}

class FileSource implements ByteSource {
  constructor(private readonly fh: FileHandle, readonly size: number) {}
  async read(pos: number, len: number): Promise<Buffer> {
    const buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await this.fh.read(buf, got, len - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === len ? buf : buf.subarray(0, got);
  }
  stream(pos: number, len: number): Readable {
    if (len === 0) return Readable.from([]);
    return this.fh.createReadStream({ start: pos, end: pos + len - 1, autoClose: false });
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

/** A file descriptor read synchronously, owned by the caller (SifReader.fromFd). */
class FdSource implements ByteSource {
  constructor(private readonly fd: number, readonly size: number) {}
  async read(pos: number, len: number): Promise<Buffer> {
    const buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = readSync(this.fd, buf, got, len - got, pos + got);
      if (n === 0) break;
      got += n;
    }
    return got === len ? buf : buf.subarray(0, got);
  }
  stream(pos: number, len: number): Readable {
    if (len === 0) return Readable.from([]);
    return createReadStream('', { fd: this.fd, start: pos, end: pos + len - 1, autoClose: false });
  }
  async close(): Promise<void> {}
}

class BufferSource implements ByteSource {
  constructor(private readonly buf: Uint8Array) {}
  get size(): number {
    return this.buf.length;
  }
  async read(pos: number, len: number): Promise<Buffer> {
    return Buffer.from(this.buf.subarray(pos, pos + len));
  }
  stream(pos: number, len: number): Readable {
    return Readable.from([Buffer.from(this.buf.subarray(pos, pos + len))]);
  }
  async close(): Promise<void> {}
}

export class SifReader {
  /** Used descriptors, in slot order. */
  readonly descriptors: SifDescriptor[];

  private constructor(
    private readonly src: ByteSource,
    readonly header: SifHeader,
    descriptors: SifDescriptor[],
    readonly path?: string,
  ) {
    this.descriptors = descriptors;
  }

  /** Open and validate a SIF file. */
  static async open(path: string): Promise<SifReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw addContext(`open SIF ${path}`, e);
    }
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw new SifFormatError('HPCC_E_SIF_NOT_A_FILE', `${path} is a directory, not a SIF file`);
      const src = new FileSource(fh, st.size);
      return await SifReader.load(src, path);
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw addContext(`read SIF ${path}`, e);
    }
  }

  /**
   * Read and validate a SIF from an open file descriptor with synchronous
   * reads (the launch path opens the file once and shares the descriptor with
   * the squashfs reader). The descriptor stays the caller's: close() leaves it open.
   */
  static async fromFd(fd: number, path?: string): Promise<SifReader> {
    try {
      const st = fstatSync(fd);
      if (st.isDirectory()) throw new SifFormatError('HPCC_E_SIF_NOT_A_FILE', `${path ?? 'the file'} is a directory, not a SIF file`);
      return await SifReader.load(new FdSource(fd, st.size), path);
    } catch (e) {
      throw addContext(`read SIF ${path ?? `fd ${fd}`}`, e);
    }
  }

  /** Parse a SIF held in memory (tests, fuzzing, small images). */
  static async fromBuffer(buf: Uint8Array): Promise<SifReader> {
    return SifReader.load(new BufferSource(buf));
  }

  private static async load(src: ByteSource, path?: string): Promise<SifReader> {
    const head = await src.read(0, Math.min(HEADER_SIZE, src.size));
    if (!hasMagic(head)) {
      throw new SifFormatError('HPCC_E_SIF_BAD_MAGIC', 'no SIF_MAGIC at offset 32: not a SIF file');
    }
    if (!hasVersion01(head)) {
      throw new SifFormatError('HPCC_E_SIF_VERSION', `unsupported SIF version ${JSON.stringify(head.subarray(42, 45).toString('latin1'))}; only "01" is known`, {
        hint: 'The image was written by a newer SIF tool, or is damaged.',
      });
    }
    const header = decodeHeader(head);
    const descriptors = await readDescriptors(src, header);
    return new SifReader(src, header, descriptors, path);
  }

  get fileSize(): number {
    return this.src.size;
  }

  /** The one primary-system partition (how Apptainer finds the root filesystem). */
  primaryPartition(): SifDescriptor {
    const prim = this.descriptors.filter((d) => d.dataType === SifDataType.Partition && d.partition?.partType === PartType.PrimSys);
    if (prim.length === 0) {
      throw new SifFormatError('HPCC_E_SIF_NO_PRIMARY', 'the SIF has no primary system partition', {
        hint: 'The image holds no root filesystem; rebuild it with `hpcc build`.',
      });
    }
    if (prim.length > 1) {
      throw new SifFormatError('HPCC_E_SIF_MULTIPLE_PRIMARY', `the SIF has ${prim.length} primary system partitions (ids ${prim.map((d) => d.id).join(', ')})`);
    }
    return prim[0]!;
  }

  objectsByType(t: SifDataType): SifDescriptor[] {
    return this.descriptors.filter((d) => d.dataType === t);
  }

  /** Objects of a group (group id without the mask). */
  objectsInGroup(groupId: number): SifDescriptor[] {
    return this.descriptors.filter((d) => d.groupId === groupId);
  }

  /** The descriptor with this object ID (as `siftool info/dump ID`). */
  descriptorById(id: number): SifDescriptor {
    const found = this.descriptors.filter((d) => d.id === id);
    if (found.length === 0) {
      throw new SifFormatError('HPCC_E_SIF_NO_OBJECT', `the SIF has no object with ID ${id}`, {
        hint: 'List the objects with `hpcc sif list IMAGE`.',
      });
    }
    if (found.length > 1) throw new SifFormatError('HPCC_E_SIF_DUPLICATE_ID', `the SIF has ${found.length} objects with ID ${id}`);
    return found[0]!;
  }

  /** An object's bytes, refused when larger than maxBytes (default 256 MiB). */
  async readObject(d: SifDescriptor, maxBytes = DEFAULT_MAX_OBJECT_BYTES): Promise<Buffer> {
    if (d.size > maxBytes) {
      throw new SifFormatError('HPCC_E_SIF_OBJECT_TOO_LARGE', `object ${d.id} is ${d.size} bytes, more than the ${maxBytes} allowed here`, {
        hint: 'Stream it with `hpcc sif dump` instead.',
      });
    }
    const b = await this.src.read(d.offset, d.size);
    if (b.length !== d.size) throw new SifFormatError('HPCC_E_SIF_TRUNCATED', `object ${d.id} ends past the end of the file`);
    return b;
  }

  /** An object's bytes as a stream (no size cap). */
  objectStream(d: SifDescriptor): Readable {
    return this.src.stream(d.offset, d.size);
  }

  async close(): Promise<void> {
    await this.src.close();
  }
}

async function readDescriptors(src: ByteSource, h: SifHeader): Promise<SifDescriptor[]> {
  const fileSize = src.size;
  if (h.descriptorsTotal < 0 || h.descriptorsOffset < 0 || h.descriptorsSize < 0 || h.descriptorsFree < 0) {
    throw new SifFormatError('HPCC_E_SIF_BAD_HEADER', 'negative descriptor count, offset or size in the SIF header');
  }
  if (h.descriptorsTotal > MAX_DESCRIPTORS) {
    throw new SifFormatError('HPCC_E_SIF_BAD_HEADER', `${h.descriptorsTotal} descriptors declared, more than the ${MAX_DESCRIPTORS} hpcc accepts`);
  }
  const tableLen = h.descriptorsTotal * DESCRIPTOR_SIZE;
  if (h.descriptorsSize < tableLen) {
    throw new SifFormatError('HPCC_E_SIF_BAD_HEADER', `descriptor table is ${h.descriptorsSize} bytes, too small for ${h.descriptorsTotal} × ${DESCRIPTOR_SIZE}`);
  }
  if (h.descriptorsOffset + tableLen > fileSize) {
    throw new SifFormatError('HPCC_E_SIF_TRUNCATED', `descriptor table (${tableLen} bytes at ${h.descriptorsOffset}) runs past the end of the ${fileSize}-byte file`);
  }
  const table = await src.read(h.descriptorsOffset, tableLen);
  if (table.length !== tableLen) throw new SifFormatError('HPCC_E_SIF_TRUNCATED', 'descriptor table cut short');
  const out: SifDescriptor[] = [];
  for (let i = 0; i < h.descriptorsTotal; i++) {
    const slot = table.subarray(i * DESCRIPTOR_SIZE, (i + 1) * DESCRIPTOR_SIZE);
    if (!descriptorUsed(slot)) continue;
    const d = decodeDescriptor(slot, i);
    if (d.offset < 0 || d.size < 0) {
      throw new SifFormatError('HPCC_E_SIF_BAD_DESCRIPTOR', `object ${d.id} has a negative offset (${d.offset}) or size (${d.size})`);
    }
    if (d.offset + d.size > fileSize) {
      throw new SifFormatError('HPCC_E_SIF_TRUNCATED', `object ${d.id} (${d.size} bytes at ${d.offset}) runs past the end of the ${fileSize}-byte file`);
    }
    out.push(d);
  }
  // Relative IDs as the reference computes them: per raw group field (mask included).
  const minIds = new Map<number, number>();
  for (const d of out) {
    const m = minIds.get(d.rawGroupId);
    if (m === undefined || d.id < m) minIds.set(d.rawGroupId, d.id);
  }
  for (const d of out) d.relativeId = d.id - minIds.get(d.rawGroupId)!;
  return out;
}

export function isSifError(e: unknown): e is HpccError {
  return e instanceof HpccError && e.code.startsWith('HPCC_E_SIF_');
}
