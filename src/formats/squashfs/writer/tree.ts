/**
 * The in-memory entry tree: only metadata lives here (file data is already
 * in the image; a FileNode holds where). Names are JS strings keyed in a Map
 * per directory and sorted as raw UTF-8 bytes at finish() (§6).
 *
 * Hard links are one node object reachable under several names; link counts
 * are computed at finish() from the tree as it is then, so removing or
 * replacing a name keeps nlink right.
 */
import type { StoredMeta } from './paths.js';
import type { XattrSet } from './xattrs.js';

/** Where a regular file's bytes are (§4); filled in as the data is written. */
export interface FileData {
  size: number;
  /** Absolute (image-relative) start of the first block; 0 when no block was written. */
  start: number;
  /** Block size words (bit 24 = stored raw, 0 = sparse block). */
  words: number[];
  fragment: number; // INVALID32 when none
  fragOffset: number;
  /** Bytes saved by sparse blocks. */
  sparse: number;
  state: 'pending' | 'ready' | 'failed';
  /** Deterministic mode only: where the raw tail waits in the spool (-1 when none). */
  tailAt: number;
}

interface Common {
  meta: StoredMeta;
  xattrs: XattrSet | null;
  /** Assigned at finish(): inode number, inode ref, link count. */
  ino: number;
  ref: number;
  nlink: number;
}

export interface DirNode extends Common {
  kind: 'dir';
  children: Map<string, Node>;
  explicit: boolean;
}
export interface FileNode extends Common {
  kind: 'file';
  data: FileData;
}
export interface SymlinkNode extends Common {
  kind: 'symlink';
  target: Uint8Array;
}
export interface DevNode extends Common {
  kind: 'dev';
  block: boolean;
  rdev: number;
}
export interface IpcNode extends Common {
  kind: 'fifo' | 'socket';
}
export type Node = DirNode | FileNode | SymlinkNode | DevNode | IpcNode;

/** Distributive Omit so object literals of each node kind type-check. */
type NewNode<T> = T extends Node ? Omit<T, 'ino' | 'ref' | 'nlink'> : never;

export function makeNode(n: NewNode<Node>): Node {
  // Add the finish() fields in place: a spread copy here made V8 keep 10^5+ nodes in slow (dictionary) mode.
  const node = n as Node;
  node.ino = 0;
  node.ref = 0;
  node.nlink = 0;
  return node;
}

export function implicitMeta(mtime: number): StoredMeta {
  return { mode: 0o755, uid: 0, gid: 0, mtime };
}

export function makeDir(meta: StoredMeta, xattrs: XattrSet | null, explicit: boolean): DirNode {
  return makeNode({ kind: 'dir', meta, xattrs, children: new Map(), explicit }) as DirNode;
}

export class EntryTree {
  readonly root: DirNode;
  /** Entries in the tree, root excluded (names, so hard links count per name). */
  names = 0;

  constructor(rootMtime: number) {
    this.root = makeDir(implicitMeta(rootMtime), null, false);
  }

  lookup(parts: readonly string[]): Node | undefined {
    let cur: Node = this.root;
    for (const p of parts) {
      if (cur.kind !== 'dir') return undefined;
      const next: Node | undefined = cur.children.get(p);
      if (next === undefined) return undefined;
      cur = next;
    }
    return cur;
  }

  /**
   * The directory that will hold `parts`' last component, creating missing
   * parents (and replacing non-directories in the way) as implicit dirs.
   */
  parentOf(parts: readonly string[], implicitMtime: number): DirNode {
    let cur = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      const p = parts[i]!;
      const next = cur.children.get(p);
      if (next !== undefined && next.kind === 'dir') {
        cur = next;
        continue;
      }
      const dir = makeDir(implicitMeta(implicitMtime), null, false);
      if (next === undefined) this.names++;
      cur.children.set(p, dir);
      cur = dir;
    }
    return cur;
  }

  /** Put a node at a non-root path, replacing whatever was there. */
  put(parts: readonly string[], node: Node, implicitMtime: number): void {
    const parent = this.parentOf(parts, implicitMtime);
    const name = parts[parts.length - 1]!;
    if (!parent.children.has(name)) this.names++;
    parent.children.set(name, node);
  }

  /** Remove a non-root entry and its subtree. */
  remove(parts: readonly string[]): boolean {
    if (parts.length === 0) return false;
    const parent = this.lookup(parts.slice(0, -1));
    if (parent === undefined || parent.kind !== 'dir') return false;
    const name = parts[parts.length - 1]!;
    const node = parent.children.get(name);
    if (node === undefined) return false;
    parent.children.delete(name);
    this.names -= 1 + countNames(node);
    return true;
  }

  /** Remove every child of a directory (OCI opaque whiteout). */
  clear(parts: readonly string[]): boolean {
    const dir = this.lookup(parts);
    if (dir === undefined || dir.kind !== 'dir') return false;
    this.names -= countNames(dir);
    dir.children.clear();
    return true;
  }
}

/** Names below a node (iterative, so deep trees cannot overflow the stack). */
function countNames(node: Node): number {
  let n = 0;
  const stack: Node[] = [node];
  while (stack.length > 0) {
    const cur = stack.pop()!;
    if (cur.kind !== 'dir') continue;
    for (const c of cur.children.values()) {
      n++;
      stack.push(c);
    }
  }
  return n;
}
