/**
 * Whole-file writes that never leave a half-written file at the path: the
 * bytes go to a temp file beside it (created exclusively, with `mode`), are
 * fsynced, then renamed over the path. On failure the temp file is removed
 * and the error carries `what` as its context.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { addContext } from '../errors/index.js';

export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: { mode: number; what: string }): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(tmp, 'wx', opts.mode);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fs.rename(tmp, file);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw addContext(opts.what, e);
  }
}
