/**
 * Write a SIF whose primary partition is a squashfs image filled by a
 * callback (a directory walk, or OCI layers): metadata objects first, in the
 * order given (Apptainer's order is the caller's business), then the
 * partition, streamed straight into the SIF at a 4096-aligned offset.
 * The SIF is written to a temporary file and renamed on success; on any
 * failure the squashfs writer and the SIF are aborted and nothing is left
 * at the output path.
 */
import { HpccError, addContext } from '../errors/index.js';
import { FsType, PartType, SifWriter, type SifDataType } from '../formats/sif/index.js';
import { SquashfsWriter, type CodecName } from '../formats/squashfs/index.js';

export interface SifObject {
  type: SifDataType;
  name?: string;
  data: Uint8Array;
}

export interface SquashfsSifOptions {
  compressor?: CodecName;
  level?: number;
  blockSize?: number;
  deterministic?: boolean;
  /** SIF and superblock time (seconds). */
  time: number;
  /** Go or Node architecture name of the root filesystem. */
  arch: string;
  onWarning?: (msg: string) => void;
  /** Context for wrapped errors, e.g. "build out.sif". */
  context: string;
  /** called when `fill` is done, before the squashfs tables and the SIF are finished (--timings) */
  onFilled?: () => void;
}

export async function writeSquashfsSif(
  out: string,
  objects: readonly SifObject[],
  opts: SquashfsSifOptions,
  fill: (writer: SquashfsWriter) => Promise<void>,
): Promise<{ imageSize: number; partitionOffset: number }> {
  const sif = await SifWriter.create(out, { deterministic: opts.deterministic ?? false, createdAt: opts.time });
  let imageSize = 0;
  let partitionOffset = 0;
  try {
    for (const o of objects) await sif.addObject(o.name === undefined ? { type: o.type, data: o.data } : o);
    await sif.addPartition({ fsType: FsType.Squash, partType: PartType.PrimSys, arch: opts.arch }, async (handle, offset) => {
      partitionOffset = offset;
      const warn = opts.onWarning;
      const writer = new SquashfsWriter({
        handle,
        offset,
        compressor: opts.compressor ?? 'gzip',
        ...(opts.level !== undefined ? { level: opts.level } : {}),
        ...(opts.blockSize !== undefined ? { blockSize: opts.blockSize } : {}),
        deterministic: opts.deterministic ?? false,
        mkfsTime: opts.time,
        ...(warn ? { onWarning: (_code: string, m: string) => warn(m) } : {}),
      });
      try {
        await fill(writer);
        opts.onFilled?.();
        imageSize = (await writer.finish()).size;
        return imageSize;
      } catch (e) {
        await writer.abort().catch(() => undefined);
        throw e;
      }
    });
    await sif.finish();
  } catch (e) {
    await sif.abort().catch(() => undefined);
    throw e instanceof HpccError ? e : addContext(opts.context, e);
  }
  return { imageSize, partitionOffset };
}
