/**
 * Image facts for the plan builder, read from a SIF without mounting it:
 * the primary partition's offset, /etc/passwd and /etc/group, the names and
 * texts of /.singularity.d/env scripts, and path look-ups (symlinks followed inside
 * the image) served by hpcc's squashfs reader. The image stays open until
 * close(): the builder's look-ups read it lazily.
 */
import * as path from 'node:path';
import { HpccError } from '../errors/index.js';
import type { ImageFacts, PathInfo } from '../runtime/builder/types.js';
import { openSifRootfs, type OpenedImage } from './image.js';

const MAX_SMALL_FILE = 4 * 1024 * 1024;
/** env scripts up to this size are read for every launch (the inert-script check) */
const MAX_SCRIPT_PEEK = 64 * 1024;
const ENV_DIR = '/.singularity.d/env';

function notFound(e: unknown): boolean {
  const code = e instanceof HpccError ? e.code : '';
  return code === 'HPCC_E_SQFS_NOT_FOUND' || code === 'HPCC_E_SQFS_NOT_DIR' || code === 'HPCC_E_SQFS_SYMLINK_LOOP';
}

export interface OpenImageFacts {
  facts: ImageFacts;
  /** the open image the facts were read from (closed by close()) */
  image: OpenedImage;
  close(): Promise<void>;
}

/** Open `image` (an absolute path) and read its facts; `withScriptText` reads env scripts of any size (for --explain-env), else up to 64 KiB. */
export async function readImageFacts(image: string, withScriptText = false): Promise<OpenImageFacts> {
  const img = await openSifRootfs(image);
  try {
    const fsr = img.rootfs;
    const cache = new Map<string, PathInfo | null>();
    const lookup = (p: string): PathInfo | null => {
      if (cache.has(p)) return cache.get(p)!;
      let info: PathInfo | null = null;
      try {
        const r = fsr.resolve(p, true);
        const k = r.inode.kind;
        info = { kind: k === 'dir' ? 'dir' : k === 'file' ? 'file' : 'other', real: r.path };
      } catch (e) {
        if (!notFound(e)) throw e;
      }
      cache.set(p, info);
      return info;
    };
    const links = new Map<string, string | null>();
    const readlink = (p: string): string | null => {
      if (links.has(p)) return links.get(p)!;
      let target: string | null = null;
      try {
        const r = fsr.resolve(p, false);
        if (r.inode.kind === 'symlink') target = new TextDecoder().decode(fsr.linkTarget(r.inode)).replace(/\0/g, '');
      } catch (e) {
        if (!notFound(e)) throw e;
      }
      links.set(p, target);
      return target;
    };
    const readSmall = async (p: string, maxBytes = MAX_SMALL_FILE): Promise<string | null> => {
      const info = lookup(p);
      if (info?.kind !== 'file') return null;
      try {
        return (await fsr.readFile(info.real, { maxBytes })).toString('utf8');
      } catch (e) {
        if (maxBytes < MAX_SMALL_FILE && e instanceof HpccError && e.code === 'HPCC_E_SQFS_FILE_TOO_LARGE') return null;
        throw e;
      }
    };
    let envScripts: string[] = [];
    const envText: Record<string, string> = {};
    if (lookup(ENV_DIR)?.kind === 'dir') {
      const ents = await fsr.readdir(ENV_DIR);
      envScripts = ents.filter((d) => (d.type === 'file' || d.type === 'symlink') && lookup(path.posix.join(ENV_DIR, d.name))?.kind === 'file').map((d) => d.name);
      // The texts let the builder see inert scripts (comments only, as `hpcc build` writes them)
      // and exec the payload without the sh wrapper; for that, scripts above 64 KiB stay unread
      // (the wrapper sources them). --explain-env reads them all.
      for (const n of envScripts) {
        if (!n.endsWith('.sh')) continue;
        const t = await readSmall(path.posix.join(ENV_DIR, n), withScriptText ? MAX_SMALL_FILE : MAX_SCRIPT_PEEK);
        if (t !== null) envText[n] = t;
      }
    }
    const facts: ImageFacts = {
      path: image,
      offset: img.partitionOffset,
      passwd: await readSmall('/etc/passwd'),
      group: await readSmall('/etc/group'),
      envScripts,
      envScriptText: envText,
      lookup,
      readlink,
    };
    return { facts, image: img, close: () => img.close() };
  } catch (e) {
    await img.close();
    throw e;
  }
}
