/**
 * Read-ahead of regular files for addDirectoryTree. Small files (up to 8
 * blocks) are read whole, several ahead of the writer, within a byte budget
 * and a file count; larger files are streamed in 1 MiB reads, handed to the
 * writer block by block, with one read in flight ahead of the consumer. Disk
 * reads therefore overlap compression while memory stays bounded by the
 * budget plus two reads.
 */
import * as fsp from 'node:fs/promises';
import { HpccIOError, ioHint } from '../../errors/index.js';

export interface FileReaderOptions {
  blockSize: number;
  maxFiles: number;
  maxBytes: number;
  skipUnreadable: boolean;
  warn: (message: string) => void;
}

/** A file scheduled for reading; open() gives its data, or null when skipped. */
export interface PreparedFile {
  open(): Promise<AsyncIterable<Uint8Array> | Uint8Array | null>;
  cancel(): void;
}

/** Bytes per read() of a streamed (large) file. */
const READ_SIZE = 1024 * 1024;

type Whole = { ok: true; data: Uint8Array } | { ok: false; err: unknown };

function readError(p: string, e: unknown): HpccIOError {
  const code = (e as { code?: unknown })?.code;
  const errno = typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : 'EIO';
  return new HpccIOError(`HPCC_E_IO_${errno}`, `read ${p}: ${(e as Error)?.message ?? String(e)}`, {
    cause: e,
    hint: ioHint(errno) ?? 'Check that the file is readable, or skip unreadable files.',
    details: { path: p },
  });
}

export class FileReader {
  readonly maxFiles: number;
  bytesRead = 0;
  private inflightBytes = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly handles = new Set<fsp.FileHandle>();
  private readonly smallLimit: number;

  constructor(private readonly opts: FileReaderOptions) {
    this.maxFiles = Math.max(1, opts.maxFiles);
    this.smallLimit = Math.min(8 * opts.blockSize, opts.maxBytes);
  }

  prepare(abs: string, size: number): PreparedFile {
    if (size <= this.smallLimit) return this.prepareSmall(abs, size);
    return this.prepareLarge(abs, size);
  }

  /** Close every handle a consumer left open (after a failure). */
  async closeAll(): Promise<void> {
    const hs = [...this.handles];
    this.handles.clear();
    await Promise.all(hs.map((h) => h.close().catch(() => undefined)));
  }

  private unreadable(abs: string, err: unknown): null {
    if (!this.opts.skipUnreadable) throw readError(abs, err);
    this.opts.warn(`skipped unreadable file ${abs}: ${(err as Error)?.message ?? String(err)}`);
    return null;
  }

  private checkSize(abs: string, expected: number, got: number): void {
    if (expected !== got) this.opts.warn(`${abs} changed while it was read (${expected} bytes at stat, ${got} read)`);
  }

  private pump(): void {
    while (this.waiting.length > 0 && this.inflightBytes < this.opts.maxBytes) this.waiting.shift()!();
  }

  private prepareSmall(abs: string, size: number): PreparedFile {
    let reserved = 0;
    let started = false;
    let settle!: (w: Whole) => void;
    const whole = new Promise<Whole>((resolve) => (settle = resolve));
    const release = () => {
      this.inflightBytes -= reserved;
      reserved = 0;
      this.pump();
    };
    const start = () => {
      started = true;
      reserved = size;
      this.inflightBytes += size;
      fsp.readFile(abs).then(
        (b) => settle({ ok: true, data: b }),
        (err: unknown) => settle({ ok: false, err }),
      );
    };
    const unqueue = () => {
      const i = this.waiting.indexOf(start);
      if (i >= 0) this.waiting.splice(i, 1);
    };
    // FIFO: a file never overtakes an earlier one still waiting for budget, so
    // the file the writer needs next is always started first (no deadlock).
    if (this.waiting.length === 0 && (this.inflightBytes + size <= this.opts.maxBytes || this.inflightBytes === 0)) start();
    else this.waiting.push(start);
    return {
      open: async () => {
        if (!started) {
          unqueue();
          start();
        }
        const r = await whole;
        release();
        if (!r.ok) return this.unreadable(abs, r.err);
        this.bytesRead += r.data.length;
        this.checkSize(abs, size, r.data.length);
        return r.data;
      },
      cancel: () => {
        if (!started) {
          unqueue();
          return;
        }
        void whole.then(release);
      },
    };
  }

  private prepareLarge(abs: string, size: number): PreparedFile {
    return {
      open: async () => {
        let h: fsp.FileHandle;
        try {
          h = await fsp.open(abs, 'r');
        } catch (err) {
          return this.unreadable(abs, err);
        }
        this.handles.add(h);
        return this.chunks(abs, h, size);
      },
      cancel: () => undefined,
    };
  }

  /**
   * Streams a file in block-size chunks. Reads are READ_SIZE (≥ one block)
   * so a multi-GiB file costs few syscalls/threadpool round trips (8x fewer
   * than block-size reads: 1.7 s instead of 34 s for a 4 GiB sparse file on a
   * busy 2-core host); the next read is in flight while the writer
   * compresses the current one.
   */
  private async *chunks(abs: string, h: fsp.FileHandle, size: number): AsyncGenerator<Uint8Array> {
    const bs = this.opts.blockSize;
    const rs = Math.max(bs, READ_SIZE - (READ_SIZE % bs));
    let pos = 0;
    const readAt = (p: number) => h.read(Buffer.allocUnsafe(rs), 0, rs, p);
    let pending: ReturnType<typeof readAt> | undefined = readAt(0);
    try {
      for (;;) {
        let r;
        try {
          r = await pending;
        } catch (err) {
          pending = undefined;
          throw readError(abs, err);
        }
        pending = undefined;
        if (r === undefined || r.bytesRead === 0) break;
        pos += r.bytesRead;
        this.bytesRead += r.bytesRead;
        pending = readAt(pos);
        for (let off = 0; off < r.bytesRead; off += bs) yield r.buffer.subarray(off, Math.min(off + bs, r.bytesRead));
      }
      this.checkSize(abs, size, pos);
    } finally {
      if (pending) await pending.catch(() => undefined);
      this.handles.delete(h);
      await h.close().catch(() => undefined);
    }
  }
}
