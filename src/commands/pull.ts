import { Args, Flags } from '@oclif/core';
import { HpccCommand } from '../cli/base.js';
import { runPull } from '../cli/pull-action.js';

export default class Pull extends HpccCommand {
  static override summary = 'Pull an image from a registry (or convert an OCI/Docker archive) into a SIF.';
  static override description =
    'Downloads docker://[registry/]name[:tag|@sha256:digest] into the content-addressed cache (HPCC_CACHEDIR, ' +
    'default ~/.cache/hpcc), converts it into a SIF once per manifest digest, and copies it to OUT.sif (default: ' +
    '<name>_<tag>.sif, as Apptainer names it). Layers are downloaded in parallel and checked against their digests.' +
    '\n\n' +
    'Plain-HTTP registries must be named with --insecure, HPCC_INSECURE_REGISTRIES or ' +
    '"[registries] insecure = host:port" in hpcc.conf.';
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
    timings: Flags.boolean({ description: "print each phase's wall time (resolve, fetch, convert, write) on stderr, or in --json" }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Pull);
    await runPull(args.first, args.second, flags);
  }
}
