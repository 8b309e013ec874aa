/**
 * The body of `hpcc pull`, shared by the oclif command (src/commands/pull.ts)
 * and the lean path (src/cli/fast-pull.ts), so both print, write and fail the
 * same way. Loads no oclif.
 */
import { UsageError } from '../errors/index.js';
import { defaultOutputName, pullImage } from '../core/pull.js';
import { parsePlatform } from '../oci/platform.js';
import { PullProgress } from '../oci/pull-progress.js';
import { isImageReference, parseReference } from '../oci/reference.js';
import type { OciPlatform } from '../oci/types.js';
import { parseBlockSize } from './size.js';
import { Timings } from '../runtime/timings.js';

/** --timings of pull and build: these phases, always listed (0 ms when one did not happen). */
export const TRANSFER_PHASES = Object.freeze(['resolve', 'fetch', 'convert', 'write']);

/** The flags of `hpcc pull`, as oclif parses them (src/commands/pull.ts). */
export interface PullFlags {
  force: boolean;
  arch?: string | undefined;
  platform?: string | undefined;
  insecure: boolean;
  compressor?: string | undefined;
  level?: number | undefined;
  'block-size'?: string | undefined;
  'no-sif-cache': boolean;
  quiet: boolean;
  json: boolean;
  timings: boolean;
}

/**
 * WebAssembly from V8's baseline compiler only (Liftoff). undici parses HTTP with
 * llhttp compiled to WebAssembly; by default V8 also optimises its big parser
 * function on a background thread (~0.1 s of CPU), which a short command waits
 * for when it exits: `hpcc pull` of a missing tag took 0.32 s with it, 0.17 s
 * without (docs/registry.md). The flag is process-wide, and read when a module is
 * compiled; not set for --compressor zstd, whose codec is libzstd in WebAssembly
 * and needs the optimising compiler.
 */
export function preferBaselineWasm(compressor: string | undefined): void {
  if (compressor === 'zstd' || process.env.HPCC_WASM_OPTIMIZE === '1') return;
  (process.getBuiltinModule('node:v8') as typeof import('node:v8')).setFlagsFromString('--liftoff-only');
}

/** Run `hpcc pull [OUT] REF`; errors are thrown for the caller to render. */
export async function runPull(first: string, second: string | undefined, flags: PullFlags): Promise<void> {
  preferBaselineWasm(flags.compressor);
  const [out, refText] = second !== undefined ? [first, second] : [undefined, first];
  if (!isImageReference(refText)) {
    throw new UsageError(`${refText} is not an image reference`, {
      hint: 'Use docker://NAME[:TAG], oci:DIR[:tag], oci-archive:FILE[:tag] or docker-archive:FILE.',
    });
  }
  if (flags.arch !== undefined && flags.platform !== undefined) throw new UsageError('give --arch or --platform, not both');
  const platform: OciPlatform | undefined =
    flags.platform !== undefined ? parsePlatform(flags.platform) : flags.arch !== undefined ? parsePlatform(flags.arch) : undefined;
  const talk = !flags.quiet && !flags.json;
  const progress = new PullProgress(process.stderr, { quiet: !talk, tty: process.stderr.isTTY === true });
  const timings = flags.timings ? new Timings({ phases: TRANSFER_PHASES, wall: true }) : undefined;
  const r = await pullImage(refText, out ?? defaultOutputName(parseReference(refText)), {
    ...(platform ? { platform } : {}),
    insecure: flags.insecure,
    force: flags.force,
    ...(flags.compressor ? { compressor: flags.compressor as 'gzip' } : {}),
    ...(flags.level !== undefined ? { level: flags.level } : {}),
    ...(flags['block-size'] !== undefined ? { blockSize: parseBlockSize(flags['block-size']) } : {}),
    useSifCache: !flags['no-sif-cache'],
    ...(timings ? { timings } : {}),
    onEvent: (ev) => progress.event(ev),
    onConvertProgress: (p) => {
      if (p.done) progress.converted(p.index, p.count, p.entries);
    },
    onWarning: (m) => {
      if (flags.quiet) return;
      progress.clear();
      process.stderr.write(`Warning: ${m}\n`);
    },
  }).finally(() => {
    progress.clear();
    if (!flags.json) timings?.print(); // on failure too: the phases so far
  });
  if (flags.json) process.stdout.write(JSON.stringify({ status: 'ok', ...r, ...(timings ? { timings: timings.toJSON() } : {}) }, null, 2) + '\n');
  else if (talk) {
    process.stderr.write(`${r.sifCached ? 'Copied cached SIF' : 'Wrote'} ${r.output} (${r.reference}, ${r.platform}, manifest ${r.manifestDigest})\n`);
  }
}
