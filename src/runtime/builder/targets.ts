/**
 * Mount targets: make sure each intent's destination exists before it is
 * mounted on. The image is read-only, so a destination it lacks is created
 * in a writable layer: the overlay over the image root (kernel overlayfs,
 * fuse-overlayfs or a tmpfs skeleton: overlay.ts), or a tmpfs mounted earlier
 * in the plan. A destination
 * below a host bind must already exist on the host (hpcc never creates
 * files on the host). Symlinks in the image are followed inside the image,
 * so an absolute link never resolves on the host.
 */
import * as path from 'node:path';
import type { MountOp } from '../plan.js';
import { isUnder, normPath } from './binds.js';
import type { BuildInput, PathKind } from './types.js';

export type Layer = { dst: string; kind: 'tmpfs' } | { dst: string; kind: 'bind'; src: string } | { dst: string; kind: 'proc' };

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

  /** What `p` is in the tree built so far; the path is resolved inside the image when the image holds it. */
  kindOf(p: string): { kind: PathKind | null; real: string } {
    const made = this.created.get(p);
    if (made) return { kind: made, real: p };
    const l = this.layerOf(p);
    if (!l) {
      const info = this.input.image.lookup(p);
      return info ? { kind: info.kind, real: normPath(info.real) } : { kind: null, real: p };
    }
    if (l.kind === 'tmpfs') return { kind: p === l.dst ? 'dir' : null, real: p };
    if (l.kind === 'proc') return { kind: 'other', real: p };
    const hostPath = l.src + p.slice(l.dst === '/' ? 0 : l.dst.length);
    const info = this.input.host.lookup(hostPath);
    return { kind: info ? info.kind : null, real: p };
  }

  /**
   * Make `dst` exist with the given kind. Returns the (image-resolved) path to
   * mount on, or a reason string when it cannot be made.
   */
  ensure(dst: string, want: PathKind): { path: string } | { reason: string } {
    const { kind, real } = this.kindOf(dst);
    if (kind !== null) {
      if (want === 'dir' && kind !== 'dir') return { reason: `${dst} is not a directory in the container` };
      if (want === 'file' && kind === 'dir') return { reason: `${dst} is a directory in the container, the source is a file` };
      return { path: real };
    }
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
