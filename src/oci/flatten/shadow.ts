/**
 * The flattener's own view of the merged tree: names, kinds, symlink targets
 * and the last layer that wrote each entry or anything below it. It answers
 * what the squashfs writer cannot: which entries came from lower layers (for
 * whiteouts, which only hide lower content), and where a path lands when a
 * parent component is a symlink (resolved inside the image root, like
 * umoci's securejoin: '..' stops at the root, absolute targets restart there).
 */
import { UnsafePathError } from '../../errors/index.js';

export type ShadowKind = 'dir' | 'file' | 'symlink' | 'other';

export interface ShadowNode {
  kind: ShadowKind;
  target?: string;
  children?: Map<string, ShadowNode>;
  /** index of the last layer that wrote this entry or something below it */
  touched: number;
}

const MAX_LINK_HOPS = 255;

/**
 * Normalise a tar path: strip leading '/' and './', collapse '//' and '.'.
 * '..' components are refused (UnsafePathError), so nothing escapes the root.
 */
export function normaliseTarPath(p: string, layer: string): string[] {
  if (p.includes('\0')) throw new UnsafePathError(`${layer}: entry ${JSON.stringify(p.slice(0, 200))} contains NUL`);
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      throw new UnsafePathError(`${layer}: entry ${JSON.stringify(p.slice(0, 200))} has a '..' component (would escape the image root)`, {
        hint: 'The layer tries to write outside the image root; it was refused. Rebuild the image without such entries.',
      });
    }
    out.push(c);
  }
  return out;
}

export class ShadowTree {
  readonly root: ShadowNode = { kind: 'dir', children: new Map(), touched: -1 };

  lookup(parts: readonly string[]): ShadowNode | undefined {
    let cur: ShadowNode | undefined = this.root;
    for (const p of parts) {
      if (cur?.kind !== 'dir') return undefined;
      cur = cur.children!.get(p);
      if (cur === undefined) return undefined;
    }
    return cur;
  }

  /**
   * Resolve the parent components of `parts` through symlinks in the tree
   * (the last component is never followed). Returns the real path.
   */
  resolveParent(parts: readonly string[]): string[] {
    if (parts.length <= 1) return [...parts];
    const name = parts[parts.length - 1]!;
    const todo = parts.slice(0, -1).reverse(); // stack: next component at the end
    const done: string[] = [];
    const nodes: ShadowNode[] = [this.root];
    let hops = 0;
    while (todo.length > 0) {
      const c = todo.pop()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (done.length > 0) {
          done.pop();
          nodes.pop();
        }
        continue;
      }
      const cur = nodes[nodes.length - 1];
      const next = cur?.kind === 'dir' ? cur.children!.get(c) : undefined;
      if (next?.kind === 'symlink') {
        if (++hops > MAX_LINK_HOPS) {
          throw new UnsafePathError(`path ${parts.join('/')}: too many levels of symbolic links`);
        }
        const t = next.target!;
        const tparts = t.split('/');
        for (let i = tparts.length - 1; i >= 0; i--) todo.push(tparts[i]!);
        if (t.startsWith('/')) {
          done.length = 0;
          nodes.length = 1;
        }
        continue;
      }
      done.push(c);
      nodes.push(next as ShadowNode);
    }
    done.push(name);
    return done;
  }

  /** Set (or replace) the entry at parts, creating parents; marks it and its parents touched by `layer`. */
  put(parts: readonly string[], kind: ShadowKind, layer: number, target?: string): ShadowNode {
    let cur = this.root;
    cur.touched = layer;
    for (let i = 0; i < parts.length - 1; i++) {
      let next = cur.children!.get(parts[i]!);
      if (next === undefined || next.kind !== 'dir') {
        next = { kind: 'dir', children: new Map(), touched: layer };
        cur.children!.set(parts[i]!, next);
      }
      next.touched = layer;
      cur = next;
    }
    if (parts.length === 0) return this.root;
    const name = parts[parts.length - 1]!;
    const old = cur.children!.get(name);
    if (kind === 'dir' && old?.kind === 'dir') {
      old.touched = layer;
      return old;
    }
    const node: ShadowNode = kind === 'dir' ? { kind, children: new Map(), touched: layer } : { kind, touched: layer };
    if (target !== undefined) node.target = target;
    cur.children!.set(name, node);
    return node;
  }

  remove(parts: readonly string[]): void {
    const parent = this.lookup(parts.slice(0, -1));
    if (parent?.kind === 'dir') parent.children!.delete(parts[parts.length - 1]!);
  }
}
