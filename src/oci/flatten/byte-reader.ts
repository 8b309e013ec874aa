/**
 * Pull-style reads over an async stream of chunks: exact reads for headers,
 * bounded sub-streams for entry bodies, skips. Chunks handed out are views
 * of the source's buffers (never copied, never reused by this class).
 */
import { tarError } from './tar-header.js';

const EMPTY = Buffer.alloc(0);

export class ByteReader {
  private buf: Buffer = EMPTY;
  private pos = 0;
  private ended = false;
  /** Bytes consumed so far. */
  consumed = 0;
  private readonly it: AsyncIterator<Uint8Array>;

  constructor(src: AsyncIterable<Uint8Array>) {
    this.it = src[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    while (this.pos >= this.buf.length) {
      if (this.ended) return false;
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        return false;
      }
      const v = r.value;
      this.buf = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.length);
      this.pos = 0;
    }
    return true;
  }

  /** Exactly n bytes (copied when they span chunks), or null at a clean end of stream. */
  async readExact(n: number): Promise<Buffer | null> {
    if (!(await this.fill())) return null;
    if (this.buf.length - this.pos >= n) {
      const out = this.buf.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.consumed += n;
      return out;
    }
    const out = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      if (!(await this.fill())) throw tarError(`unexpected end of data (wanted ${n} bytes, got ${got})`);
      const take = Math.min(n - got, this.buf.length - this.pos);
      this.buf.copy(out, got, this.pos, this.pos + take);
      this.pos += take;
      got += take;
    }
    this.consumed += n;
    return out;
  }

  /** The next n bytes as a sequence of chunks. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) throw tarError(`unexpected end of data (${left} bytes missing)`);
      const take = Math.min(left, this.buf.length - this.pos);
      const out = this.buf.subarray(this.pos, this.pos + take);
      this.pos += take;
      this.consumed += take;
      left -= take;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n)) void _;
  }

  /** Skip up to n bytes; returns how many were there (fewer only at the end of the stream). */
  async skipUpTo(n: number): Promise<number> {
    let left = n;
    while (left > 0 && (await this.fill())) {
      const take = Math.min(left, this.buf.length - this.pos);
      this.pos += take;
      this.consumed += take;
      left -= take;
    }
    return n - left;
  }

  /** Read whatever is left (to let a verifying source check digest and size). */
  async drain(): Promise<void> {
    this.pos = this.buf.length;
    while (await this.fill()) this.pos = this.buf.length;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}
