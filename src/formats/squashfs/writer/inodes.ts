/**
 * finish() part 1: number the inodes and write the inode and directory
 * tables (squashfs-format.md §5, §6, §8).
 *
 * Pass 1 (sync) sorts every directory by raw name bytes, counts links and
 * numbers inodes in post-order (children before parents, depth-first by
 * sorted name, root last = N), visiting each hard-linked inode once.
 * Pass 2 (async) replays that order: non-directories are appended to the
 * inode table; a directory appends its listing to the directory table, then
 * its own inode, so every ref it needs is already known.
 */
import {
  basicType,
  encodeInode,
  INVALID32,
  InodeType,
  type Inode,
  type XattrIdEntry,
} from '../layout.js';
import { writeListing, type ListingEntry } from './directory.js';
import type { MetadataWriter } from './metadata.js';
import { writeError } from './paths.js';
import type { DirNode, Node } from './tree.js';
import type { XattrRegistry } from './xattrs.js';

const TWO32 = 0x100000000;

interface Child {
  name: Buffer;
  node: Node;
}

interface Visit {
  node: Node;
  /** Sorted live children (directories only). */
  children?: Child[];
  parentIno?: number;
  parent?: DirNode;
}

/** Pass 1: sorted post-order of distinct inodes, with numbers and link counts assigned. */
export function numberTree(root: DirNode): Visit[] {
  const order: Visit[] = [];
  const sorted = (dir: DirNode): Child[] => {
    const out: Child[] = [];
    for (const [name, node] of dir.children) {
      if (node.kind === 'file' && node.data.state === 'failed') continue; // data source failed
      out.push({ name: Buffer.from(name, 'utf8'), node });
    }
    out.sort((a, b) => Buffer.compare(a.name, b.name));
    return out;
  };
  interface Frame {
    visit: Visit;
    i: number;
  }
  const rootVisit: Visit = { node: root, children: sorted(root) };
  const stack: Frame[] = [{ visit: rootVisit, i: 0 }];
  let next = 1;
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    const kids = f.visit.children!;
    if (f.i < kids.length) {
      const c = kids[f.i++]!;
      if (c.node.kind === 'dir') {
        stack.push({ visit: { node: c.node, children: sorted(c.node), parent: f.visit.node as DirNode }, i: 0 });
      } else {
        c.node.nlink++;
        if (c.node.nlink === 1) {
          c.node.ino = next++;
          order.push({ node: c.node });
        }
      }
      continue;
    }
    stack.pop();
    const dir = f.visit.node as DirNode;
    dir.nlink = 2 + kids.reduce((n, c) => n + (c.node.kind === 'dir' ? 1 : 0), 0);
    dir.ino = next++;
    order.push(f.visit);
  }
  for (const v of order) if (v.node.kind === 'dir') v.parentIno = v.parent === undefined ? next : v.parent.ino; // root: inode_count + 1
  return order;
}

export interface InodeContext {
  inodes: MetadataWriter;
  dirs: MetadataWriter;
  xattrs: XattrRegistry;
  kv: MetadataWriter;
  xattrIds: XattrIdEntry[];
  /** uid/gid values in order of first use (§7 id table). */
  ids: number[];
  blockSize: number;
}

/** Pass 2: write every inode and listing; returns refs by inode number - 1. */
export async function writeInodes(order: readonly Visit[], ctx: InodeContext): Promise<number[]> {
  const idIndex = new Map<number, number>();
  const id = (v: number): number => {
    let i = idIndex.get(v);
    if (i === undefined) {
      if (ctx.ids.length >= 0x10000) throw writeError('HPCC_E_SQFS_TOO_MANY_IDS', 'more than 65536 distinct uid/gid values', 'squashfs stores at most 65536 ids.');
      i = ctx.ids.length;
      ctx.ids.push(v);
      idIndex.set(v, i);
    }
    return i;
  };
  const refs = new Array<number>(order.length);
  for (const v of order) {
    const n = v.node;
    const uidIdx = id(n.meta.uid);
    const gidIdx = id(n.meta.gid);
    const xattr = n.xattrs === null ? INVALID32 : await ctx.xattrs.use(n.xattrs, ctx.kv, ctx.xattrIds);
    const hasX = xattr !== INVALID32;
    const { mode, mtime } = n.meta;
    const inodeNumber = n.ino;
    let ino: Inode;
    switch (n.kind) {
      case 'dir': {
        const entries: ListingEntry[] = v.children!.map((c) => ({
          name: c.name,
          ref: c.node.ref,
          ino: c.node.ino,
          type: basicType(typeOf(c.node)),
        }));
        const listing = await writeListing(ctx.dirs, entries);
        // extended like mksquashfs: xattrs, a big listing, an index, or more than one run's worth of entries
        const ext = hasX || listing.size + 3 > 0xffff || listing.index.length > 0 || entries.length > 256;
        ino = {
          mode, uidIdx, gidIdx, mtime, inodeNumber,
          kind: 'dir',
          type: ext ? InodeType.LDir : InodeType.Dir,
          dirBlock: Math.floor(listing.ref / 0x10000),
          dirOffset: listing.ref % 0x10000,
          nlink: n.nlink,
          fileSize: listing.size + 3,
          parentInode: v.parentIno!,
          xattr,
          index: ext ? listing.index : [],
        };
        break;
      }
      case 'file': {
        const d = n.data;
        if (d.words.some((w) => w < 0)) throw new Error('internal: file block not placed before finish');
        const sparse = d.sparse >= d.size ? Math.max(0, d.size - 1) : d.sparse;
        const ext = hasX || n.nlink > 1 || d.size >= TWO32 || d.start >= TWO32 || sparse > 0;
        ino = {
          mode, uidIdx, gidIdx, mtime, inodeNumber,
          kind: 'file',
          type: ext ? InodeType.LFile : InodeType.File,
          blocksStart: d.start,
          fragment: d.fragment,
          fragOffset: d.fragOffset,
          fileSize: d.size,
          sparse,
          nlink: n.nlink,
          xattr,
          blockSizes: d.words,
        };
        break;
      }
      case 'symlink':
        ino = { mode, uidIdx, gidIdx, mtime, inodeNumber, kind: 'symlink', type: hasX ? InodeType.LSymlink : InodeType.Symlink, nlink: n.nlink, target: n.target, xattr };
        break;
      case 'dev': {
        const t = n.block ? InodeType.BlockDev : InodeType.CharDev;
        ino = { mode, uidIdx, gidIdx, mtime, inodeNumber, kind: 'dev', type: hasX ? t + 7 : t, nlink: n.nlink, rdev: n.rdev, xattr };
        break;
      }
      default: {
        const t = n.kind === 'fifo' ? InodeType.Fifo : InodeType.Socket;
        ino = { mode, uidIdx, gidIdx, mtime, inodeNumber, kind: 'ipc', type: hasX ? t + 7 : t, nlink: n.nlink, xattr };
      }
    }
    n.ref = ctx.inodes.ref();
    refs[n.ino - 1] = n.ref;
    const flushing = ctx.inodes.write(encodeInode(ino));
    if (flushing !== undefined) await flushing; // only when a chunk filled up
  }
  return refs;
}

function typeOf(n: Node): InodeType {
  switch (n.kind) {
    case 'dir':
      return InodeType.Dir;
    case 'file':
      return InodeType.File;
    case 'symlink':
      return InodeType.Symlink;
    case 'dev':
      return n.block ? InodeType.BlockDev : InodeType.CharDev;
    case 'fifo':
      return InodeType.Fifo;
    case 'socket':
      return InodeType.Socket;
  }
}
