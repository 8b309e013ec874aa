/**
 * The whiteout-aware layer flattener: applies an image's layers, in order,
 * straight into a SquashfsWriter — nothing is unpacked to disk, and
 * ownership, modes, mtimes, xattrs and device nodes come from the tar
 * headers, so they are exact whoever runs hpcc.
 *
 * OCI image spec, layer changesets:
 *  - `.wh.NAME` hides NAME (and everything below it) from lower layers;
 *  - `.wh..wh..opq` in directory D hides every lower entry below D;
 *  - whiteouts never hide entries of their own layer;
 *  - other `.wh..wh.*` names (aufs bookkeeping) are ignored;
 *  - an entry replaces whatever lower entry has its name, except that a
 *    directory over a directory only updates its metadata (contents merge).
 * Hard links may point into lower layers (the writer shares the inode); a
 * link whose target is absent (deleted, whited out) is an error, as in tar.
 * Parent components that are symlinks are followed inside the image root.
 * When the config lists rootfs.diff_ids, each layer's uncompressed tar is
 * checked against them.
 */
import { createHash } from 'node:crypto';
import { DigestMismatchError, OciError } from '../../errors/index.js';
import type { EntryMeta, SquashfsWriter } from '../../formats/squashfs/index.js';
import { checkLayerType } from '../manifest.js';
import type { LayerRef } from '../types.js';
import { decompressLayer } from './decompress.js';
import { ShadowTree, normaliseTarPath, type ShadowNode } from './shadow.js';
import { newSparseBudget, type SparseBudget } from './sparse.js';
import { readTar, type TarEntry } from './tar-reader.js';

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

export interface LayerProgress {
  /** 0-based layer index */
  index: number;
  count: number;
  digest: string;
  /** stored (compressed) size */
  size: number;
  /** stored bytes read so far */
  bytesRead: number;
  entries: number;
  done: boolean;
}

export interface FlattenOptions {
  /** rootfs.diff_ids from the config, checked when their count matches the layers */
  diffIds?: readonly string[];
  onProgress?: (p: LayerProgress) => void;
  onWarning?: (msg: string) => void;
  /** progress callback period in bytes (default 4 MiB) */
  progressEvery?: number;
  /** hole bytes all sparse files of the image may add (default: HPCC_SPARSE_LIMIT, src/oci/flatten/sparse.ts) */
  sparseLimit?: number;
}

export interface FlattenResult {
  layers: number;
  entries: number;
  whiteouts: number;
}

async function* counted(src: AsyncIterable<Uint8Array>, onBytes: (n: number) => void): AsyncGenerator<Uint8Array> {
  for await (const c of src) {
    onBytes(c.length);
    yield c;
  }
}

async function* hashed(src: AsyncIterable<Uint8Array>, expected: string | undefined, what: string): AsyncGenerator<Uint8Array> {
  const h = expected === undefined ? null : createHash('sha256');
  for await (const c of src) {
    h?.update(c);
    yield c;
  }
  if (h !== null && expected !== undefined) {
    const actual = `sha256:${h.digest('hex')}`;
    if (actual !== expected) throw new DigestMismatchError(`${what}: uncompressed content does not match the config's diff_id (expected ${expected}, got ${actual})`, expected, actual);
  }
}

function metaOf(e: TarEntry): EntryMeta {
  const m: EntryMeta = { mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime };
  if (e.xattrs.size > 0) m.xattrs = e.xattrs;
  return m;
}

export class Flattener {
  private readonly shadow = new ShadowTree();
  /** One hole budget for all the layers: a tiny sparse entry must not expand into terabytes of zeros. */
  private readonly sparse: SparseBudget;
  entries = 0;
  whiteouts = 0;

  constructor(
    private readonly writer: SquashfsWriter,
    private readonly opts: FlattenOptions = {},
  ) {
    this.sparse = opts.sparseLimit !== undefined ? { limit: opts.sparseLimit, used: 0 } : newSparseBudget();
  }

  /** Remove, below `node` at `path`, everything not touched by `layer` (whiteout semantics). */
  private hideLower(node: ShadowNode, path: string[], layer: number): void {
    if (node.kind !== 'dir') return;
    for (const [name, child] of [...node.children!]) {
      const p = [...path, name];
      if (child.touched < layer) {
        this.writer.remove(p.join('/'));
        node.children!.delete(name);
      } else if (child.kind === 'dir') {
        this.hideLower(child, p, layer);
      }
    }
  }

  private whiteout(dir: string[], name: string, layer: number): void {
    this.whiteouts++;
    if (name === OPAQUE) {
      const d = this.shadow.lookup(dir);
      if (d?.kind === 'dir') this.hideLower(d, dir, layer);
      return;
    }
    if (name.startsWith(WH + WH)) return; // aufs metadata (.wh..wh.plnk, .wh..wh.aufs)
    const target = [...dir, name.slice(WH.length)];
    if (target[target.length - 1] === '' ) return;
    const node = this.shadow.lookup(target);
    if (node === undefined) return;
    if (node.touched < layer) {
      this.writer.remove(target.join('/'));
      this.shadow.remove(target);
    } else {
      this.hideLower(node, target, layer);
    }
  }

  private async apply(e: TarEntry, body: AsyncIterable<Uint8Array>, layer: number, what: string): Promise<void> {
    const parts0 = normaliseTarPath(e.path, what);
    const name = parts0[parts0.length - 1];
    if (name !== undefined && name.startsWith(WH)) {
      const real = this.shadow.resolveParent(parts0);
      this.whiteout(real.slice(0, -1), real[real.length - 1]!, layer);
      return;
    }
    const parts = this.shadow.resolveParent(parts0);
    const path = parts.join('/');
    const meta = metaOf(e);
    const old = parts.length === 0 ? this.shadow.root : this.shadow.lookup(parts);
    if (e.kind !== 'dir' && parts.length === 0) {
      throw new OciError('HPCC_E_OCI_LAYER_ENTRY', `${what}: a ${e.kind} entry names the image root`);
    }
    // A directory replaced by anything else loses its subtree.
    if (old !== undefined && old.kind === 'dir' && e.kind !== 'dir') this.writer.remove(path);
    this.entries++;
    switch (e.kind) {
      case 'dir':
        this.writer.addDirectory(path, meta);
        this.shadow.put(parts, 'dir', layer);
        return;
      case 'file':
        this.shadow.put(parts, 'file', layer);
        await this.writer.addFile(path, meta, body);
        return;
      case 'symlink':
        if (e.linkname === '') throw new OciError('HPCC_E_OCI_LAYER_ENTRY', `${what}: symlink ${path} has an empty target`);
        this.writer.addSymlink(path, e.linkname, meta);
        this.shadow.put(parts, 'symlink', layer, e.linkname);
        return;
      case 'link': {
        const tparts = this.shadow.resolveParent(normaliseTarPath(e.linkname, what));
        const target = this.shadow.lookup(tparts);
        if (target === undefined || target.kind === 'dir') {
          throw new OciError(
            'HPCC_E_OCI_HARDLINK',
            `${what}: hard link ${path} -> ${tparts.join('/')}: ${target === undefined ? 'target does not exist (deleted or never added)' : 'target is a directory'}`,
            { hint: 'The layer is inconsistent: tar would fail to create this link too.' },
          );
        }
        this.writer.addHardLink(path, tparts.join('/'));
        this.shadow.put(parts, target.kind, layer, target.target);
        return;
      }
      case 'char':
      case 'block':
        this.writer.addDevice(path, e.kind, e.devmajor, e.devminor, meta);
        this.shadow.put(parts, 'other', layer);
        return;
      case 'fifo':
        this.writer.addFifo(path, meta);
        this.shadow.put(parts, 'other', layer);
        return;
      default:
        this.entries--;
        this.opts.onWarning?.(`${what}: skipped ${path} (unsupported tar entry type ${JSON.stringify(e.typeflag)})`);
    }
  }

  /** Apply one layer (index `i` of `count`). */
  async applyLayer(layer: LayerRef, i: number, count: number): Promise<void> {
    checkLayerType(layer.mediaType);
    const what = `layer ${i + 1}/${count} (${layer.digest.slice(0, 19)})`;
    const diff = this.opts.diffIds?.length === count ? this.opts.diffIds[i] : undefined;
    const every = this.opts.progressEvery ?? 4 << 20;
    const prog: LayerProgress = { index: i, count, digest: layer.digest, size: layer.size, bytesRead: 0, entries: 0, done: false };
    let last = 0;
    const report = (n: number) => {
      prog.bytesRead += n;
      if (prog.bytesRead - last >= every) {
        last = prog.bytesRead;
        prog.entries = this.entries;
        this.opts.onProgress?.({ ...prog });
      }
    };
    this.opts.onProgress?.({ ...prog });
    const stored = counted(await layer.open(), report);
    const tar = hashed(decompressLayer(stored, layer.mediaType), diff, what);
    let preEpoch = 0;
    let firstPreEpoch = '';
    const onNegativeMtime = (p: string) => {
      if (preEpoch++ === 0) firstPreEpoch = p;
    };
    for await (const { entry, body } of readTar(tar, { onNegativeMtime, sparseBudget: this.sparse })) {
      await this.apply(entry, body, i, what);
    }
    if (preEpoch > 0) {
      this.opts.onWarning?.(`${what}: ${preEpoch} entr${preEpoch === 1 ? 'y' : 'ies'} dated before 1970 (first: ${firstPreEpoch}) stored with mtime 0, as tar2sqfs does`);
    }
    prog.done = true;
    prog.entries = this.entries;
    this.opts.onProgress?.({ ...prog });
  }
}

/** Apply every layer in order into `writer`. The caller finishes or aborts the writer. */
export async function flattenLayers(layers: readonly LayerRef[], writer: SquashfsWriter, opts: FlattenOptions = {}): Promise<FlattenResult> {
  const f = new Flattener(writer, opts);
  // The root as umoci leaves it when no layer has a "./" entry: 0755 root:root, time 0.
  writer.addDirectory('', { mode: 0o755, uid: 0, gid: 0, mtime: 0 });
  for (let i = 0; i < layers.length; i++) await f.applyLayer(layers[i]!, i, layers.length);
  return { layers: layers.length, entries: f.entries, whiteouts: f.whiteouts };
}
