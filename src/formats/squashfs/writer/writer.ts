/**
 * SquashfsWriter: a streaming squashfs 4.0 writer (squashfs-format.md).
 *
 * Entries arrive in any order; file data is compressed and written as it
 * arrives (memory grows with the number of entries, never with data bytes);
 * inode, directory, fragment, export, id and xattr tables are written by
 * finish(). Create one with `new SquashfsWriter(opts)` (options checked
 * synchronously, codec loaded on first use) or `await SquashfsWriter.create(opts)`
 * (also loads the codec, so an unavailable codec fails there).
 *
 * addFile() calls are serialised internally: the entry appears in the tree
 * at call time (so later calls such as remove() apply in call order), and
 * its data is streamed after the data of earlier addFile() calls. A caller
 * may await each call (the usual way, which bounds memory) or fire several;
 * a Uint8Array given as data must stay unchanged until its call resolves.
 * If a file's data source throws, that call rejects, the entry is dropped
 * and its bytes are rewound; the writer stays usable. Write or codec errors
 * are fatal: every later call and finish() reject.
 */
import type { FileHandle } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { createEncoder, type CodecName, type Encoder } from '../codecs/index.js';
import { encodeRdev, MAX_BLOCK_LOG, MIN_BLOCK_LOG, SUPERBLOCK_SIZE } from '../layout.js';
import { DataWriter, newFileData, type FileSource } from './data.js';
import { finishImage, openSpool, type SquashfsWriteResult } from './finish.js';
import { ImageOutput } from './output.js';
import { splitPath, storedMeta, symlinkTarget, writeError, type StoredMeta } from './paths.js';
import { EntryTree, makeDir, makeNode, type FileNode, type Node } from './tree.js';
import { XattrRegistry } from './xattrs.js';

export interface SquashfsWriterOptions {
  /** Output file, opened by the caller (read/write); the writer owns it from `offset` on. */
  handle: FileHandle;
  /** Byte offset of the image inside the file (SIF partition); multiple of 4096; default 0. */
  offset?: number;
  /** Default 'gzip'. */
  compressor?: CodecName;
  /** Codec level (each codec's own default). */
  level?: number;
  /** Power of two 4096..1048576; default 131072. */
  blockSize?: number;
  /** Pack tail ends (every file's last partial block) into fragment blocks; default true. */
  fragments?: boolean;
  /** Store identical file contents once (sha256 of content + size); default true. */
  dedupe?: boolean;
  /** Write the NFS export table; default true (like mksquashfs). */
  exportTable?: boolean;
  /**
   * Byte-identical output for the same set of entries in any arrival order:
   * fixed mkfs time (mkfsTime or 0, also used for implicit directories),
   * inode order from the sorted tree, and the data area laid out in tree
   * order at finish() (costs one extra copy of the compressed data; see spoolDir).
   */
  deterministic?: boolean;
  /** Superblock time in seconds (default: now, or 0 when deterministic). */
  mkfsTime?: number;
  /**
   * Deterministic mode compresses data as it arrives into an unlinked spool
   * file here (default os.tmpdir()) and copies it into the image in tree
   * order at finish(), so the image does not depend on arrival order.
   */
  spoolDir?: string;
  /** Compression jobs in flight; default 2 × CPU cores. */
  concurrency?: number;
  /** Non-fatal problems (e.g. an xattr namespace squashfs cannot store). */
  onWarning?: (code: string, message: string) => void;
}

export interface EntryMeta {
  /** Permission bits incl. suid/sgid/sticky; type bits are ignored. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds; clamped to 0..2^32-1. */
  mtime: number;
  xattrs?: ReadonlyMap<string, Uint8Array>;
}


export type { SquashfsWriteResult } from './finish.js';

type State = 'open' | 'finishing' | 'done' | 'aborted';

interface Engine {
  enc: Encoder;
  options: Uint8Array | null;
  out: ImageOutput;
  data: DataWriter;
}

export class SquashfsWriter {
  private readonly tree: EntryTree;
  private readonly xattrs: XattrRegistry;
  private dataWriter: DataWriter | undefined;
  private chain: Promise<void> = Promise.resolve();
  private state: State = 'open';
  private fatal: unknown = undefined;
  private readonly mkfsTime: number;
  /** Number of warnings reported through onWarning. */
  warnings = 0;

  /** Same as `new SquashfsWriter(opts)` but also fails early when the codec cannot be loaded. */
  static async create(opts: SquashfsWriterOptions): Promise<SquashfsWriter> {
    const w = new SquashfsWriter(opts);
    await w.engine();
    return w;
  }

  private readonly blockSize: number;
  private readonly blockLog: number;
  private readonly offset: number;
  private readonly concurrency: number;
  private readonly encoder: Promise<Encoder>;
  private started: Promise<Engine> | null = null;
  private spool: FileHandle | null = null;

  /** Options are checked here; the codec is loaded on first use (see create()). */
  constructor(private readonly opts: SquashfsWriterOptions) {
    const blockSize = opts.blockSize ?? 131072;
    const log = Math.log2(blockSize);
    if (!Number.isInteger(log) || log < MIN_BLOCK_LOG || log > MAX_BLOCK_LOG) {
      throw writeError('HPCC_E_SQFS_BAD_OPTION', `block size must be a power of two from 4096 to 1048576, got ${blockSize}`);
    }
    const offset = opts.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % 4096 !== 0) {
      throw writeError('HPCC_E_SQFS_BAD_OPTION', `image offset must be a non-negative multiple of 4096, got ${offset}`);
    }
    const concurrency = opts.concurrency ?? 2 * availableParallelism();
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
      throw writeError('HPCC_E_SQFS_BAD_OPTION', `concurrency must be 1..256, got ${concurrency}`);
    }
    this.blockSize = blockSize;
    this.blockLog = log;
    this.offset = offset;
    this.concurrency = concurrency;
    const det = opts.deterministic === true;
    this.mkfsTime = Math.min(0xffffffff, Math.max(0, Math.floor(opts.mkfsTime ?? (det ? 0 : Date.now() / 1000))));
    this.tree = new EntryTree(this.mkfsTime);
    this.xattrs = new XattrRegistry((code, msg) => {
      this.warnings++;
      opts.onWarning?.(code, msg);
    });
    this.encoder = createEncoder(opts.compressor ?? 'gzip', opts.level === undefined ? { blockSize } : { blockSize, level: opts.level });
    this.encoder.catch(() => undefined); // reported by the first call that needs it
  }

  /** The codec, output and data pipeline, set up on first use. */
  private engine(): Promise<Engine> {
    this.started ??= this.encoder.then(async (enc) => {
      const options = enc.optionsBlock();
      const dataStart = SUPERBLOCK_SIZE + (options === null ? 0 : 2 + options.length);
      const out = new ImageOutput(this.opts.handle, this.offset, dataStart);
      const spool = this.opts.deterministic === true ? await openSpool(this.opts.spoolDir ?? tmpdir()) : null;
      this.spool = spool;
      const data = new DataWriter(
        out,
        enc,
        {
          blockSize: this.blockSize,
          concurrency: this.concurrency,
          fragments: this.opts.fragments !== false,
          dedupe: this.opts.dedupe !== false,
        },
        spool === null ? null : new ImageOutput(spool, 0, 0),
      );
      this.dataWriter = data;
      return { enc, options, out, data };
    });
    return this.started;
  }

  private async closeSpool(): Promise<void> {
    const s = this.spool;
    this.spool = null;
    await s?.close().catch(() => undefined);
  }

  /** Counters for reporting (bytes in, duplicate files/bytes, sparse and raw blocks). */
  get stats(): Readonly<DataWriter['stats']> | undefined {
    return this.dataWriter?.stats;
  }

  private checkOpen(): void {
    if (this.fatal !== undefined) throw writeError('HPCC_E_SQFS_WRITER_FAILED', `the squashfs writer failed earlier: ${(this.fatal as Error).message ?? String(this.fatal)}`);
    if (this.state !== 'open') throw writeError('HPCC_E_SQFS_WRITER_STATE', `the squashfs writer is ${this.state}; no more entries can be added`);
  }

  private implicitTime(mtime: number): number {
    return this.opts.deterministic === true ? this.mkfsTime : mtime;
  }

  private nonRoot(path: string): string[] {
    const parts = splitPath(path);
    if (parts.length === 0) throw writeError('HPCC_E_SQFS_ROOT_NOT_DIR', 'the image root can only be a directory');
    return parts;
  }

  private put(path: string, parts: string[], meta: EntryMeta, make: (m: StoredMeta) => Node): void {
    const m = storedMeta(meta);
    const node = make(m);
    node.xattrs = this.xattrs.intern(meta.xattrs, path);
    this.tree.put(parts, node, this.implicitTime(m.mtime));
  }

  /** Add or update a directory ('' or '/' = the root). Children of an existing directory are kept. */
  addDirectory(path: string, meta: EntryMeta): void {
    this.checkOpen();
    const parts = splitPath(path);
    const m = storedMeta(meta);
    const x = this.xattrs.intern(meta.xattrs, path);
    const old = this.tree.lookup(parts);
    if (old !== undefined && old.kind === 'dir') {
      old.meta = m;
      old.xattrs = x;
      old.explicit = true;
      return;
    }
    this.tree.put(parts, makeDir(m, x, true), this.implicitTime(m.mtime));
  }

  /** Add a regular file, streaming its data (see the class comment for ordering). */
  async addFile(path: string, meta: EntryMeta, data: FileSource): Promise<void> {
    this.checkOpen();
    const parts = this.nonRoot(path);
    const fd = newFileData();
    let node!: FileNode;
    this.put(path, parts, meta, (m) => (node = makeNode({ kind: 'file', meta: m, xattrs: null, data: fd }) as FileNode));
    const run = this.chain.then(async () => {
      if (this.state === 'aborted') throw writeError('HPCC_E_SQFS_WRITER_STATE', 'the squashfs writer was aborted');
      if (this.fatal !== undefined) throw this.fatal;
      const eng = await this.engine();
      try {
        node.data = await eng.data.writeFile(data, fd);
      } catch (e) {
        if (eng.data.broken !== undefined) this.fatal = eng.data.broken;
        else if (this.tree.lookup(parts) === node) this.tree.remove(parts); // drop the entry, keep going
        throw e;
      }
    });
    this.chain = run.catch(() => undefined);
    await run;
  }

  addSymlink(path: string, target: string, meta: EntryMeta): void {
    this.checkOpen();
    const parts = this.nonRoot(path);
    const t = symlinkTarget(target);
    this.put(path, parts, meta, (m) => makeNode({ kind: 'symlink', meta: m, xattrs: null, target: t }));
  }

  /** Another name for an already-added non-directory (same inode, nlink counted at finish). */
  addHardLink(path: string, existingPath: string): void {
    this.checkOpen();
    const parts = this.nonRoot(path);
    const node = this.tree.lookup(splitPath(existingPath));
    if (node === undefined || node.kind === 'dir') {
      throw writeError(
        'HPCC_E_SQFS_LINK_TARGET',
        `hard link ${path} -> ${existingPath}: ${node === undefined ? 'target not in the image' : 'target is a directory'}`,
        'Add the link target before the link; directories cannot be hard-linked.',
      );
    }
    if (this.tree.lookup(parts) === node) return;
    this.tree.put(parts, node, this.implicitTime(node.meta.mtime));
  }

  addDevice(path: string, kind: 'char' | 'block', major: number, minor: number, meta: EntryMeta): void {
    this.checkOpen();
    const parts = this.nonRoot(path);
    if (kind !== 'char' && kind !== 'block') throw writeError('HPCC_E_SQFS_BAD_DEVICE', `device kind must be 'char' or 'block'`);
    if (!Number.isInteger(major) || major < 0 || major > 0xfff || !Number.isInteger(minor) || minor < 0 || minor > 0xfffff) {
      throw writeError('HPCC_E_SQFS_BAD_DEVICE', `device ${path}: ${major}:${minor} out of range (major ≤ 4095, minor ≤ 1048575)`);
    }
    const rdev = encodeRdev(major, minor);
    this.put(path, parts, meta, (m) => makeNode({ kind: 'dev', meta: m, xattrs: null, block: kind === 'block', rdev }));
  }

  addFifo(path: string, meta: EntryMeta): void {
    this.checkOpen();
    const parts = this.nonRoot(path);
    this.put(path, parts, meta, (m) => makeNode({ kind: 'fifo', meta: m, xattrs: null }));
  }

  addSocket(path: string, meta: EntryMeta): void {
    this.checkOpen();
    const parts = this.nonRoot(path);
    this.put(path, parts, meta, (m) => makeNode({ kind: 'socket', meta: m, xattrs: null }));
  }

  /** Drop an entry and its subtree; written data stays as unreferenced bytes. False if absent. */
  remove(path: string): boolean {
    this.checkOpen();
    return this.tree.remove(splitPath(path));
  }

  /** Drop every child of a directory (OCI opaque whiteout). False if it is not a directory. */
  clearDirectory(path: string): boolean {
    this.checkOpen();
    return this.tree.clear(splitPath(path));
  }

  has(path: string): boolean {
    return this.tree.lookup(splitPath(path)) !== undefined;
  }

  /** Write the tables and the superblock; the file then ends at offset + size. */
  async finish(): Promise<SquashfsWriteResult> {
    this.checkOpen();
    this.state = 'finishing';
    try {
      await this.chain;
      if (this.fatal !== undefined) throw this.fatal;
      const { enc, options, out, data } = await this.engine();
      await data.drain();
      const result = await finishImage({
        root: this.tree.root,
        xattrs: this.xattrs,
        enc,
        options,
        out,
        data,
        afterRelayout: this.spool === null ? null : () => this.closeSpool(),
        mkfsTime: this.mkfsTime,
        blockSize: this.blockSize,
        blockLog: this.blockLog,
        exportTable: this.opts.exportTable !== false,
        fragments: this.opts.fragments !== false,
        dedupe: this.opts.dedupe !== false,
      });
      this.state = 'done';
      return result;
    } catch (e) {
      this.fatal ??= e;
      await this.closeSpool();
      throw e;
    }
  }

  /** Stop: queued work is dropped and later calls reject. The caller removes the file. */
  async abort(): Promise<void> {
    if (this.state === 'done' || this.state === 'aborted') return;
    this.state = 'aborted';
    this.dataWriter?.discard();
    await this.chain;
    this.dataWriter?.discard();
    await this.started?.catch(() => undefined);
    await this.closeSpool();
  }
}
