/**
 * The data area (squashfs-format.md §4): file blocks and fragment blocks.
 *
 * Blocks are compressed on libuv's threadpool (Encoder.compress) with at most
 * `concurrency` jobs in flight and written strictly in submission order, so
 * one file's blocks are contiguous. A file's tail goes to the open fragment
 * block only after all its full blocks are queued, so a fragment block is
 * never flushed between two blocks of one file. All-zero blocks become
 * sparse words (0) with nothing written; blocks that do not shrink are stored
 * raw (bit 24).
 *
 * Dedupe: each file is hashed (sha256) while it streams; when (size, hash)
 * was seen before, the file's queued blocks are dropped and the written ones
 * are rewound (they are the last bytes written, because files are processed
 * one at a time), and the file shares the first copy's FileData. The same
 * rewind undoes a file whose data source fails.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Encoder } from '../codecs/types.js';
import { DATA_SIZE_MASK, DATA_UNCOMPRESSED, INVALID32 } from '../layout.js';
import type { ImageOutput } from './output.js';
import { writeError } from './paths.js';
import type { FileData } from './tree.js';

interface Job {
  /** null: store as is (a deterministic-mode tail in the spool). */
  readonly compressed: Promise<Uint8Array> | null;
  readonly raw: Uint8Array;
  readonly owner: object | null;
  /** A pooled block buffer to reuse once this job is written. */
  readonly recycle: Buffer | null;
  place(start: number, word: number): void;
}

export interface FragmentSlot {
  start: number;
  word: number;
}

export interface DataOptions {
  blockSize: number;
  concurrency: number;
  fragments: boolean;
  dedupe: boolean;
}

export type FileSource = AsyncIterable<Uint8Array> | Uint8Array;

/** Shared by every file without blocks (most files fit in a fragment); replaced on the first block. */
const NO_WORDS: number[] = [];

export function newFileData(): FileData {
  return { size: 0, start: 0, words: NO_WORDS, fragment: INVALID32, fragOffset: 0, sparse: 0, state: 'pending', tailAt: -1 };
}

export class DataWriter {
  private queue: Job[] = [];
  private frag: { buf: Buffer; fill: number; index: number } | null = null;
  /** Fragment table entries, by index (§4). */
  readonly fragments: FragmentSlot[] = [];
  private readonly seen = new Map<string, FileData>();
  private readonly pool: Buffer[] = [];
  private stopped = false;
  /** Set when a codec or write error made the image unusable. */
  broken: unknown = undefined;
  private readonly zero: Buffer;
  private readonly bs: number;
  /** Bytes of file data received and bytes saved by dedupe (for reporting). */
  stats = { bytesIn: 0, dupFiles: 0, dupBytes: 0, sparseBlocks: 0, rawBlocks: 0 };

  /** Where blocks go now: the image, or (deterministic mode) the spool until relayout(). */
  private sink: ImageOutput;

  /**
   * With a spool (deterministic mode), blocks are compressed as they arrive
   * but land in the spool, tails wait there raw, and relayout() copies them
   * into the image in tree order so the image does not depend on arrival order.
   */
  constructor(
    private readonly out: ImageOutput,
    private readonly enc: Encoder,
    private readonly opts: DataOptions,
    private readonly spool: ImageOutput | null = null,
  ) {
    this.bs = opts.blockSize;
    this.zero = Buffer.alloc(opts.blockSize);
    this.sink = spool ?? out;
  }

  /**
   * Stream one file's bytes into the image. Returns the FileData the inode
   * must use: `fd` itself, or the first copy's when the file is a duplicate.
   */
  async writeFile(src: FileSource, fd: FileData): Promise<FileData> {
    const owner = {};
    const track = { first: -1 };
    const hash = this.opts.dedupe ? createHash('sha256') : null;
    let tail: Uint8Array;
    let tailBuf: Buffer | null;
    try {
      ({ tail, buf: tailBuf } = await this.streamBlocks(src, fd, owner, track, hash));
    } catch (e) {
      this.cancel(owner, track.first);
      fd.state = 'failed';
      throw e;
    }
    fd.size = fd.words.length * this.bs + tail.length;
    this.stats.bytesIn += fd.size;
    if (hash !== null && fd.size > 0) {
      const key = hash.digest('binary') + fd.size; // 32 one-byte chars + the size: a compact Map key
      const orig = this.seen.get(key);
      if (orig !== undefined) {
        this.cancel(owner, track.first);
        fd.state = 'failed';
        this.stats.dupFiles++;
        this.stats.dupBytes += fd.size;
        if (tailBuf !== null) this.give(tailBuf);
        return orig;
      }
      this.seen.set(key, fd);
    }
    if (tail.length > 0 && !this.opts.fragments) {
      await this.addBlock(tail, fd, owner, track, tailBuf);
    } else {
      if (tail.length > 0 && this.spool === null) await this.addFragment(tail, fd);
      else if (tail.length > 0) await this.spoolTail(tail, fd);
      if (tailBuf !== null) this.give(tailBuf); // the tail was copied
    }
    fd.state = 'ready';
    return fd;
  }

  /** Queue every full block; return the final partial block (maybe empty) and its pooled buffer. */
  private async streamBlocks(
    src: FileSource,
    fd: FileData,
    owner: object,
    track: { first: number },
    hash: Hash | null,
  ): Promise<{ tail: Uint8Array; buf: Buffer | null }> {
    const bs = this.bs;
    if (src instanceof Uint8Array) {
      hash?.update(src);
      let off = 0;
      for (; off + bs <= src.length; off += bs) await this.addBlock(src.subarray(off, off + bs), fd, owner, track);
      return { tail: src.subarray(off), buf: null };
    }
    if (src === null || typeof src !== 'object' || typeof (src as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function') {
      throw writeError('HPCC_E_SQFS_BAD_SOURCE', 'file data must be a Uint8Array or an async iterable of Uint8Array');
    }
    let block = this.take();
    let fill = 0;
    for await (const chunk of src) {
      if (!(chunk instanceof Uint8Array)) {
        throw writeError('HPCC_E_SQFS_BAD_SOURCE', 'file data chunks must be Uint8Array (a string chunk means the stream has an encoding set)');
      }
      hash?.update(chunk);
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(bs - fill, chunk.length - off);
        block.set(chunk.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === bs) {
          await this.addBlock(block, fd, owner, track, block);
          block = this.take();
          fill = 0;
        }
      }
    }
    return { tail: block.subarray(0, fill), buf: block };
  }

  /** Block buffers are pooled: a few per job in flight, reused once written. */
  private take(): Buffer {
    return this.pool.pop() ?? Buffer.allocUnsafe(this.bs);
  }

  private give(buf: Buffer): void {
    if (this.pool.length < this.opts.concurrency + 2) this.pool.push(buf);
  }

  /** One block of a file: sparse word, or a compression job. The block must not be reused. */
  private async addBlock(block: Uint8Array, fd: FileData, owner: object, track: { first: number }, recycle: Buffer | null = null): Promise<void> {
    const i = fd.words.length;
    if (fd.words === NO_WORDS) fd.words = [];
    if (this.isZero(block)) {
      fd.words.push(0);
      fd.sparse += block.length;
      this.stats.sparseBlocks++;
      if (recycle !== null) this.give(recycle);
      return;
    }
    fd.words.push(-1);
    const place = (start: number, word: number): void => {
      if (track.first < 0) {
        track.first = start;
        fd.start = start;
      }
      fd.words[i] = word;
    };
    await this.enqueue(block, owner, place, true, recycle);
  }

  private isZero(block: Uint8Array): boolean {
    const z = block.length === this.bs ? this.zero : this.zero.subarray(0, block.length);
    return Buffer.from(block.buffer, block.byteOffset, block.length).equals(z);
  }

  private async addFragment(tail: Uint8Array, fd: FileData): Promise<void> {
    if (this.frag !== null && this.frag.fill + tail.length > this.bs) await this.flushFragment();
    if (this.frag === null) {
      this.frag = { buf: this.take(), fill: 0, index: this.fragments.length };
      this.fragments.push({ start: 0, word: 0 });
    }
    const f = this.frag;
    f.buf.set(tail, f.fill);
    fd.fragment = f.index;
    fd.fragOffset = f.fill;
    f.fill += tail.length;
  }

  /** Queue the open fragment block (between files only). */
  async flushFragment(): Promise<void> {
    const f = this.frag;
    if (f === null) return;
    this.frag = null;
    const slot = this.fragments[f.index]!;
    const place = (start: number, word: number): void => {
      slot.start = start;
      slot.word = word;
    };
    await this.enqueue(f.buf.subarray(0, f.fill), null, place, true, f.buf);
  }

  /** Deterministic mode: park a tail raw in the spool; relayout() packs it. */
  private async spoolTail(tail: Uint8Array, fd: FileData): Promise<void> {
    await this.enqueue(Buffer.from(tail), null, (start) => (fd.tailAt = start), false);
  }

  private async enqueue(raw: Uint8Array, owner: object | null, place: Job['place'], compress = true, recycle: Buffer | null = null): Promise<void> {
    if (this.stopped) throw writeError('HPCC_E_SQFS_WRITER_STATE', 'the squashfs writer was aborted');
    const compressed = compress ? this.enc.compress(raw) : null;
    compressed?.catch(() => undefined); // awaited in drainOne; dropped jobs must not warn
    this.queue.push({ compressed, raw, owner, place, recycle });
    while (this.queue.length > this.opts.concurrency) await this.drainOne();
  }

  private async drainOne(): Promise<void> {
    const job = this.queue.shift()!;
    try {
      if (job.compressed === null) {
        job.place(await this.sink.write(job.raw), job.raw.length);
        return;
      }
      const c = await job.compressed;
      const stored = c.length < job.raw.length;
      if (!stored) this.stats.rawBlocks++;
      const bytes = stored ? c : job.raw;
      const start = await this.sink.write(bytes);
      job.place(start, stored ? bytes.length : bytes.length | DATA_UNCOMPRESSED);
      if (job.recycle !== null) this.give(job.recycle); // compressed and written: no longer referenced
    } catch (e) {
      this.broken ??= e; // a codec or write failure leaves the image unusable
      throw e;
    }
  }

  /** Drop a file's queued jobs and rewind over its written blocks (they are the last bytes written). */
  private cancel(owner: object, firstWritten: number): void {
    this.queue = this.queue.filter((j) => j.owner !== owner);
    if (firstWritten >= 0) this.sink.rewind(firstWritten);
  }

  /** Flush the fragment block and write everything queued. */
  async drain(): Promise<void> {
    await this.flushFragment();
    while (this.queue.length > 0) await this.drainOne();
  }

  /**
   * Deterministic mode: copy every file's blocks from the spool into the
   * image in the given order (the tree's inode order) and pack the tails
   * into fragment blocks in that order. Words (on-disk sizes) are unchanged.
   */
  async relayout(files: readonly FileData[]): Promise<void> {
    const spool = this.spool;
    if (spool === null) return;
    await this.drain();
    this.sink = this.out;
    const buf = Buffer.allocUnsafe(1 << 20);
    for (const fd of files) {
      let len = 0;
      for (const w of fd.words) len += w & DATA_SIZE_MASK;
      const from = fd.start;
      fd.start = len > 0 ? this.out.pos : 0;
      for (let done = 0; done < len; ) {
        const n = Math.min(buf.length, len - done);
        await spool.readAt(buf.subarray(0, n), from + done);
        await this.out.write(buf.subarray(0, n));
        done += n;
      }
      const tailLen = fd.size % this.bs;
      if (fd.tailAt >= 0 && tailLen > 0) {
        const tail = Buffer.allocUnsafe(tailLen);
        await spool.readAt(tail, fd.tailAt);
        await this.addFragment(tail, fd);
      }
    }
    await this.drain();
  }

  /**
   * Drop fragment table entries no live file uses (their files were removed
   * or replaced), renumbering the rest in order: unsquashfs refuses images
   * with more fragments than inodes. The bytes stay as unreferenced data.
   */
  compactFragments(files: readonly FileData[]): void {
    const used = new Uint8Array(this.fragments.length);
    for (const fd of files) if (fd.fragment !== INVALID32) used[fd.fragment] = 1;
    const renumber = new Int32Array(this.fragments.length);
    let next = 0;
    for (let i = 0; i < this.fragments.length; i++) {
      renumber[i] = next;
      if (used[i]) this.fragments[next++] = this.fragments[i]!;
    }
    if (next === this.fragments.length) return;
    this.fragments.length = next;
    for (const fd of files) if (fd.fragment !== INVALID32) fd.fragment = renumber[fd.fragment]!;
  }

  /** Forget queued work (abort). */
  discard(): void {
    this.stopped = true;
    this.queue = [];
    this.frag = null;
  }
}
