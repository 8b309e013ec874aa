/**
 * Open a SIF image's primary squashfs partition for reading, with errors
 * that name the problem (no primary partition, not squashfs, not a SIF).
 */
import { SifFormatError } from '../errors/index.js';
import { FsType, SifReader } from '../formats/sif/index.js';
import { SquashfsReader } from '../formats/squashfs/index.js';

export interface OpenedImage {
  sif: SifReader;
  rootfs: SquashfsReader;
  partitionOffset: number;
  close(): Promise<void>;
}

export async function openSifRootfs(image: string): Promise<OpenedImage> {
  const sif = await SifReader.open(image);
  try {
    const part = sif.primaryPartition();
    const fsType = part.partition?.fsType;
    if (fsType !== FsType.Squash) {
      throw new SifFormatError(
        'HPCC_E_SIF_UNSUPPORTED_FS',
        `primary partition of ${image} is not squashfs (filesystem type ${String(fsType)})`,
        { hint: 'hpcc reads squashfs root filesystems; ext3 and encrypted partitions are not supported.' },
      );
    }
    const rootfs = await SquashfsReader.open(image, { offset: part.offset, size: part.size });
    return {
      sif,
      rootfs,
      partitionOffset: part.offset,
      async close() {
        await rootfs.close().catch(() => undefined);
        await sif.close().catch(() => undefined);
      },
    };
  } catch (e) {
    await sif.close().catch(() => undefined);
    throw e;
  }
}
