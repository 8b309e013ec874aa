/**
 * Optional native gzip engine: native/deflate/deflate.c, a Node-API addon
 * running libdeflate on the libuv threadpool (dist/native/deflate.node, built
 * by `npm run build` when libdeflate-dev is installed). It writes the same
 * zlib (RFC 1950) streams as Node's zlib (squashfs-format.md §2), ~1.7 %
 * smaller and ~25 % less CPU at level 6 (docs/compression.md).
 *
 * Loaded on first use by the gzip encoder only, so readers and `hpcc exec`
 * never load it.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface LibdeflateAddon {
  /** Compress one buffer into a zlib stream on the threadpool; level 1..12. */
  compress(src: Uint8Array, level: number): Promise<Buffer>;
  compressSync(src: Uint8Array, level: number): Buffer;
}

const require = createRequire(import.meta.url);

/** Where the addon may be: next to compiled code (dist/src/... → dist/native) or from source (src/... → dist/native). */
export const LIBDEFLATE_ADDON_PATHS: readonly string[] = [
  fileURLToPath(new URL('../../../../native/deflate.node', import.meta.url)),
  fileURLToPath(new URL('../../../../dist/native/deflate.node', import.meta.url)),
];

let cached: { addon: LibdeflateAddon | null; error: unknown } | undefined;

/** The addon, or null when it is not built or does not load (the reason is in libdeflateLoadError()). */
export function loadLibdeflate(): LibdeflateAddon | null {
  if (cached) return cached.addon;
  let error: unknown = new Error(`deflate.node not found (looked in ${LIBDEFLATE_ADDON_PATHS.join(', ')})`);
  for (const file of LIBDEFLATE_ADDON_PATHS) {
    try {
      const addon = require(file) as LibdeflateAddon;
      if (typeof addon.compress === 'function' && typeof addon.compressSync === 'function') {
        cached = { addon, error: null };
        return addon;
      }
      error = new Error(`${file} is not hpcc's deflate addon`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') error = e;
    }
  }
  cached = { addon: null, error };
  return null;
}

export function libdeflateLoadError(): unknown {
  loadLibdeflate();
  return cached?.error ?? null;
}
