/**
 * OCI image → SIF: the layers stream, in order, through the whiteout-aware
 * flattener straight into the squashfs partition of the SIF (nothing is
 * unpacked to disk), then /.singularity.d is generated from the OCI config.
 * Objects in Apptainer's order for an OCI build (sif-format.md "What
 * Apptainer writes for a docker:// build"): deffile, the generic JSON
 * objects sorted by name (inspect-metadata.json, oci-config.json), the
 * primary squashfs partition. The SIF is written to a temporary file and
 * renamed; any failure (a digest mismatch included) leaves nothing at OUT.
 */
import * as path from 'node:path';
import { SifDataType } from '../formats/sif/index.js';
import type { SquashfsWriter, CodecName } from '../formats/squashfs/index.js';
import { flattenLayers, type LayerProgress } from '../oci/flatten/flatten.js';
import { deffileFor, singularityFiles, type GeneratedFile } from '../oci/metadata.js';
import type { ResolvedImage } from '../oci/types.js';
import { checkOutput, deterministicTime } from './build.js';
import { collectMetadata, type TreeView } from './metadata.js';
import { writeSquashfsSif } from './sif-image.js';

export interface ConvertOptions {
  compressor?: CodecName;
  level?: number;
  blockSize?: number;
  deterministic?: boolean;
  force?: boolean;
  /** Deffile header; default BootStrap: docker / From: the image reference. */
  bootstrap?: { bootstrap: string; from: string };
  onProgress?: (p: LayerProgress) => void;
  onWarning?: (msg: string) => void;
  /** the layers are in the squashfs writer; the tables and the SIF are written next (--timings) */
  onFilled?: () => void;
}

export interface ConvertResult {
  output: string;
  layers: number;
  entries: number;
  whiteouts: number;
  imageSize: number;
  partitionOffset: number;
  manifestDigest: string;
  platform: string;
}

/** A read-only view of the generated files, for collectMetadata. */
function generatedView(files: readonly GeneratedFile[]): TreeView {
  const byPath = new Map(files.map((f) => [f.path, f]));
  return {
    async readFile(p: string, maxBytes: number) {
      const f = byPath.get(p.replace(/^\/+/, ''));
      if (f?.kind !== 'file' || f.data === undefined) return null;
      const b = Buffer.from(f.data, 'utf8');
      return b.length > maxBytes ? null : b;
    },
    async listDir(p: string) {
      const dir = p.replace(/^\/+|\/+$/g, '');
      if (!files.some((f) => f.path === dir && f.kind === 'dir')) return null;
      return files.filter((f) => path.posix.dirname(f.path) === dir).map((f) => path.posix.basename(f.path));
    },
  };
}

async function addGenerated(writer: SquashfsWriter, files: readonly GeneratedFile[], mtime: number): Promise<void> {
  for (const f of files) {
    const meta = { mode: f.mode, uid: 0, gid: 0, mtime };
    if (f.kind === 'dir') writer.addDirectory(f.path, meta);
    else if (f.kind === 'symlink') {
      writer.remove(f.path);
      writer.addSymlink(f.path, f.data!, meta);
    } else {
      writer.remove(f.path);
      await writer.addFile(f.path, meta, Buffer.from(f.data ?? '', 'utf8'));
    }
  }
}

export async function convertImage(image: ResolvedImage, out: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  await checkOutput(out, opts.force ?? false);
  const time = opts.deterministic ? deterministicTime() : Math.floor(Date.now() / 1000);
  const boot = opts.bootstrap ?? { bootstrap: 'docker', from: image.reference.replace(/^docker:\/\//, '') };
  const deffile = deffileFor(boot.bootstrap, boot.from);
  const files = singularityFiles(image.config, deffile);
  const meta = await collectMetadata(generatedView(files));
  const arch = image.platform.architecture;
  const enc = new TextEncoder();

  let layers = 0;
  let entries = 0;
  let whiteouts = 0;
  const { imageSize, partitionOffset } = await writeSquashfsSif(
    out,
    [
      { type: SifDataType.Deffile, data: enc.encode(deffile) },
      { type: SifDataType.GenericJSON, name: 'inspect-metadata.json', data: enc.encode(JSON.stringify(meta)) },
      { type: SifDataType.GenericJSON, name: 'oci-config.json', data: image.configBytes },
    ],
    {
      ...(opts.compressor !== undefined ? { compressor: opts.compressor } : {}),
      ...(opts.level !== undefined ? { level: opts.level } : {}),
      ...(opts.blockSize !== undefined ? { blockSize: opts.blockSize } : {}),
      deterministic: opts.deterministic ?? false,
      time,
      arch,
      ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
      ...(opts.onFilled ? { onFilled: opts.onFilled } : {}),
      context: `convert ${image.reference} to ${out}`,
    },
    async (writer) => {
      const r = await flattenLayers(image.layers, writer, {
        ...(image.config.rootfs?.diff_ids ? { diffIds: image.config.rootfs.diff_ids } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
      });
      layers = r.layers;
      entries = r.entries;
      whiteouts = r.whiteouts;
      await addGenerated(writer, files, time);
    },
  );
  const p = image.platform;
  return {
    output: path.resolve(out),
    layers,
    entries,
    whiteouts,
    imageSize,
    partitionOffset,
    manifestDigest: image.manifestDigest,
    platform: `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`,
  };
}
