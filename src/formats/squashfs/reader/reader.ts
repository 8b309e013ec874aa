/**
 * SquashfsReader: random access to a squashfs 4.0 image (spec §1–§8) in a
 * file, or in a window of one (a SIF partition). Everything the image says is
 * validated before use; hostile images produce SquashfsFormatError (or another
 * HpccError) in bounded time and memory.
 *
 * Paths are '/'-separated and relative to the image root ('a/b' and '/a/b' are
 * the same); '..' never climbs above the root, and absolute symlink targets are
 * resolved against the image root.
 *
 * Stable error codes (SquashfsFormatError unless noted):
 *   image:   HPCC_E_SQFS_BAD_MAGIC, _VERSION, _BAD_SUPERBLOCK, _TRUNCATED, _OUT_OF_BOUNDS,
 *            _OFFSET_RANGE, _BAD_COMPRESSOR, _BAD_COMP_OPTIONS, _BAD_METADATA, _DECOMPRESS,
 *            _BAD_TABLE, _BAD_INDEX, _BAD_REF, _BAD_INODE, _BAD_DIR, _BAD_NAME, _DIR_LOOP,
 *            _BAD_BLOCK, _BAD_FRAGMENT, _BAD_XATTR; HPCC_E_CODEC_UNSUPPORTED (CodecError)
 *   lookup:  HPCC_E_SQFS_NOT_FOUND, _NOT_DIR, _NOT_LINK, _NOT_FILE, _SYMLINK_LOOP, _BAD_PATH,
 *            _FILE_TOO_LARGE (readFile over maxBytes), _CLOSED
 *   extract: HPCC_E_EXTRACT_TARGET (HpccIOError), HPCC_E_UNSAFE_PATH, HPCC_E_IO_* (host errors)
 */
import { HpccError, SquashfsFormatError } from '../../../errors/index.js';
import { type CodecName, type Decoder, codecName, createDecoder } from '../codecs/index.js';
import {
  type DirInode,
  Flag,
  FRAGMENT_ENTRY_SIZE,
  ID_ENTRY_SIZE,
  INVALID64,
  type Inode,
  METADATA_SIZE,
  SUPERBLOCK_SIZE,
  type Superblock,
  basicType,
  decodeMetaHeader,
  decodeSuperblock,
} from '../layout.js';
import { DirectoryReader, type RawDirent } from './directory.js';
import { type Chunk, FileDataReader } from './file.js';
import { type EntryType, InodeReader, type SqfsStat, entryType } from './inodes.js';
import { MetadataReader, type TableBounds } from './metadata.js';
import { BufferImageSource, FileImageSource, type ImageSource } from './source.js';
import { validateSuperblock } from './superblock.js';
import { LookupTable } from './tables.js';
import { XattrReader } from './xattrs.js';

export type { EntryType, SqfsStat } from './inodes.js';

export interface SqfsDirent {
  name: string;
  type: EntryType;
  inodeNumber: number;
}

export interface OpenOptions {
  /** Byte offset of the image inside the file (e.g. a SIF partition). */
  offset?: number;
  /** Size of the window; defaults to the rest of the file. */
  size?: number;
}

/** Symlinks followed while resolving one path (as Linux's MAXSYMLINKS). */
export const MAX_SYMLINK_FOLLOWS = 40;
/** Deepest directory nesting walk() accepts. */
export const MAX_DEPTH = 4096;
/** readFile() refuses files larger than this unless maxBytes says otherwise. */
export const DEFAULT_READ_LIMIT = 512 * 1024 * 1024;

const utf8 = new TextEncoder();

function lookupError(code: string, msg: string): SquashfsFormatError {
  return new SquashfsFormatError(code, msg, { hint: 'Check the path inside the image (list it with `unsquashfs -l`).' });
}

/** Split a path into components; empty components and '.' are dropped. */
function components(path: string): string[] {
  if (typeof path !== 'string' || path.includes('\0')) throw lookupError('HPCC_E_SQFS_BAD_PATH', `invalid path ${JSON.stringify(path)}`);
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

export interface Resolved {
  ref: number;
  inode: Inode;
  path: string; // canonical '/a/b'
}

export class SquashfsReader {
  readonly compressor: CodecName;
  /** @internal */ readonly inodes: InodeReader;
  private readonly meta: MetadataReader;
  private readonly dirs: DirectoryReader;
  private readonly data: FileDataReader;
  private readonly xattrReader: XattrReader | null;
  private readonly root: Resolved;
  private readonly dirTable: TableBounds;
  private dirCapacity = -1;

  private constructor(
    private readonly src: ImageSource,
    readonly superblock: Superblock,
    decoder: Decoder,
  ) {
    const sb = superblock;
    this.compressor = decoder.name;
    this.meta = new MetadataReader(src, decoder);
    const end = sb.bytesUsed;
    const ids = new LookupTable(src, this.meta, 'id', sb.idTableStart, sb.idCount, ID_ENTRY_SIZE, sb.directoryTableStart + 1, end);
    const idValues: number[] = [];
    for (let i = 0; i < sb.idCount; i++) {
      const e = ids.entry(i);
      idValues.push(new DataView(e.buffer, e.byteOffset, 4).getUint32(0, true));
    }
    const frags =
      sb.fragmentCount > 0
        ? new LookupTable(src, this.meta, 'fragment', sb.fragmentTableStart, sb.fragmentCount, FRAGMENT_ENTRY_SIZE, sb.directoryTableStart + 1, end)
        : null;
    this.xattrReader =
      sb.xattrTableStart !== INVALID64 ? new XattrReader(src, this.meta, sb.xattrTableStart, sb.directoryTableStart + 1, end) : null;
    // The directory table ends where the next table's first metadata block starts (§8).
    let dirEnd = ids.firstBlock;
    if (frags) dirEnd = Math.min(dirEnd, frags.firstBlock);
    if (this.xattrReader) dirEnd = Math.min(dirEnd, this.xattrReader.kvStart);
    if (sb.exportTableStart !== INVALID64 && sb.exportTableStart + 8 <= end) {
      // The export table is never read, but its first block bounds the directory table (§8).
      const x = src.read(sb.exportTableStart, 8);
      const v = new DataView(x.buffer, x.byteOffset, 8);
      const first = v.getUint32(0, true) + v.getUint32(4, true) * 2 ** 32;
      if (first > sb.directoryTableStart && first < dirEnd) dirEnd = first;
    }
    const inodeTable: TableBounds = { name: 'inode table', start: sb.inodeTableStart, end: sb.directoryTableStart };
    const dirTable: TableBounds = { name: 'directory table', start: sb.directoryTableStart, end: dirEnd };
    this.inodes = new InodeReader(this.meta, inodeTable, sb.blockSize, sb.inodeCount, idValues, sb.fragmentCount);
    this.dirTable = dirTable;
    this.dirs = new DirectoryReader(this.meta, dirTable, sb.directoryTableStart - sb.inodeTableStart, sb.inodeCount);
    this.data = new FileDataReader(src, decoder, sb.blockSize, sb.inodeTableStart, frags);
    const rootInode = this.inodes.read(sb.rootInode);
    if (rootInode.kind !== 'dir') {
      throw new SquashfsFormatError('HPCC_E_SQFS_BAD_INODE', 'the root inode is not a directory');
    }
    this.root = { ref: sb.rootInode, inode: rootInode, path: '/' };
  }

  /** Open an image file, or the squashfs partition at `offset` (of `size` bytes) inside a larger file. */
  static async open(path: string, opts: OpenOptions = {}): Promise<SquashfsReader> {
    const src = FileImageSource.open(path, opts);
    try {
      return await SquashfsReader.fromSource(src);
    } catch (e) {
      await src.close();
      throw e;
    }
  }

  /**
   * Open the image in an already open file (at `offset`, `size` bytes): the
   * descriptor stays the caller's, close() leaves it open.
   */
  static async openFd(fd: number, path: string, opts: OpenOptions = {}): Promise<SquashfsReader> {
    return SquashfsReader.fromSource(FileImageSource.fromFd(fd, path, opts));
  }

  /** Open an image held in memory (used by tests and fuzzing). */
  static async fromBuffer(buf: Uint8Array): Promise<SquashfsReader> {
    return SquashfsReader.fromSource(new BufferImageSource(buf));
  }

  private static async fromSource(src: ImageSource): Promise<SquashfsReader> {
    if (src.size < SUPERBLOCK_SIZE) {
      throw new SquashfsFormatError('HPCC_E_SQFS_TRUNCATED', `image of ${src.size} bytes is smaller than a superblock`);
    }
    const sb = decodeSuperblock(src.read(0, SUPERBLOCK_SIZE));
    validateSuperblock(sb, src.size);
    if (codecName(sb.compressor) === undefined) {
      throw new SquashfsFormatError('HPCC_E_SQFS_BAD_COMPRESSOR', `unknown squashfs compressor id ${sb.compressor}`);
    }
    let options: Uint8Array | null = null;
    if (sb.flags & Flag.COMP_OPT) {
      // §2: one metadata block at offset 96, always stored uncompressed.
      const hdr = src.read(SUPERBLOCK_SIZE, 2);
      const { length, compressed } = decodeMetaHeader(hdr[0]! | (hdr[1]! << 8));
      if (compressed || length === 0 || length > METADATA_SIZE || SUPERBLOCK_SIZE + 2 + length > sb.inodeTableStart) {
        throw new SquashfsFormatError('HPCC_E_SQFS_BAD_COMP_OPTIONS', `compressor options block header 0x${(hdr[0]! | (hdr[1]! << 8)).toString(16)} is invalid`);
      }
      options = src.read(SUPERBLOCK_SIZE + 2, length).slice();
    }
    let decoder: Decoder;
    try {
      decoder = await createDecoder(sb.compressor, options, sb.blockSize);
    } catch (e) {
      if (e instanceof HpccError) throw e;
      throw new SquashfsFormatError('HPCC_E_SQFS_BAD_COMP_OPTIONS', `compressor options are not usable (${(e as Error)?.message ?? e})`, { cause: e });
    }
    return new SquashfsReader(src, sb, decoder);
  }

  // ------------------------------------------------------------ resolution

  private readEntryInode(d: RawDirent): Inode {
    const ino = this.inodes.read(d.ref);
    if (basicType(ino.type) !== d.type || ino.inodeNumber !== d.inodeNumber) {
      throw new SquashfsFormatError(
        'HPCC_E_SQFS_BAD_DIR',
        `directory entry ${JSON.stringify(d.nameStr)} (type ${d.type}, inode ${d.inodeNumber}) disagrees with its inode (type ${ino.type}, number ${ino.inodeNumber})`,
      );
    }
    return ino;
  }

  /** @internal One entry of a directory inode (through its index when it has one, else a scan), or undefined. */
  lookupIn(dir: Resolved, name: string): { entry: RawDirent | undefined; via: 'cache' | 'index' | 'scan' | 'list' } {
    if (dir.inode.kind !== 'dir') throw lookupError('HPCC_E_SQFS_NOT_DIR', `${dir.path} is not a directory`);
    const entry = this.dirs.lookup(dir.ref, dir.inode, utf8.encode(name));
    return { entry, via: this.dirs.lastLookup };
  }

  /** @internal Sorted entries of a directory inode. */
  listDir(ref: number, ino: DirInode): RawDirent[] {
    return this.dirs.list(ref, ino);
  }

  /** @internal Resolve a path; symlinks in the middle are always followed, the last one only when `followLast`. */
  resolve(path: string, followLast: boolean): Resolved {
    const stack: Resolved[] = [this.root];
    const todo = components(path).reverse(); // a stack: next component last
    let follows = 0;
    while (todo.length > 0) {
      const c = todo.pop()!;
      if (c === '.') continue;
      if (c === '..') {
        if (stack.length > 1) stack.pop();
        continue;
      }
      const cur = stack[stack.length - 1]!;
      if (cur.inode.kind !== 'dir') throw lookupError('HPCC_E_SQFS_NOT_DIR', `${cur.path} is not a directory`);
      const d = this.dirs.lookup(cur.ref, cur.inode, utf8.encode(c));
      const childPath = cur.path === '/' ? `/${c}` : `${cur.path}/${c}`;
      if (!d) throw lookupError('HPCC_E_SQFS_NOT_FOUND', `${childPath} does not exist in the image`);
      const ino = this.readEntryInode(d);
      if (ino.kind === 'symlink' && (todo.length > 0 || followLast)) {
        if (++follows > MAX_SYMLINK_FOLLOWS) {
          throw lookupError('HPCC_E_SQFS_SYMLINK_LOOP', `too many levels of symbolic links resolving ${path}`);
        }
        const target = new TextDecoder().decode(ino.target);
        if (target.startsWith('/')) stack.length = 1;
        const parts = components(target.replace(/\0/g, ''));
        for (let i = parts.length - 1; i >= 0; i--) todo.push(parts[i]!);
        continue;
      }
      if (stack.length > MAX_DEPTH) throw lookupError('HPCC_E_SQFS_DIR_LOOP', `path ${path} is nested too deeply`);
      stack.push({ ref: d.ref, inode: ino, path: childPath });
    }
    return stack[stack.length - 1]!;
  }

  // ------------------------------------------------------------ public API

  async lstat(path: string): Promise<SqfsStat> {
    return this.inodes.stat(this.resolve(path, false).inode);
  }

  async stat(path: string): Promise<SqfsStat> {
    return this.inodes.stat(this.resolve(path, true).inode);
  }

  async readdir(path: string): Promise<SqfsDirent[]> {
    const r = this.resolve(path, true);
    if (r.inode.kind !== 'dir') throw lookupError('HPCC_E_SQFS_NOT_DIR', `${r.path} is not a directory`);
    return this.listDir(r.ref, r.inode).map((d) => ({ name: d.nameStr, type: entryType(d.type), inodeNumber: d.inodeNumber }));
  }

  async readlink(path: string): Promise<string> {
    const r = this.resolve(path, false);
    if (r.inode.kind !== 'symlink') throw lookupError('HPCC_E_SQFS_NOT_LINK', `${r.path} is not a symbolic link`);
    return new TextDecoder().decode(r.inode.target);
  }

  /** @internal Raw symlink target bytes. */
  linkTarget(ino: Inode): Uint8Array {
    if (ino.kind !== 'symlink') throw lookupError('HPCC_E_SQFS_NOT_LINK', `inode ${ino.inodeNumber} is not a symbolic link`);
    return ino.target;
  }

  private fileInode(path: string): Inode & { kind: 'file' } {
    const r = this.resolve(path, true);
    if (r.inode.kind !== 'file') {
      throw lookupError('HPCC_E_SQFS_NOT_FILE', `${r.path} is not a regular file`);
    }
    return r.inode;
  }

  async readFile(path: string, opts: { maxBytes?: number } = {}): Promise<Buffer> {
    const ino = this.fileInode(path);
    const max = opts.maxBytes ?? DEFAULT_READ_LIMIT;
    if (ino.fileSize > max) {
      throw new SquashfsFormatError('HPCC_E_SQFS_FILE_TOO_LARGE', `${path} is ${ino.fileSize} bytes (limit ${max})`, {
        hint: 'Use createReadStream() for large files, or raise maxBytes.',
      });
    }
    const parts: Uint8Array[] = [];
    for (const c of this.data.chunks(ino)) parts.push(c.data ?? new Uint8Array(c.length));
    return Buffer.concat(parts);
  }

  /** @internal File content chunks (holes as { data: null }) of a file inode. */
  fileChunks(ino: Inode & { kind: 'file' }): Generator<Chunk> {
    return this.data.chunks(ino);
  }

  createReadStream(path: string): AsyncIterable<Uint8Array> {
    // Resolve lazily so errors surface from the iteration, like fs streams.
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        const ino = self.fileInode(path);
        for (const c of self.data.chunks(ino)) yield c.data ?? new Uint8Array(c.length);
      },
    };
  }

  /** Extended attributes of the entry itself (symlinks are not followed, like lgetxattr). */
  async getXattrs(path: string): Promise<Map<string, Uint8Array>> {
    return this.xattrsOf(this.resolve(path, false).inode);
  }

  /** @internal */
  xattrsOf(ino: Inode): Map<string, Uint8Array> {
    const idx = ino.kind === 'dir' || ino.kind === 'file' || ino.kind === 'symlink' || ino.kind === 'dev' || ino.kind === 'ipc' ? ino.xattr : undefined;
    // §9.2: flags may disagree with tables; an index without a table means "none".
    if (idx === undefined || this.xattrReader === null) return new Map();
    return this.xattrReader.read(idx);
  }

  /**
   * Upper bound of the directory table's decompressed size (8 KiB per block
   * header in its chain). Listings of distinct directories never overlap, so
   * a walk that lists more than this is being fed the same bytes again
   * (hostile sharing) and is stopped: walks stay linear in the table size.
   */
  private directoryCapacity(): number {
    if (this.dirCapacity < 0) {
      let p = this.dirTable.start;
      let blocks = 0;
      while (p + 2 <= this.dirTable.end) {
        const h = this.src.read(p, 2);
        const len = (h[0]! | (h[1]! << 8)) & 0x7fff;
        if (len === 0) break;
        p += 2 + len;
        blocks++;
      }
      this.dirCapacity = blocks * METADATA_SIZE;
    }
    return this.dirCapacity;
  }

  /** @internal Depth-first, sorted walk yielding inodes too (extraction uses them). */
  async *walkInodes(path = '/'): AsyncGenerator<{ path: string; stat: SqfsStat; inode: Inode; name: Uint8Array | null }> {
    const start = this.resolve(path, false);
    const seen = new Set<number>();
    let listed = 0;
    const stack: Array<{ path: string; ref: number; inode: Inode; name: Uint8Array | null; depth: number }> = [
      { path: start.path, ref: start.ref, inode: start.inode, name: null, depth: 0 },
    ];
    while (stack.length > 0) {
      const e = stack.pop()!;
      yield { path: e.path, stat: this.inodes.stat(e.inode), inode: e.inode, name: e.name };
      if (e.inode.kind !== 'dir') continue;
      // A directory reached twice means a loop or a directory hard link: refuse (bounded work).
      if (seen.has(e.ref) || seen.has(-e.inode.inodeNumber)) {
        throw new SquashfsFormatError('HPCC_E_SQFS_DIR_LOOP', `directory ${e.path} is reachable twice (directory loop)`);
      }
      seen.add(e.ref);
      seen.add(-e.inode.inodeNumber);
      listed += Math.max(0, e.inode.fileSize - 3);
      if (listed > this.directoryCapacity()) {
        throw new SquashfsFormatError('HPCC_E_SQFS_BAD_DIR', `directory listings overlap: ${e.path} re-lists bytes already walked`);
      }
      if (e.depth >= MAX_DEPTH) throw new SquashfsFormatError('HPCC_E_SQFS_DIR_LOOP', `directory ${e.path} is nested too deeply`);
      const list = this.listDir(e.ref, e.inode);
      for (let i = list.length - 1; i >= 0; i--) {
        const d = list[i]!;
        const ino = this.readEntryInode(d);
        stack.push({ path: e.path === '/' ? `/${d.nameStr}` : `${e.path}/${d.nameStr}`, ref: d.ref, inode: ino, name: d.name, depth: e.depth + 1 });
      }
    }
  }

  /** Every entry under `path` (default the root), depth-first, names in sorted byte order; paths look like '/a/b'. */
  async *walk(path = '/'): AsyncIterable<{ path: string; stat: SqfsStat }> {
    for await (const e of this.walkInodes(path)) yield { path: e.path, stat: e.stat };
  }

  async close(): Promise<void> {
    this.meta.clear();
    this.dirs.clear();
    await this.src.close();
  }
}
