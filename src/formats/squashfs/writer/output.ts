/**
 * Positioned output into the caller's file handle. Positions are relative to
 * the image start (squashfs offsets are image-relative, §1); `base` is where
 * the image sits in the file (a SIF partition offset).
 */
import type { FileHandle } from 'node:fs/promises';
import { addContext } from '../../../errors/index.js';

export class ImageOutput {
  /** Next write position, image-relative. */
  pos: number;
  /** Largest end position ever written (stale bytes may lie past pos after a rewind). */
  end = 0;

  constructor(
    readonly handle: FileHandle,
    private readonly base: number,
    start: number,
  ) {
    this.pos = start;
  }

  /** Append bytes at pos; returns their image-relative start. */
  async write(bytes: Uint8Array): Promise<number> {
    const at = this.pos;
    this.pos += bytes.length;
    await this.writeAt(bytes, at);
    return at;
  }

  /** Write bytes at an image-relative position without moving pos. */
  async writeAt(bytes: Uint8Array, at: number): Promise<void> {
    let done = 0;
    try {
      while (done < bytes.length) {
        const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, this.base + at + done);
        if (bytesWritten <= 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
        done += bytesWritten;
      }
    } catch (e) {
      throw addContext('write squashfs image', e);
    }
    this.end = Math.max(this.end, at + bytes.length);
  }

  /** Read bytes back (deterministic mode re-reads its spool). */
  async readAt(buf: Buffer, at: number): Promise<void> {
    let done = 0;
    try {
      while (done < buf.length) {
        const { bytesRead } = await this.handle.read(buf, done, buf.length - done, this.base + at + done);
        if (bytesRead <= 0) throw Object.assign(new Error('short read'), { code: 'EIO' });
        done += bytesRead;
      }
    } catch (e) {
      throw addContext('read squashfs spool', e);
    }
  }

  /** Move the write position back (the bytes past it are unreferenced and will be overwritten). */
  rewind(to: number): void {
    this.pos = to;
  }

  /** Cut the file at base + size when stale bytes lie past it. */
  async truncateTo(size: number): Promise<void> {
    if (this.end > size) {
      try {
        await this.handle.truncate(this.base + size);
      } catch (e) {
        throw addContext('truncate squashfs image', e);
      }
      this.end = size;
    }
  }
}
