/**
 * Index a tar archive on disk by entry name → (data offset, size), reading
 * only headers (data is seeked over), so oci-archive and docker-archive
 * blobs are streamed straight from the archive file without extracting it.
 * Bounded: at most 1,000,000 entries, extended headers ≤ 1 MiB.
 */
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { OciError, addContext } from '../../errors/index.js';
import { BLOCK, isZeroBlock, padded, parseHeader, parsePax } from '../flatten/tar-header.js';

export interface ArchiveEntry {
  offset: number;
  size: number;
  type: 'file' | 'link' | 'symlink' | 'dir' | 'other';
  linkname: string;
}

const MAX_ENTRIES = 1_000_000;
const MAX_EXT = 1 << 20;

function clean(name: string): string {
  return name
    .split('/')
    .filter((c) => c !== '' && c !== '.')
    .join('/');
}

export class TarArchive {
  private constructor(
    readonly file: string,
    private readonly fh: fs.FileHandle,
    readonly entries: Map<string, ArchiveEntry>,
  ) {}

  static async open(file: string): Promise<TarArchive> {
    const fh = await fs.open(file, 'r').catch((e) => {
      throw addContext(`open archive ${file}`, e);
    });
    try {
      const entries = await indexTar(fh, file);
      return new TarArchive(file, fh, entries);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Find a regular file (following hard/symbolic links inside the archive, bounded). */
  find(name: string): ArchiveEntry | undefined {
    let n = clean(name);
    for (let i = 0; i < 8; i++) {
      const e = this.entries.get(n);
      if (e === undefined) return undefined;
      if (e.type === 'file') return e;
      if (e.type === 'link') n = clean(e.linkname);
      else if (e.type === 'symlink') {
        const base = n.includes('/') ? n.slice(0, n.lastIndexOf('/') + 1) : '';
        n = clean(e.linkname.startsWith('/') ? e.linkname : base + e.linkname);
        // resolve '..' against the directory
        const out: string[] = [];
        for (const c of n.split('/')) {
          if (c === '..') out.pop();
          else out.push(c);
        }
        n = out.join('/');
      } else return undefined;
    }
    return undefined;
  }

  async readWhole(e: ArchiveEntry, max: number, what: string): Promise<Buffer> {
    if (e.size > max) throw new OciError('HPCC_E_OCI_ARCHIVE', `${what} in ${this.file} is ${e.size} bytes (limit ${max})`);
    const buf = Buffer.alloc(e.size);
    const { bytesRead } = await this.fh.read(buf, 0, e.size, e.offset);
    if (bytesRead !== e.size) throw new OciError('HPCC_E_OCI_ARCHIVE', `${this.file} is truncated`);
    return buf;
  }

  stream(e: ArchiveEntry): AsyncIterable<Uint8Array> {
    if (e.size === 0) return (async function* () {})();
    return createReadStream(this.file, { start: e.offset, end: e.offset + e.size - 1, highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>;
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

function archiveError(file: string, msg: string): OciError {
  return new OciError('HPCC_E_OCI_ARCHIVE', `${file}: ${msg}`, { hint: 'The archive is not a valid tar file (corrupt or truncated).' });
}

async function indexTar(fh: fs.FileHandle, file: string): Promise<Map<string, ArchiveEntry>> {
  const { size: fileSize } = await fh.stat();
  const entries = new Map<string, ArchiveEntry>();
  const hdr = Buffer.alloc(BLOCK);
  let pos = 0;
  let longName: string | null = null;
  let longLink: string | null = null;
  let pax: Map<string, Buffer[]> | null = null;
  while (pos + BLOCK <= fileSize) {
    const { bytesRead } = await fh.read(hdr, 0, BLOCK, pos);
    if (bytesRead < BLOCK) throw archiveError(file, 'truncated header');
    if (isZeroBlock(hdr)) break;
    let h;
    try {
      h = parseHeader(hdr);
    } catch (e) {
      throw archiveError(file, (e as Error).message);
    }
    const dataAt = pos + BLOCK;
    const hasData = h.type === 'file' || h.type === 'other' || h.type === 'pax' || h.type === 'paxGlobal' || h.type === 'gnuLongName' || h.type === 'gnuLongLink' || h.type === 'gnuSparse';
    let size = h.size;
    if (pax?.has('size')) size = Number(pax.get('size')!.at(-1)!.toString());
    if (!Number.isSafeInteger(size) || size < 0) throw archiveError(file, 'bad entry size');
    if (hasData && dataAt + size > fileSize) throw archiveError(file, 'truncated entry data');
    if (h.type === 'pax' || h.type === 'paxGlobal' || h.type === 'gnuLongName' || h.type === 'gnuLongLink') {
      if (h.size > MAX_EXT) throw archiveError(file, 'extended header too large');
      const data = Buffer.alloc(h.size);
      await fh.read(data, 0, h.size, dataAt);
      if (h.type === 'pax') pax = parsePax(data);
      else if (h.type === 'gnuLongName') longName = data.toString('utf8').replace(/\0.*$/s, '');
      else if (h.type === 'gnuLongLink') longLink = data.toString('utf8').replace(/\0.*$/s, '');
      pos = dataAt + padded(h.size);
      continue;
    }
    const name = pax?.get('path')?.at(-1)?.toString('utf8') ?? longName ?? h.name;
    const linkname = pax?.get('linkpath')?.at(-1)?.toString('utf8') ?? longLink ?? h.linkname;
    pax = null;
    longName = null;
    longLink = null;
    const type = h.type === 'file' ? 'file' : h.type === 'link' ? 'link' : h.type === 'symlink' ? 'symlink' : h.type === 'dir' ? 'dir' : 'other';
    if (entries.size >= MAX_ENTRIES) throw archiveError(file, `more than ${MAX_ENTRIES} entries`);
    entries.set(clean(name), { offset: dataAt, size: hasData ? size : 0, type, linkname });
    pos = dataAt + (hasData ? padded(size) : 0);
  }
  return entries;
}
