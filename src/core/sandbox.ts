/**
 * `hpcc build --sandbox OUTDIR IMAGE.sif`: unpack a SIF's root filesystem
 * into a directory with hpcc's own squashfs reader (no mount, no root).
 * The tree is extracted into a temporary sibling directory and renamed into
 * place, so a failure never leaves a half-written OUTDIR.
 *
 * As a non-root user the tree is the caller's: setuid/setgid and group/other
 * write bits are cleared (the image root 0777 becomes 0755), so no other user
 * runs a file as the caller or plants one in the tree; as root the image is
 * copied exactly (extractTree's rules). Extended attributes are restored
 * unless `xattrs: false` (--no-xattrs): user.* as a user, all as root.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { UsageError, addContext } from '../errors/index.js';
import { extractTree } from '../formats/squashfs/index.js';
import { openSifRootfs } from './image.js';
import { removeTree } from '../util/remove-tree.js';

export interface SandboxOptions {
  force?: boolean;
  /** Restore extended attributes (default true; --no-xattrs turns it off). */
  xattrs?: boolean;
  onWarning?: (msg: string) => void;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

export async function extractSifToSandbox(
  image: string,
  outDir: string,
  opts: SandboxOptions = {},
): Promise<{ output: string; entries: number; bytes: number }> {
  const target = path.resolve(outDir);
  if (await exists(target)) {
    if (!opts.force) {
      throw new UsageError(`sandbox directory ${outDir} already exists`, {
        hint: 'Pass --force to replace it, or choose another directory.',
      });
    }
  }
  const img = await openSifRootfs(image);
  let tmp: string | undefined;
  try {
    const parent = path.dirname(target);
    tmp = await fs.mkdtemp(path.join(parent, `.${path.basename(target)}.hpcc-tmp-`)).catch((e) => {
      throw addContext(`create sandbox next to ${outDir}`, e);
    });
    // The root takes the image root's mode (masked as for every entry) last, when the tree is complete.
    const r = await extractTree(img.rootfs, tmp, {
      xattrs: opts.xattrs ?? true,
      xattrHint: 'pass --no-xattrs to skip them',
      ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
    });
    if (await exists(target)) {
      const old = `${tmp}.old`;
      await fs.rename(target, old);
      await fs.rename(tmp, target);
      removeTree(old);
    } else {
      await fs.rename(tmp, target);
    }
    tmp = undefined;
    return { output: target, entries: r.entries, bytes: r.bytes };
  } finally {
    if (tmp !== undefined) removeTree(tmp);
    await img.close();
  }
}
