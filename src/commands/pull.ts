import { Args, Flags } from '@oclif/core';
import { HpccCommand } from '../cli/base.js';
import { UsageError } from '../errors/index.js';
import { defaultOutputName, pullImage } from '../core/pull.js';
import { parsePlatform } from '../oci/platform.js';
import { PullProgress } from '../oci/pull-progress.js';
import { isImageReference, parseReference } from '../oci/reference.js';
import type { OciPlatform } from '../oci/types.js';
import { parseSize } from './build.js';

export default class Pull extends HpccCommand {
  static override summary = 'Pull an image from a registry (or convert a local OCI/Docker archive) into a SIF file.';
  static override description = `Downloads docker://[registry/]name[:tag|@sha256:digest] into the content-addressed cache
(HPCC_CACHEDIR, default ~/.cache/hpcc), converts it into a SIF once per manifest digest, and
copies it to OUT.sif (default: <name>_<tag>.sif, as Apptainer names it). Layers are downloaded
in parallel and checked against their digests. Plain-HTTP registries must be named with
--insecure, HPCC_INSECURE_REGISTRIES or "[registries] insecure = host:port" in hpcc.conf.`;
  static override examples = [
    '<%= config.bin %> pull docker://alpine:3.20',
    '<%= config.bin %> pull python.sif docker://python:3.12-slim',
    '<%= config.bin %> pull --platform linux/arm64 docker://ghcr.io/org/app@sha256:…',
    '<%= config.bin %> pull --insecure docker://127.0.0.1:5000/lab/busybox',
  ];
  static override args = {
    first: Args.string({ required: true, description: 'OUT.sif, or the reference when OUT is omitted' }),
    second: Args.string({ required: false, description: 'the reference (docker://…, oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE)' }),
  };
  static override flags = {
    force: Flags.boolean({ char: 'F', description: 'overwrite an existing output' }),
    arch: Flags.string({ description: 'architecture to take from a multi-platform image (default: the host)' }),
    platform: Flags.string({ description: 'os/arch[/variant] to take from a multi-platform image' }),
    insecure: Flags.boolean({ description: 'use plain HTTP (no TLS) for this registry' }),
    compressor: Flags.string({ description: 'squashfs compressor', options: ['gzip', 'zstd', 'xz', 'lz4'] }),
    level: Flags.integer({ description: 'compression level (codec default when omitted)' }),
    'block-size': Flags.string({ description: 'squashfs block size, e.g. 128K or 1M' }),
    'no-sif-cache': Flags.boolean({ description: 'do not keep or reuse the converted SIF in the cache (layers are still cached)' }),
    quiet: Flags.boolean({ char: 'q', description: 'print nothing but errors' }),
    json: Flags.boolean({ description: 'print the result as JSON' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Pull);
    const [out, refText] = args.second !== undefined ? [args.first, args.second] : [undefined, args.first];
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
    const r = await pullImage(refText, out ?? defaultOutputName(parseReference(refText)), {
      ...(platform ? { platform } : {}),
      insecure: flags.insecure,
      force: flags.force,
      ...(flags.compressor ? { compressor: flags.compressor as 'gzip' } : {}),
      ...(flags.level !== undefined ? { level: flags.level } : {}),
      ...(flags['block-size'] !== undefined ? { blockSize: parseSize(flags['block-size']) } : {}),
      useSifCache: !flags['no-sif-cache'],
      onEvent: (ev) => progress.event(ev),
      onConvertProgress: (p) => {
        if (p.done) progress.converted(p.index, p.count, p.entries);
      },
      onWarning: (m) => {
        if (flags.quiet) return;
        progress.clear();
        process.stderr.write(`Warning: ${m}\n`);
      },
    }).finally(() => progress.clear());
    if (flags.json) this.printJson({ status: 'ok', ...r });
    else if (talk) {
      process.stderr.write(`${r.sifCached ? 'Copied cached SIF' : 'Wrote'} ${r.output} (${r.reference}, ${r.platform}, manifest ${r.manifestDigest})\n`);
    }
  }
}
