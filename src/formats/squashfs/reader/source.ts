/**
 * Random-access byte sources for the squashfs reader: an image file (optionally
 * a window inside a larger file, e.g. a SIF partition) or an in-memory buffer.
 * Every read is checked against the window size before anything is allocated.
 */
import * as fs from 'node:fs';
import { addContext, SquashfsFormatError } from '../../../errors/index.js';

export interface ImageSource {
  /** Bytes available in the window. */
  readonly size: number;
  /** Exactly `len` bytes at `pos` (relative to the window); throws a typed error if out of bounds. */
  read(pos: number, len: number): Uint8Array;
  close(): Promise<void>;
}

export function checkRange(pos: number, len: number, size: number, what: string): void {
  if (!Number.isSafeInteger(pos) || !Number.isSafeInteger(len) || pos < 0 || len < 0 || pos + len > size) {
    throw new SquashfsFormatError(
      'HPCC_E_SQFS_OUT_OF_BOUNDS',
      `${what}: ${len} bytes at offset ${pos} lie outside the image (${size} bytes)`,
    );
  }
}

export class FileImageSource implements ImageSource {
  private fd: number | null;

  private constructor(
    fd: number,
    private readonly offset: number,
    readonly size: number,
    /** close() closes the descriptor (false: it is the caller's) */
    private readonly owned = true,
  ) {
    this.fd = fd;
  }

  static open(path: string, opts: { offset?: number; size?: number } = {}): FileImageSource {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (e) {
      throw addContext(`open squashfs image ${path}`, e);
    }
    try {
      return FileImageSource.fromFd(fd, path, opts, true);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** A window of an open descriptor; `owned` says whether close() closes it. */
  static fromFd(fd: number, path: string, opts: { offset?: number; size?: number } = {}, owned = false): FileImageSource {
    const st = fs.fstatSync(fd);
    const offset = opts.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > st.size) {
      throw new SquashfsFormatError('HPCC_E_SQFS_OUT_OF_BOUNDS', `offset ${offset} is outside ${path} (${st.size} bytes)`);
    }
    const avail = st.size - offset;
    const size = opts.size ?? avail;
    if (!Number.isSafeInteger(size) || size < 0 || size > avail) {
      throw new SquashfsFormatError(
        'HPCC_E_SQFS_OUT_OF_BOUNDS',
        `partition of ${size} bytes at offset ${offset} runs past the end of ${path} (${st.size} bytes)`,
      );
    }
    return new FileImageSource(fd, offset, size, owned);
  }

  read(pos: number, len: number): Uint8Array {
    checkRange(pos, len, this.size, 'read');
    if (this.fd === null) {
      throw new SquashfsFormatError('HPCC_E_SQFS_CLOSED', 'the squashfs reader is closed', {
        hint: 'Do not use a SquashfsReader after close().',
      });
    }
    const buf = Buffer.allocUnsafe(len);
    let done = 0;
    try {
      while (done < len) {
        const n = fs.readSync(this.fd, buf, done, len - done, this.offset + pos + done);
        if (n === 0) {
          throw new SquashfsFormatError('HPCC_E_SQFS_TRUNCATED', `image file ended early at offset ${pos + done}`);
        }
        done += n;
      }
    } catch (e) {
      throw addContext('read squashfs image', e);
    }
    return buf;
  }

  async close(): Promise<void> {
    if (this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      if (this.owned) fs.closeSync(fd);
    }
  }
}

export class BufferImageSource implements ImageSource {
  readonly size: number;
  constructor(private readonly buf: Uint8Array) {
    this.size = buf.length;
  }
  read(pos: number, len: number): Uint8Array {
    checkRange(pos, len, this.size, 'read');
    return this.buf.subarray(pos, pos + len);
  }
  async close(): Promise<void> {}
}

/**
 * A small least-recently-used map, bounded by total weight (default: one per
 * entry). An item heavier than the whole budget is simply not kept.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, { v: V; w: number }>();
  private total = 0;
  constructor(
    private readonly max: number,
    private readonly weigh: (v: V) => number = () => 1,
  ) {}
  get(k: K): V | undefined {
    const e = this.map.get(k);
    if (e === undefined) return undefined;
    this.map.delete(k);
    this.map.set(k, e);
    return e.v;
  }
  set(k: K, v: V): void {
    const old = this.map.get(k);
    if (old !== undefined) {
      this.map.delete(k);
      this.total -= old.w;
    }
    const w = this.weigh(v);
    if (w > this.max) return;
    this.map.set(k, { v, w });
    this.total += w;
    while (this.total > this.max) {
      const first = this.map.keys().next().value as K;
      this.total -= this.map.get(first)!.w;
      this.map.delete(first);
    }
  }
  delete(k: K): void {
    const e = this.map.get(k);
    if (e === undefined) return;
    this.map.delete(k);
    this.total -= e.w;
  }
  clear(): void {
    this.map.clear();
    this.total = 0;
  }
}
