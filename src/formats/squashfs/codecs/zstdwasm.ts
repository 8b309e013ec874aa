/**
 * Access to libzstd compiled to WebAssembly (@bokuweb/zstd-wasm 0.0.27,
 * pinned). Its simple API sizes the output from the frame header, which a
 * hostile image controls, so decompression calls the exported
 * ZSTD_decompress with our own output capacity instead: libzstd then stops
 * with an error rather than writing past maxOut. Being WebAssembly, a bug in
 * the decoder cannot crash the process.
 */
import path from 'node:path';
import { loadCodecLibrary, requireFile, resolveCodecFile } from './load.js';

const PKG = '@bokuweb/zstd-wasm';

interface WasmModule {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
  _ZSTD_decompress(dst: number, cap: number, src: number, len: number): number;
  _ZSTD_isError(code: number): number;
}
interface ZstdWasmPkg {
  init(): Promise<void>;
  compress(buf: Uint8Array, level?: number): Uint8Array;
}

export interface ZstdWasm {
  compress(src: Uint8Array, level: number): Uint8Array;
  /** Decompress into at most maxOut bytes; returns null if the input is corrupt or too large. */
  decompress(src: Uint8Array, maxOut: number): Uint8Array | null;
}

let ready: Promise<ZstdWasm> | undefined;

export function zstdWasm(): Promise<ZstdWasm> {
  ready ??= (async () => {
    const pkg = loadCodecLibrary<ZstdWasmPkg>(PKG, 'zstd');
    await pkg.init();
    const { Module } = requireFile<{ Module: WasmModule }>(path.join(path.dirname(resolveCodecFile(PKG, 'zstd')), 'module.js'));
    return {
      compress: (src, level) => pkg.compress(src, level),
      decompress(src, maxOut) {
        const cap = Math.max(1, maxOut);
        const sp = Module._malloc(Math.max(1, src.length));
        const dp = Module._malloc(cap);
        try {
          if (sp === 0 || dp === 0) return null;
          Module.HEAPU8.set(src, sp);
          const r = Module._ZSTD_decompress(dp, cap, sp, src.length);
          if (Module._ZSTD_isError(r) || r < 0 || r > maxOut) return null;
          return Module.HEAPU8.slice(dp, dp + r);
        } finally {
          if (dp !== 0) Module._free(dp);
          if (sp !== 0) Module._free(sp);
        }
      },
    };
  })();
  ready.catch(() => {
    ready = undefined;
  });
  return ready;
}
