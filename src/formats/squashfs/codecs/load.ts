/**
 * Lazy loading of optional codec libraries: `hpcc` start-up never pays for
 * them, and a missing or broken library becomes a CodecError with a hint.
 */
import { createRequire } from 'node:module';
import { CodecError } from '../../../errors/index.js';

const require = createRequire(import.meta.url);
const cache = new Map<string, unknown>();

/** require() a CommonJS codec package by name (cached), or throw HPCC_E_CODEC_MISSING. */
export function loadCodecLibrary<T>(pkg: string, codec: string): T {
  const hit = cache.get(pkg);
  if (hit !== undefined) return hit as T;
  let mod: T;
  try {
    mod = require(pkg) as T;
  } catch (e) {
    throw new CodecError('HPCC_E_CODEC_MISSING', `the ${codec} codec needs the npm package ${pkg}, which did not load`, {
      hint: `Reinstall hpcc's dependencies (npm ci) so that ${pkg} is present, or use --comp gzip.`,
      cause: e,
    });
  }
  cache.set(pkg, mod);
  return mod;
}

/** Resolve a file inside a package (bypassing its "exports" map), for internals we pin by version. */
export function resolveCodecFile(pkg: string, codec: string): string {
  try {
    return require.resolve(pkg);
  } catch (e) {
    throw new CodecError('HPCC_E_CODEC_MISSING', `the ${codec} codec needs the npm package ${pkg}, which is not installed`, {
      hint: `Reinstall hpcc's dependencies (npm ci) so that ${pkg} is present, or use --comp gzip.`,
      cause: e,
    });
  }
}

export function requireFile<T>(file: string): T {
  return require(file) as T;
}
