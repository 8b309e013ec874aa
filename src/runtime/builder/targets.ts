/**
 * Mount targets: make sure each intent's destination exists before it is
 * mounted on. The image is read-only, so a destination it lacks is created
 * in a writable layer: the overlay over the image root (kernel overlayfs,
 * fuse-overlayfs or a tmpfs skeleton: overlay.ts), or a tmpfs mounted earlier
 * in the plan. A destination below a host bind must already exist on the
 * host (hpcc never creates files on the host).
 *
 * Destinations are resolved as the helper will resolve them: component by
 * component through the container tree built so far (the image, then the
 * mounts placed before), following the image's symlinks inside the
 * container's root. An image symlink whose resolution enters a host layer
 * (a bind, /proc) is refused, naming the symlink: a hostile image could
 * otherwise redirect a mount point, and the directories made for it, onto
 * the caller's files. A dangling image symlink is not "absent": its target
 * is made where it resolves, which must be the container's own layers.
 */
import * as path from 'node:path';
import type { MountOp } from '../plan.js';
import { isUnder } from './binds.js';
import type { BuildInput, PathKind } from './types.js';

export type Layer = { dst: string; kind: 'tmpfs' } | { dst: string; kind: 'bind'; src: string } | { dst: string; kind: 'proc' };

/** An image symlink that would lead a destination out of the image's own layers. */
export interface TargetSymlink {
  /** the symlink's path in the image, and its target as stored */
  link: string;
  target: string;
  /** where it leads: "the bind of SRC" or "/proc" */
  onto: string;
}

/** Symlinks followed per resolution before giving up (the kernel's limit). */
const MAX_HOPS = 40;

/** A destination's resolution: what is there (null: missing) and the symlink-free path; or why it cannot be used. */
export type Resolution =
  | { kind: PathKind | null; real: string; reason?: undefined; symlink?: undefined }
  | { kind: null; real: string; reason: string; symlink?: TargetSymlink };

const join = (dir: string, name: string): string => (dir === '/' ? `/${name}` : `${dir}/${name}`);

/** Plan-time model of the container tree: which layer holds a path. */
export class TargetResolver {
  private readonly layers: Layer[] = [];
  /** paths created so far (in the overlay or a tmpfs) */
  private readonly created = new Map<string, PathKind>();
  readonly ops: MountOp[] = [];
  overlay = false;

  constructor(
    private readonly input: BuildInput,
    private readonly overlayAllowed: boolean,
    /** why no overlay may be made (when not allowed), for messages */
    readonly noOverlayWhy = 'this node does not allow overlay mounts in a user namespace',
  ) {}

  private layerOf(p: string): Layer | null {
    let best: Layer | null = null;
    for (const l of this.layers) if (isUnder(p, l.dst) && (!best || l.dst.length >= best.dst.length)) best = l;
    return best;
  }

  /**
   * Resolve `p` in the tree built so far, as the helper will: the image's
   * symlinks are followed inside the container's root ('..' stops at '/');
   * below a host bind the rest of the path is the host's.
   */
  resolve(p: string): Resolution {
    const todo = p.split('/').filter((c) => c !== '').reverse(); // a stack: next component last
    let cur = '/';
    let curKind: PathKind = 'dir';
    let hops = 0;
    let via: { link: string; target: string } | null = null;
    /** `from` and the components still to resolve ('.' dropped; null when a '..' follows: below a missing or host path) */
    const rest = (from: string): string | null => {
      const more = todo.slice().reverse().filter((c) => c !== '.');
      return more.includes('..') ? null : more.reduce(join, from);
    };
    const dotdot = { kind: null, real: p, reason: `${p} resolves through '..' below a path the image does not hold` } as const;
    while (todo.length > 0) {
      const c = todo.pop()!;
      if (c === '.') continue;
      if (c === '..') {
        cur = path.posix.dirname(cur);
        curKind = 'dir';
        continue;
      }
      const next = join(cur, c);
      const made = this.created.get(next);
      const l = this.layerOf(next);
      if (l && l.kind !== 'tmpfs') {
        const onto = l.kind === 'bind' ? `the bind of ${l.src}` : l.dst;
        if (via) {
          return { kind: null, real: p, symlink: { ...via, onto }, reason: `the image's symlink ${via.link} -> ${via.target} leads ${p} onto ${onto} (hpcc does not follow image symlinks out of the image)` };
        }
        const real = rest(next);
        if (real === null) return dotdot;
        if (l.kind === 'proc') return { kind: 'other', real };
        const info = this.input.host.lookup(l.src + real.slice(l.dst === '/' ? 0 : l.dst.length));
        return { kind: info ? info.kind : null, real };
      } else if (made) {
        curKind = made;
      } else if (l) {
        if (next !== l.dst) {
          const real = rest(next);
          return real === null ? dotdot : { kind: null, real };
        }
        curKind = 'dir';
      } else {
        const link = this.input.image.readlink(next);
        if (link !== null) {
          if (++hops > MAX_HOPS) return { kind: null, real: p, reason: `too many levels of symbolic links resolving ${p} in the image` };
          via ??= { link: next, target: link };
          if (link.startsWith('/')) cur = '/';
          const parts = link.split('/').filter((x) => x !== '');
          for (let i = parts.length - 1; i >= 0; i--) todo.push(parts[i]!);
          continue;
        }
        const info = this.input.image.lookup(next);
        if (!info) {
          const real = rest(next);
          return real === null ? dotdot : { kind: null, real };
        }
        curKind = info.kind;
      }
      if (todo.length > 0 && curKind !== 'dir') return { kind: null, real: p, reason: `${next} is not a directory in the container` };
      cur = next;
    }
    return { kind: curKind, real: cur };
  }

  /** What `p` is in the tree built so far (null: missing, or not usable: `reason`), and its resolved path. */
  kindOf(p: string): Resolution {
    return this.resolve(p);
  }

  /**
   * Make `dst` exist with the given kind. Returns the (image-resolved) path to
   * mount on, or a reason string when it cannot be made.
   */
  ensure(dst: string, want: PathKind): { path: string } | { reason: string; symlink?: TargetSymlink } {
    const res = this.resolve(dst);
    if (res.reason !== undefined) return res.symlink ? { reason: res.reason, symlink: res.symlink } : { reason: res.reason };
    const { kind, real } = res;
    if (kind !== null) {
      if (want === 'dir' && kind !== 'dir') return { reason: `${dst} is not a directory in the container` };
      if (want === 'file' && kind === 'dir') return { reason: `${dst} is a directory in the container, the source is a file` };
      return { path: real };
    }
    // missing: made where it resolves (a dangling image symlink's target), a path free of symlinks
    if (real !== dst) return this.ensure(real, want);
    const parent = path.posix.dirname(dst);
    if (parent !== dst) {
      const p = this.ensure(parent, 'dir');
      if ('reason' in p) return p;
      if (p.path !== parent) return this.ensure(path.posix.join(p.path, path.posix.basename(dst)), want);
    }
    const l = this.layerOf(dst);
    if (l && l.kind !== 'tmpfs') {
      return { reason: `${dst} does not exist inside ${l.kind === 'bind' ? `the bind of ${l.src}` : l.dst} (hpcc does not create paths on the host)` };
    }
    if (!l) {
      if (!this.overlayAllowed) return { reason: `the image has no ${dst}, and ${this.noOverlayWhy}` };
      this.overlay = true;
    }
    // The helper creates a missing mount point itself (a directory, or an
    // empty file for a file bind); parents need explicit mkdir ops.
    if (want === 'dir') this.ops.push({ op: 'mkdir', dst, mode: 0o755 });
    this.created.set(dst, want === 'dir' ? 'dir' : 'file');
    return { path: dst };
  }

  /** Can a new file be written at `p` (a tmpfs, or the image under the overlay)? Marks the overlay as needed. */
  writableAt(p: string): boolean {
    const l = this.layerOf(p);
    if (l) return l.kind === 'tmpfs';
    if (!this.overlayAllowed) return false;
    this.overlay = true;
    return true;
  }

  /** Record a mount (the op itself is pushed by the caller). */
  mounted(layer: Layer): void {
    // Anything created below a new mount point is hidden by it.
    for (const k of [...this.created.keys()]) if (k !== layer.dst && isUnder(k, layer.dst)) this.created.delete(k);
    this.layers.push(layer);
  }
}
