/**
 * `hpcc build OUT.sif DIR`: pack a directory tree (a sandbox) into a SIF
 * whose primary partition is a squashfs image streamed straight into the
 * SIF file. Objects in Apptainer's order: deffile (when the tree carries
 * /.singularity.d/Singularity), inspect-metadata.json, the partition.
 * Output is written to a temporary file and renamed: a failure leaves
 * nothing at OUT.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { UsageError, addContext } from '../errors/index.js';
import { SifDataType } from '../formats/sif/index.js';
import type { SquashfsWriter, CodecName } from '../formats/squashfs/index.js';
import { addDirectoryTree } from '../formats/squashfs/from-dir.js';
import { collectMetadata } from './metadata.js';
import { directoryTreeView } from './tree-views.js';
import { writeSquashfsSif, type SifObject } from './sif-image.js';
import type { Timings } from '../runtime/timings.js';

export interface BuildOptions {
  compressor?: CodecName;
  level?: number;
  blockSize?: number;
  /** Reproducible output: fixed times (SOURCE_DATE_EPOCH or 0), zero SIF id. */
  deterministic?: boolean;
  /** Overwrite an existing output file. */
  force?: boolean;
  /** Add a minimal /.singularity.d when the tree has none (default true). */
  skeleton?: boolean;
  /** Store this mtime (unix seconds) on every entry (definition builds with --deterministic). */
  mtime?: number;
  onWarning?: (msg: string) => void;
  /** --timings: resolve (the tree's metadata), convert (the tree into squashfs), write (tables, SIF) */
  timings?: Timings;
}

export interface BuildResult {
  output: string;
  entries: number;
  bytes: number;
  imageSize: number;
  partitionOffset: number;
}

/** Time used for deterministic builds: SOURCE_DATE_EPOCH when set, else 0. */
export function deterministicTime(): number {
  const v = process.env.SOURCE_DATE_EPOCH;
  if (v !== undefined && /^\d+$/.test(v)) return Number(v);
  return 0;
}

export async function checkOutput(out: string, force: boolean): Promise<void> {
  let st;
  try {
    st = await fs.lstat(out);
  } catch {
    return;
  }
  if (st.isDirectory()) {
    throw new UsageError(`output ${out} is a directory`, { hint: 'Give a file name such as image.sif.' });
  }
  if (!force) {
    throw new UsageError(`output ${out} already exists`, { hint: 'Pass --force to overwrite it, or choose another name.' });
  }
}

async function checkSource(dir: string): Promise<void> {
  let st;
  try {
    st = await fs.stat(dir);
  } catch (e) {
    throw addContext(`read build source ${dir}`, e);
  }
  if (!st.isDirectory()) {
    throw new UsageError(`build source ${dir} is not a directory`, {
      hint: 'hpcc build OUT.sif DIR packs a directory tree; use --sandbox to unpack a SIF into a directory.',
    });
  }
}

const SKELETON_RUNSCRIPT =
  '#!/bin/sh\n# Written by hpcc build: this image defined no runscript, so `run` starts a shell.\nexec /bin/sh "$@"\n';

/** Add a minimal Apptainer-style /.singularity.d to an image whose tree has none. */
async function addSkeleton(writer: SquashfsWriter, mtime: number): Promise<void> {
  const dirMeta = { mode: 0o755, uid: 0, gid: 0, mtime };
  const fileMeta = { mode: 0o644, uid: 0, gid: 0, mtime };
  const exeMeta = { mode: 0o755, uid: 0, gid: 0, mtime };
  const enc = new TextEncoder();
  writer.addDirectory('.singularity.d', dirMeta);
  writer.addDirectory('.singularity.d/env', dirMeta);
  writer.addDirectory('.singularity.d/libs', dirMeta);
  const files: Array<[string, string, typeof fileMeta]> = [
    ['.singularity.d/env/01-base.sh', '#!/bin/sh\n# Base environment (hpcc build)\n', fileMeta],
    ['.singularity.d/env/99-base.sh', '#!/bin/sh\n# Final environment hooks (hpcc build)\n', fileMeta],
    ['.singularity.d/runscript', SKELETON_RUNSCRIPT, exeMeta],
    ['.singularity.d/labels.json', '{}\n', fileMeta],
  ];
  for (const [p, body, meta] of files) await writer.addFile(p, meta, enc.encode(body));
}

export async function buildSifFromDirectory(out: string, dir: string, opts: BuildOptions = {}): Promise<BuildResult> {
  await checkSource(dir);
  await checkOutput(out, opts.force ?? false);
  const time = opts.deterministic ? deterministicTime() : Math.floor(Date.now() / 1000);
  const view = directoryTreeView(dir);
  const hasSd = (await view.listDir('.singularity.d')) !== null;
  const skeleton = (opts.skeleton ?? true) && !hasSd;
  const meta = await collectMetadata(view);
  if (skeleton) {
    meta.data.attributes.runscript = SKELETON_RUNSCRIPT.replace(/\n+$/, '');
    meta.data.attributes.labels = {};
  }
  opts.timings?.mark('resolve');

  const objects: SifObject[] = [];
  if (meta.data.attributes.deffile !== undefined) {
    objects.push({ type: SifDataType.Deffile, data: new TextEncoder().encode(meta.data.attributes.deffile + '\n') });
  }
  objects.push({ type: SifDataType.GenericJSON, name: 'inspect-metadata.json', data: new TextEncoder().encode(JSON.stringify(meta)) });
  let entries = 0;
  let bytes = 0;
  const { imageSize, partitionOffset } = await writeSquashfsSif(
    out,
    objects,
    {
      ...(opts.compressor !== undefined ? { compressor: opts.compressor } : {}),
      ...(opts.level !== undefined ? { level: opts.level } : {}),
      ...(opts.blockSize !== undefined ? { blockSize: opts.blockSize } : {}),
      deterministic: opts.deterministic ?? false,
      time,
      arch: process.arch,
      ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
      ...(opts.timings ? { onFilled: () => opts.timings!.mark('convert') } : {}),
      context: `build ${out}`,
    },
    async (writer) => {
      const r = await addDirectoryTree(writer, dir, {
        ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
        deterministic: opts.deterministic ?? false,
        ...(opts.mtime !== undefined ? { mtime: opts.mtime } : {}),
      });
      entries = r.entries;
      bytes = r.bytes;
      if (skeleton) await addSkeleton(writer, time);
    },
  );
  opts.timings?.mark('write');
  return { output: path.resolve(out), entries, bytes, imageSize, partitionOffset };
}
