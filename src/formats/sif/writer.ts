/**
 * SIF writer with the reference writer's defaults (pkg/sif create.go):
 * 48 descriptor slots at 4096, data from 4096 + 48 × 585 = 32176, objects
 * appended at data offset + data size, partitions aligned to 4096 (padding
 * counted in size-with-padding), group 1, header arch from the primary
 * partition. Output goes to `${path}.tmp-XXXXXXXX` in the same directory and
 * is renamed into place by finish() after an fsync; abort() removes it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { HpccError, SifFormatError, addContext } from '../../errors/index.js';
import { ARCH_UNKNOWN_CODE, sifArchCode } from './arch.js';
import { encodeDescriptor, encodeHeader, encodePartitionExtra, type DescriptorFields } from './layout.js';
import {
  DEFAULT_DESCRIPTORS_OFFSET,
  DEFAULT_DESCRIPTORS_TOTAL,
  DEFAULT_GROUP,
  DEFAULT_LAUNCH_SCRIPT,
  DESCRIPTOR_SIZE,
  EXTRA_LEN,
  GO_ZERO_TIME,
  LAUNCH_SCRIPT_LEN,
  NAME_LEN,
  PARTITION_ALIGNMENT,
  PartType,
  SifDataType,
  type FsType,
} from './types.js';

export interface SifWriterOptions {
  /** All-zero ID and fixed times (Go's zero time unless createdAt is given), as OptCreateDeterministic. */
  deterministic?: boolean;
  /** Image (and object) creation time, unix seconds. Default: now, or Go's zero time when deterministic. */
  createdAt?: number;
  /** 16 raw UUID bytes. Default: random v4, or all zero when deterministic. */
  id?: Uint8Array;
  /** Default `#!/usr/bin/env run-singularity\n`; at most 31 bytes. */
  launchScript?: string;
  /** Descriptor slots (default 48). */
  descriptorsTotal?: number;
}

export interface SifObjectInput {
  type: SifDataType;
  name?: string;
  data: Uint8Array;
  /** Group (default 1); 0 = no group. */
  groupId?: number;
  /** Link to an object ID. */
  linkedId?: number;
  /** Link to a group instead (stored with the 0xF0000000 mask). */
  linkedGroupId?: number;
  /** Type-specific extra (≤ 384 bytes), e.g. from encodeSignatureExtra(). */
  extra?: Uint8Array;
  /** Alignment of the object's offset (default: none; partitions 4096). */
  alignment?: number;
}

export interface SifPartitionInput {
  fsType: FsType;
  partType: PartType;
  /** Go ('amd64') or Node ('x64') architecture name. */
  arch: string;
  name?: string;
  groupId?: number;
}

/** Writes a partition's bytes at `offset` through `handle`; returns how many it wrote. */
export type PartitionWriteFn = (handle: FileHandle, offset: number) => Promise<number>;

function nextAligned(offset: number, alignment: number): number {
  if (alignment <= 0 || offset % alignment === 0) return offset;
  return offset - (offset % alignment) + alignment;
}

function uuidBytes(): Uint8Array {
  return Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
}

function writeError(code: string, message: string): SifFormatError {
  return new SifFormatError(code, message, { hint: 'This is a problem with what was asked of the SIF writer, not with an existing file.' });
}

export class SifWriter {
  private readonly slots: (DescriptorFields | undefined)[];
  private dataSize = 0;
  private archCode = ARCH_UNKNOWN_CODE;
  private primaryId = 0;
  private busy = false;
  private done = false;

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    readonly tempPath: string,
    private readonly launchScript: string,
    private readonly id: Uint8Array,
    private readonly time: number,
    private readonly total: number,
  ) {
    this.slots = new Array<DescriptorFields | undefined>(total).fill(undefined);
  }

  static async create(path: string, opts: SifWriterOptions = {}): Promise<SifWriter> {
    const total = opts.descriptorsTotal ?? DEFAULT_DESCRIPTORS_TOTAL;
    if (!Number.isInteger(total) || total < 1 || total > 65536) throw writeError('HPCC_E_SIF_BAD_OPTION', `descriptorsTotal must be 1..65536, not ${total}`);
    const launchScript = opts.launchScript ?? DEFAULT_LAUNCH_SCRIPT;
    if (Buffer.byteLength(launchScript) >= LAUNCH_SCRIPT_LEN) throw writeError('HPCC_E_SIF_FIELD_TOO_LONG', `launch script must be shorter than ${LAUNCH_SCRIPT_LEN} bytes`);
    const id = opts.id ?? (opts.deterministic ? new Uint8Array(16) : uuidBytes());
    if (id.length !== 16) throw writeError('HPCC_E_SIF_BAD_OPTION', 'the SIF ID must be 16 bytes');
    const time = opts.createdAt ?? (opts.deterministic ? GO_ZERO_TIME : Math.floor(Date.now() / 1000));
    const tempPath = `${path}.tmp-${randomBytes(4).toString('hex')}`;
    let fh: FileHandle;
    try {
      fh = await open(tempPath, 'wx', 0o755);
    } catch (e) {
      throw addContext(`create SIF ${path}`, e);
    }
    return new SifWriter(fh, path, tempPath, launchScript, id, time, total);
  }

  get descriptorsOffset(): number {
    return DEFAULT_DESCRIPTORS_OFFSET;
  }

  get dataOffset(): number {
    return DEFAULT_DESCRIPTORS_OFFSET + this.total * DESCRIPTOR_SIZE;
  }

  /** Where the next object starts before alignment. */
  private get end(): number {
    return this.dataOffset + this.dataSize;
  }

  private freeSlot(): number {
    if (this.done) throw writeError('HPCC_E_SIF_WRITER_CLOSED', 'the SIF writer is already finished or aborted');
    const i = this.slots.indexOf(undefined);
    if (i < 0) throw writeError('HPCC_E_SIF_NO_FREE_DESCRIPTOR', `all ${this.total} descriptor slots are used`);
    return i;
  }

  private checkFields(name: string, extra: Uint8Array): void {
    if (Buffer.byteLength(name) > NAME_LEN) throw writeError('HPCC_E_SIF_FIELD_TOO_LONG', `object name longer than ${NAME_LEN} bytes`);
    if (extra.length > EXTRA_LEN) throw writeError('HPCC_E_SIF_FIELD_TOO_LONG', `descriptor extra longer than ${EXTRA_LEN} bytes`);
  }

  /** Objects are appended one at a time: each add must be awaited before the next. */
  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy) throw writeError('HPCC_E_SIF_WRITER_BUSY', 'another object is still being added; await each add before the next');
    this.busy = true;
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }

  private record(i: number, f: Omit<DescriptorFields, 'id' | 'used' | 'createdAt' | 'modifiedAt' | 'uid' | 'gid'>, unaligned: number): number {
    const d: DescriptorFields = { ...f, id: i + 1, used: true, createdAt: this.time, modifiedAt: this.time, uid: 0, gid: 0 };
    d.sizeWithPadding = d.offset - unaligned + d.size;
    this.slots[i] = d;
    this.dataSize += d.sizeWithPadding;
    return d.id;
  }

  private groupOf(groupId: number | undefined): number {
    const g = groupId ?? DEFAULT_GROUP;
    if (!Number.isInteger(g) || g < 0 || g > 0x0fffffff) throw writeError('HPCC_E_SIF_BAD_OPTION', `group ID ${g} out of range`);
    return g;
  }

  /** Append a data object; returns its ID. */
  addObject(o: SifObjectInput): Promise<number> {
    return this.exclusive(() => this.appendObject(o));
  }

  private async appendObject(o: SifObjectInput): Promise<number> {
    const i = this.freeSlot();
    if (o.type === SifDataType.Partition) throw writeError('HPCC_E_SIF_BAD_OPTION', 'partitions are added with addPartition or addPartitionFromFile');
    const unaligned = this.end;
    const offset = nextAligned(unaligned, o.alignment ?? 0);
    const linkedIsGroup = o.linkedGroupId !== undefined;
    const fields = {
      dataType: o.type,
      groupId: this.groupOf(o.groupId),
      linkedId: linkedIsGroup ? o.linkedGroupId! : (o.linkedId ?? 0),
      linkedIsGroup,
      offset,
      size: o.data.length,
      sizeWithPadding: 0,
      name: o.name ?? '',
      extra: o.extra ?? new Uint8Array(0),
    };
    this.checkFields(fields.name, fields.extra);
    if (!Number.isInteger(fields.linkedId) || fields.linkedId < 0 || fields.linkedId > (linkedIsGroup ? 0x0fffffff : 0xffffffff)) {
      throw writeError('HPCC_E_SIF_BAD_OPTION', `linked ID ${fields.linkedId} out of range`);
    }
    await this.io('write SIF object', () => this.writeAll(o.data, offset));
    return this.record(i, fields, unaligned);
  }

  /**
   * Append a partition written by `write` at a 4096-aligned offset (so a
   * squashfs writer can stream straight into the SIF); returns its ID.
   */
  addPartition(p: SifPartitionInput, write: PartitionWriteFn): Promise<number> {
    return this.exclusive(() => this.appendPartition(p, write));
  }

  private async appendPartition(p: SifPartitionInput, write: PartitionWriteFn): Promise<number> {
    const i = this.freeSlot();
    const archCode = sifArchCode(p.arch);
    if (archCode === undefined) throw writeError('HPCC_E_SIF_UNKNOWN_ARCH', `unknown architecture ${JSON.stringify(p.arch)}`);
    if (p.partType === PartType.PrimSys && this.primaryId !== 0) {
      throw writeError('HPCC_E_SIF_MULTIPLE_PRIMARY', `the SIF already has a primary system partition (ID ${this.primaryId})`);
    }
    const extra = encodePartitionExtra(p.fsType, p.partType, archCode);
    const groupId = this.groupOf(p.groupId);
    const name = p.name ?? '';
    this.checkFields(name, extra);
    const unaligned = this.end;
    const offset = nextAligned(unaligned, PARTITION_ALIGNMENT);
    const size = await write(this.fh, offset);
    if (!Number.isSafeInteger(size) || size < 0) throw writeError('HPCC_E_SIF_BAD_OPTION', `partition writer returned an invalid size ${size}`);
    const id = this.record(i, { dataType: SifDataType.Partition, groupId, linkedId: 0, linkedIsGroup: false, offset, size, sizeWithPadding: 0, name, extra }, unaligned);
    if (p.partType === PartType.PrimSys) {
      this.archCode = archCode;
      this.primaryId = id;
    }
    return id;
  }

  /** Append a partition copied from an existing image file (e.g. a .sqfs). */
  async addPartitionFromFile(p: SifPartitionInput, path: string): Promise<number> {
    return this.addPartition(p, async (handle, offset) => {
      const src = await this.io(`open partition image ${path}`, () => open(path, 'r'));
      try {
        const buf = Buffer.allocUnsafe(1 << 20);
        let total = 0;
        for (;;) {
          const { bytesRead } = await this.io(`read ${path}`, () => src.read(buf, 0, buf.length, total));
          if (bytesRead === 0) break;
          await this.io('write SIF partition', () => this.writeAll(buf.subarray(0, bytesRead), offset + total, handle));
          total += bytesRead;
        }
        return total;
      } finally {
        await src.close();
      }
    });
  }

  /** Write the descriptor table and header, fsync, and rename into place. */
  async finish(): Promise<void> {
    if (this.busy) throw writeError('HPCC_E_SIF_WRITER_BUSY', 'an object is still being added; await it before finish()');
    if (this.done) throw writeError('HPCC_E_SIF_WRITER_CLOSED', 'the SIF writer is already finished or aborted');
    try {
      const table = Buffer.alloc(this.total * DESCRIPTOR_SIZE);
      this.slots.forEach((d, i) => {
        if (d) table.set(encodeDescriptor(d), i * DESCRIPTOR_SIZE);
      });
      const used = this.slots.filter((d) => d !== undefined).length;
      const header = encodeHeader({
        launchScript: this.launchScript,
        archCode: this.archCode,
        id: this.id,
        createdAt: this.time,
        modifiedAt: this.time,
        descriptorsFree: this.total - used,
        descriptorsTotal: this.total,
        descriptorsOffset: DEFAULT_DESCRIPTORS_OFFSET,
        descriptorsSize: table.length,
        dataOffset: this.dataOffset,
        dataSize: this.dataSize,
      });
      await this.io('write SIF descriptors', async () => {
        // The gap between header and table must read as zeros even when
        // nothing was written there (a fresh file's hole already does).
        await this.writeAll(table, DEFAULT_DESCRIPTORS_OFFSET);
        await this.writeAll(header, 0);
        await this.fh.truncate(Math.max(this.end, this.dataOffset));
        await this.fh.sync();
      });
      this.done = true;
      await this.fh.close();
      await this.io(`rename ${this.tempPath} to ${this.path}`, () => rename(this.tempPath, this.path));
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Drop the temp file; nothing is left at the output path. Safe to call twice. */
  async abort(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.fh.close().catch(() => undefined);
    }
    await unlink(this.tempPath).catch(() => undefined);
  }

  private async writeAll(data: Uint8Array, pos: number, fh: FileHandle = this.fh): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await fh.write(data, off, data.length - off, pos + off);
      off += bytesWritten;
    }
  }

  private async io<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw e instanceof HpccError ? e : addContext(what, e);
    }
  }
}
