/**
 * Hand-made OCI layers and images for the flattener tests: a small tar
 * writer (ustar headers, pax records with raw-byte values, GNU long names,
 * device nodes) and a writer that puts layers (gzip, zstd or plain) plus a
 * config and manifest into an OCI image layout, as umoci or skopeo would.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';

export interface TarSpec {
  name: string;
  /** typeflag: '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo */
  type?: string;
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** negative: written in GNU base-256 */
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, Buffer | string>;
  /** write the name with a GNU 'L' record instead of pax */
  gnuLongName?: boolean;
}

export function octal(buf: Buffer, off: number, len: number, v: number): void {
  buf.write(v.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
}

/** GNU base-256: first byte 0x80 (positive) or 0xff (negative), then big-endian two's complement. */
export function base256(buf: Buffer, off: number, len: number, v: number): void {
  let x = BigInt(v);
  for (let i = len - 1; i >= 0; i--) {
    buf[off + i] = Number(BigInt.asUintN(8, x));
    x >>= 8n;
  }
  buf[off] = v < 0 ? 0xff : 0x80;
}

function header(name: string, type: string, size: number, s: TarSpec, linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 100, 'utf8');
  octal(h, 100, 8, s.mode ?? (type === '5' ? 0o755 : 0o644));
  octal(h, 108, 8, s.uid ?? 0);
  octal(h, 116, 8, s.gid ?? 0);
  octal(h, 124, 12, size);
  if ((s.mtime ?? 0) < 0) base256(h, 136, 12, s.mtime!);
  else octal(h, 136, 12, s.mtime ?? 1700000000);
  h.write(type, 156, 1, 'latin1');
  h.write(linkname.slice(0, 100), 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'latin1');
  h.write('00', 263, 2, 'latin1');
  octal(h, 329, 8, s.devmajor ?? 0);
  octal(h, 337, 8, s.devminor ?? 0);
  return checksum(h);
}

/** Write a header block's checksum field (the sum of its bytes with the field read as spaces). */
export function checksum(h: Buffer): Buffer {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

/** Pad to a whole number of 512-byte blocks. */
export function pad(b: Buffer): Buffer {
  const r = b.length % 512;
  return r === 0 ? b : Buffer.concat([b, Buffer.alloc(512 - r)]);
}

/** One pax extended-header record, "LEN KEY=VALUE\n", LEN counting itself. */
export function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** Build a tar archive (with the two zero blocks at the end). */
export function makeTar(entries: TarSpec[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? '0';
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const pax: Buffer[] = [];
    for (const [k, v] of Object.entries(e.pax ?? {})) pax.push(paxRecord(k, Buffer.from(v)));
    const long = Buffer.byteLength(e.name) > 100;
    if (long && e.gnuLongName) {
      const n = Buffer.from(e.name + '\0');
      const hh = header('././@LongLink', 'L', n.length, {name: ''});
      parts.push(hh, pad(n));
    } else if (long) pax.push(paxRecord('path', Buffer.from(e.name)));
    if (e.linkname !== undefined && Buffer.byteLength(e.linkname) > 100) pax.push(paxRecord('linkpath', Buffer.from(e.linkname)));
    if (pax.length > 0) {
      const p = Buffer.concat(pax);
      parts.push(header('PaxHeaders/x', 'x', p.length, { name: '' }), pad(p));
    }
    parts.push(header(e.name, type, type === '0' ? data.length : 0, e, e.linkname ?? ''));
    if (type === '0') parts.push(pad(data));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export type Compression = 'gzip' | 'zstd' | 'none';

export function compress(tar: Buffer, c: Compression): Buffer {
  if (c === 'gzip') return gzipSync(tar);
  if (c === 'zstd') {
    const r = spawnSync('zstd', ['-q', '-c', '-3'], { input: tar, maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr}`);
    return r.stdout;
  }
  return tar;
}

const MEDIA: Record<Compression, string> = {
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  none: 'application/vnd.oci.image.layer.v1.tar',
};

function putBlob(layout: string, data: Buffer | string): { digest: string; size: number } {
  const b = Buffer.from(data);
  const hex = createHash('sha256').update(b).digest('hex');
  fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(layout, 'blobs', 'sha256', hex), b);
  return { digest: `sha256:${hex}`, size: b.length };
}

export interface ImageSpec {
  layers: Array<{ tar: Buffer; compression: Compression }>;
  config?: Record<string, unknown>;
  architecture?: string;
  /** leave the optional top-level mediaType out of the manifest (as umoci does) */
  omitMediaType?: boolean;
}

/** Write an image into an OCI layout (created if needed) and tag it. Returns the manifest descriptor. */
export function writeImage(layout: string, tag: string, spec: ImageSpec): { digest: string; size: number; mediaType: string } {
  fs.mkdirSync(layout, { recursive: true });
  fs.writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const layers = spec.layers.map((l) => ({ mediaType: MEDIA[l.compression], ...putBlob(layout, compress(l.tar, l.compression)) }));
  const diffIds = spec.layers.map((l) => `sha256:${createHash('sha256').update(l.tar).digest('hex')}`);
  const config = {
    architecture: spec.architecture ?? 'amd64',
    os: 'linux',
    config: spec.config ?? {},
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [],
  };
  const cfg = { mediaType: 'application/vnd.oci.image.config.v1+json', ...putBlob(layout, JSON.stringify(config)) };
  const manifest: Record<string, unknown> = { schemaVersion: 2, config: cfg, layers };
  if (!spec.omitMediaType) manifest.mediaType = 'application/vnd.oci.image.manifest.v1+json';
  const m = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...putBlob(layout, JSON.stringify(manifest)) };
  const idxPath = path.join(layout, 'index.json');
  const idx = fs.existsSync(idxPath)
    ? (JSON.parse(fs.readFileSync(idxPath, 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> })
    : { schemaVersion: 2, manifests: [] };
  idx.manifests = idx.manifests.filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] !== tag);
  idx.manifests.push({ ...m, annotations: { 'org.opencontainers.image.ref.name': tag } });
  fs.writeFileSync(idxPath, JSON.stringify(idx));
  return m;
}

/** Path of a blob file in a layout. */
export function blobFile(layout: string, digest: string): string {
  return path.join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
}
