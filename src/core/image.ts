/**
 * Open a SIF image's primary squashfs partition for reading, with errors
 * that name the problem (no primary partition, not squashfs, not a SIF).
 * The file is opened once: the SIF reader and the squashfs reader share the
 * descriptor and read it synchronously (no thread-pool round trips on the
 * launch path); close() closes it.
 */
import * as fs from 'node:fs';
import { addContext, SifFormatError } from '../errors/index.js';
import { FsType, SifReader } from '../formats/sif/index.js';
import { SquashfsReader } from '../formats/squashfs/index.js';

export interface OpenedImage {
  sif: SifReader;
  rootfs: SquashfsReader;
  partitionOffset: number;
  /** fstat of the opened file (its identity: device, inode, size, mtime) */
  stat: fs.Stats;
  close(): Promise<void>;
}

export async function openSifRootfs(image: string): Promise<OpenedImage> {
  let fd: number;
  try {
    fd = fs.openSync(image, 'r');
  } catch (e) {
    throw addContext(`open SIF ${image}`, e);
  }
  let closed = false;
  const closeFd = (): void => {
    if (!closed) {
      closed = true;
      fs.closeSync(fd);
    }
  };
  let sif: SifReader;
  try {
    sif = await SifReader.fromFd(fd, image);
  } catch (e) {
    closeFd();
    throw e;
  }
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
    const rootfs = await SquashfsReader.openFd(fd, image, { offset: part.offset, size: part.size });
    return {
      sif,
      rootfs,
      partitionOffset: part.offset,
      stat: fs.fstatSync(fd),
      async close() {
        await rootfs.close().catch(() => undefined);
        await sif.close().catch(() => undefined);
        closeFd();
      },
    };
  } catch (e) {
    await sif.close().catch(() => undefined);
    closeFd();
    throw e;
  }
}
