import { Args, Flags } from '@oclif/core';
import type { InferredFlags } from '@oclif/core/interfaces';
import * as fs from 'node:fs/promises';
import { HpccCommand } from '../cli/base.js';
import { UsageError } from '../errors/index.js';
import { buildSifFromDirectory } from '../core/build.js';
import { extractSifToSandbox } from '../core/sandbox.js';
import { convertImage } from '../core/convert.js';
import { bootstrapOf, isImageReference, parseReference } from '../oci/reference.js';
import { formatPlatform, parsePlatform } from '../oci/platform.js';
import { resolveSource } from '../oci/sources.js';
import type { OciPlatform } from '../oci/types.js';
import { parseBlockSize } from '../cli/size.js';
import { buildFromDefinition } from '../build/def/builder.js';
import { readBuildArgs } from '../build/def/index.js';
import { TRANSFER_PHASES } from '../cli/pull-action.js';
import { Timings } from '../runtime/timings.js';

export default class Build extends HpccCommand {
  static override summary = 'Build a SIF from a directory tree, or unpack a SIF into a sandbox directory.';
  static override description =
    'Packs DIR (a root filesystem tree) into a single SIF file whose primary partition is a squashfs image, as ' +
    'Apptainer\'s "build OUT.sif DIR" does. Ownership, modes, xattrs, hard links and device nodes are kept exactly.' +
    '\n\n' +
    'With --sandbox, unpacks IMAGE.sif into the directory OUT instead. As root the tree is an exact copy. As any other ' +
    'user the tree is yours, so setuid/setgid bits and group/other write bits are dropped, and only user.* extended ' +
    'attributes are restored (--no-xattrs restores none).' +
    '\n\n' +
    'Output appears only when complete (written to a temporary name first).';
  static override examples = [
    '<%= config.bin %> build image.sif ./rootfs',
    '<%= config.bin %> build --compressor zstd --level 3 image.sif ./rootfs',
    '<%= config.bin %> build --sandbox ./rootfs image.sif',
    '<%= config.bin %> build image.sif oci:./layout:latest',
    '<%= config.bin %> build --platform linux/arm64 image.sif oci-archive:image.tar',
    '<%= config.bin %> build image.sif docker-archive:saved.tar',
    '<%= config.bin %> build --build-arg VERSION=12 image.sif app.def',
  ];
  static override args = {
    output: Args.string({ required: true, description: 'output SIF file (or directory with --sandbox)' }),
    source: Args.string({ required: true, description: 'source directory, image reference (oci:DIR[:tag], oci-archive:FILE[:tag], docker-archive:FILE[:name:tag]), or SIF file with --sandbox, or a definition file (docs/build.md)' }),
  };
  static override flags = {
    sandbox: Flags.boolean({ char: 's', description: 'unpack SOURCE (a SIF) into the directory OUTPUT' }),
    force: Flags.boolean({ char: 'F', description: 'overwrite an existing output' }),
    xattrs: Flags.boolean({
      allowNo: true,
      default: true,
      description: 'with --sandbox: restore extended attributes (user.* as a user, all as root); --no-xattrs skips them',
    }),
    compressor: Flags.string({
      description: 'squashfs compressor',
      options: ['gzip', 'zstd', 'xz', 'lz4'],
      default: 'gzip',
    }),
    level: Flags.integer({ description: 'compression level (codec default when omitted)' }),
    'block-size': Flags.string({ description: 'squashfs block size, e.g. 128K or 1M (4K..1M)', default: '128K' }),
    deterministic: Flags.boolean({
      description: 'reproducible output: fixed times (SOURCE_DATE_EPOCH or 0) and a zero image id',
    }),
    quiet: Flags.boolean({ char: 'q', description: 'print nothing but errors' }),
    json: Flags.boolean({ description: 'print the result as JSON' }),
    arch: Flags.string({ description: 'image references: architecture to take from a multi-platform image (default: the host)' }),
    platform: Flags.string({ description: 'image references: os/arch[/variant] to take from a multi-platform image' }),
    'build-arg': Flags.string({ multiple: true, multipleNonGreedy: true, description: 'definition files: NAME=VALUE for {{ NAME }} (overrides %arguments)' }),
    'build-arg-file': Flags.string({ description: 'definition files: a file of NAME=VALUE lines for {{ NAME }}' }),
    notest: Flags.boolean({ description: 'definition files: do not run %test after the build' }),
    timings: Flags.boolean({ description: "print each phase's wall time (resolve, fetch, convert, write) on stderr, or in --json" }),
  };
  private timings: Timings | undefined;

  /** The result, with --json (and the phases with --timings). */
  private printResult(r: object): void {
    this.printJson({ status: 'ok', ...r, ...(this.timings ? { timings: this.timings.toJSON() } : {}) });
  }

  private async buildFromReference(
    out: string,
    source: string,
    flags: { quiet: boolean; json: boolean; force: boolean; compressor: string; level?: number; 'block-size': string; deterministic: boolean; arch?: string; platform?: string },
  ): Promise<void> {
    if (flags.arch !== undefined && flags.platform !== undefined) throw new UsageError('give --arch or --platform, not both');
    const platform: OciPlatform | undefined =
      flags.platform !== undefined ? parsePlatform(flags.platform) : flags.arch !== undefined ? parsePlatform(flags.arch) : undefined;
    const blockSize = parseBlockSize(flags['block-size']);
    const ref = parseReference(source);
    const talk = !flags.quiet && !flags.json;
    const tty = process.stderr.isTTY === true;
    let started = Date.now();
    const image = await resolveSource(ref).resolve(platform ? { platform } : {});
    this.timings?.mark('resolve');
    try {
      if (talk) process.stderr.write(`Converting ${image.reference} (${formatPlatform(image.platform)}, ${image.layers.length} layers) into ${out}\n`);
      const r = await convertImage(image, out, {
        compressor: flags.compressor as 'gzip',
        ...(flags.level !== undefined ? { level: flags.level } : {}),
        blockSize,
        deterministic: flags.deterministic || process.env.SOURCE_DATE_EPOCH !== undefined,
        force: flags.force,
        bootstrap: bootstrapOf(ref),
        ...(this.timings ? { onFilled: () => this.timings!.mark('convert') } : {}),
        onProgress: (p) => {
          if (!talk) return;
          const name = `Layer ${p.index + 1}/${p.count} ${p.digest.slice(0, 19)}`;
          if (p.bytesRead === 0 && !p.done) {
            started = Date.now();
            return;
          }
          if (p.done) {
            process.stderr.write(`${tty ? '\r\x1b[K' : ''}${name}: ${formatBytes(p.bytesRead)}, ${p.entries} entries so far\n`);
          } else if (tty) {
            // bytes, rate and ETA on one rewritten line (TTY only; plain lines otherwise)
            const secs = Math.max(0.001, (Date.now() - started) / 1000);
            const rate = p.bytesRead / secs;
            const eta = rate > 0 && p.size > p.bytesRead ? Math.ceil((p.size - p.bytesRead) / rate) : 0;
            process.stderr.write(`\r\x1b[K${name}: ${formatBytes(p.bytesRead)} / ${formatBytes(p.size)}, ${formatBytes(rate)}/s, ETA ${eta}s`);
          }
        },
        onWarning: (m) => {
          if (!flags.quiet) process.stderr.write(`Warning: ${m}\n`);
        },
      });
      this.timings?.mark('write');
      if (flags.json) this.printResult(r);
      else if (talk) {
        process.stderr.write(`Built ${r.output}: ${r.layers} layers, ${r.entries} entries, squashfs ${formatBytes(r.imageSize)} at offset ${r.partitionOffset}\n`);
      }
    } finally {
      await image.close();
    }
  }

  private async buildFromDefinition(
    out: string,
    file: string,
    flags: { quiet: boolean; json: boolean; force: boolean; compressor: string; level?: number; 'block-size': string; deterministic: boolean; arch?: string; platform?: string; 'build-arg'?: string[]; 'build-arg-file'?: string; notest: boolean },
  ): Promise<void> {
    if (flags.arch !== undefined && flags.platform !== undefined) throw new UsageError('give --arch or --platform, not both');
    const platform = flags.platform !== undefined ? parsePlatform(flags.platform) : flags.arch !== undefined ? parsePlatform(flags.arch) : undefined;
    const talk = !flags.quiet && !flags.json;
    const r = await buildFromDefinition(out, file, {
      buildArgs: await readBuildArgs(flags['build-arg'] ?? [], flags['build-arg-file']),
      notest: flags.notest,
      compressor: flags.compressor as 'gzip',
      ...(flags.level !== undefined ? { level: flags.level } : {}),
      blockSize: parseBlockSize(flags['block-size']),
      deterministic: flags.deterministic,
      force: flags.force,
      ...(platform ? { platform } : {}),
      verbose: talk,
      onInfo: (m) => {
        if (talk) process.stderr.write(`INFO: ${m}\n`);
      },
      onWarning: (m) => {
        if (!flags.quiet) process.stderr.write(`Warning: ${m}\n`);
      },
    });
    if (flags.json) this.printResult(r);
    else if (talk) process.stderr.write(`Built ${r.output} from ${file} (${r.stages} stage${r.stages === 1 ? '' : 's'})\n`);
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Build);
    if (flags.timings) this.timings = new Timings({ phases: TRANSFER_PHASES, wall: true });
    try {
      await this.build(args, flags);
    } finally {
      if (!flags.json) this.timings?.print(); // on failure too: the phases so far
    }
  }

  private async build(args: { output: string; source: string }, flags: InferredFlags<typeof Build.flags>): Promise<void> {
    const warn = (m: string) => {
      if (!flags.quiet) process.stderr.write(`Warning: ${m}\n`);
    };
    if (!flags.xattrs && !flags.sandbox) throw new UsageError('--no-xattrs applies to --sandbox only (a SIF keeps every attribute of its source)');
    if (isImageReference(args.source) || /^[a-z][a-z0-9+-]*:\/\//.test(args.source)) {
      if (flags.sandbox) throw new UsageError('--sandbox unpacks a SIF file; it cannot be used with an image reference');
      await this.buildFromReference(args.output, args.source, flags);
      return;
    }
    if (flags.sandbox) {
      const st = await fs.stat(args.source).catch(() => null);
      if (st?.isDirectory()) {
        throw new UsageError(`--sandbox unpacks a SIF file, but ${args.source} is a directory`, {
          hint: 'Copy the directory with cp -a, or drop --sandbox to build a SIF from it.',
        });
      }
      if (!flags.quiet && !flags.json) process.stderr.write(`Unpacking ${args.source} into ${args.output}\n`);
      const r = await extractSifToSandbox(args.source, args.output, { force: flags.force, xattrs: flags.xattrs, onWarning: warn });
      this.timings?.mark('write'); // unpacking writes the tree: one phase
      if (flags.json) this.printResult(r);
      else if (!flags.quiet) process.stderr.write(`Created sandbox ${r.output} (${r.entries} entries)\n`);
      return;
    }
    const defOnly = flags['build-arg'] !== undefined || flags['build-arg-file'] !== undefined || flags.notest;
    if (await isDefinitionFile(args.source)) {
      await this.buildFromDefinition(args.output, args.source, flags);
      return;
    }
    if (defOnly) throw new UsageError('--build-arg, --build-arg-file and --notest apply to definition files only');
    const blockSize = parseBlockSize(flags['block-size']);
    if (!flags.quiet && !flags.json) process.stderr.write(`Packing ${args.source} into ${args.output}\n`);
    const r = await buildSifFromDirectory(args.output, args.source, {
      compressor: flags.compressor as 'gzip',
      ...(flags.level !== undefined ? { level: flags.level } : {}),
      blockSize,
      deterministic: flags.deterministic || process.env.SOURCE_DATE_EPOCH !== undefined,
      force: flags.force,
      onWarning: warn,
      ...(this.timings ? { timings: this.timings } : {}),
    });
    if (flags.json) this.printResult(r);
    else if (!flags.quiet) {
      process.stderr.write(
        `Built ${r.output}: ${r.entries} entries, ${formatBytes(r.bytes)} of data, squashfs ${formatBytes(r.imageSize)} at offset ${r.partitionOffset}\n`,
      );
    }
  }
}

/** A regular file that is not a SIF (no SIF_MAGIC at offset 32): a definition file. */
async function isDefinitionFile(p: string): Promise<boolean> {
  const st = await fs.stat(p).catch(() => null);
  if (!st?.isFile()) return false;
  const fh = await fs.open(p, 'r');
  try {
    const buf = Buffer.alloc(64);
    const { bytesRead } = await fh.read(buf, 0, 64, 0);
    return !buf.subarray(0, bytesRead).includes('SIF_MAGIC');
  } finally {
    await fh.close();
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
