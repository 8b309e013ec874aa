/**
 * Layer decompression, decided by the data's magic bytes (the media type
 * only breaks ties; docker-archive layers have none): gzip with Node's zlib
 * (chunkSize 1 MiB: 1.5× faster than the default, npm-notes §4), zstd and xz
 * by streaming through `zstd -dc` / `xz -dc` child processes (no in-process
 * streaming zstd decoder is available on Node 20), anything else as a plain
 * tar. Errors of the source (digest mismatch) propagate to the consumer.
 */
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CodecError } from '../../errors/index.js';
import { layerCompression } from '../manifest.js';

export type Compression = 'gzip' | 'zstd' | 'xz' | 'none';

/** Compression of a layer from its first bytes. */
export function sniffCompression(head: Uint8Array): Compression | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head.length >= 6 && head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a && head[5] === 0x00) return 'xz';
  if (head.length >= 6) return 'none';
  return undefined;
}

async function* prepend(first: Uint8Array[], it: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* first;
  for (;;) {
    const r = await it.next();
    if (r.done) return;
    yield r.value;
  }
}

async function* throughZlib(src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const input = Readable.from(src, { objectMode: false, highWaterMark: 1 << 20 });
  const gz = createGunzip({ chunkSize: 1 << 20 });
  input.on('error', (e) => gz.destroy(e));
  input.pipe(gz);
  try {
    for await (const c of gz) yield c as Buffer;
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith('Z_')) {
      throw new CodecError('HPCC_E_OCI_DECOMPRESS', `gzip layer: ${(e as Error).message}`, { cause: e, hint: 'The layer is corrupt.' });
    }
    throw e;
  } finally {
    input.destroy();
    gz.destroy();
  }
}

async function* throughTool(src: AsyncIterable<Uint8Array>, tool: 'zstd' | 'xz'): AsyncGenerator<Uint8Array> {
  const child = spawn(tool, ['-dc', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT'
          ? new CodecError('HPCC_E_OCI_DECOMPRESS', `${tool} layers need the ${tool} program, which is not installed`, { hint: `Install ${tool} (Debian: apt-get install ${tool === 'xz' ? 'xz-utils' : 'zstd'}).` })
          : e,
      ),
    );
    child.on('close', (code) => resolve(code));
  });
  exited.catch(() => undefined);
  let feedError: unknown;
  const feed = (async () => {
    try {
      for await (const c of src) {
        if (!child.stdin.write(c)) await new Promise<void>((res) => child.stdin.once('drain', res));
      }
      child.stdin.end();
    } catch (e) {
      feedError = e;
      child.kill('SIGKILL');
    }
  })();
  child.stdin.on('error', () => undefined);
  try {
    for await (const c of child.stdout) yield c as Buffer;
    await feed;
    if (feedError !== undefined) throw feedError;
    const code = await exited;
    if (code !== 0) {
      throw new CodecError('HPCC_E_OCI_DECOMPRESS', `${tool} layer: ${tool} -dc failed (${code}): ${stderr.trim().slice(0, 300)}`, { hint: 'The layer is corrupt.' });
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await feed.catch(() => undefined);
  }
}

/** Decompress a layer's stored bytes into its tar stream. */
export async function* decompressLayer(src: AsyncIterable<Uint8Array>, mediaType: string): AsyncGenerator<Uint8Array> {
  const it = src[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let n = 0;
  let kind: Compression | undefined;
  while (kind === undefined) {
    const r = await it.next();
    if (r.done) break;
    head.push(r.value);
    n += r.value.length;
    kind = sniffCompression(n >= 6 ? Buffer.concat(head, n) : Buffer.concat(head, n));
  }
  if (kind === undefined) {
    // fewer than 6 bytes: empty layers are legal (nothing to apply), anything else cannot be a tar
    if (n === 0) return;
    const k = layerCompression(mediaType);
    kind = k === 'gzip' || k === 'zstd' ? k : 'none';
  }
  const all = prepend(head, it);
  if (kind === 'gzip') yield* throughZlib(all);
  else if (kind === 'zstd' || kind === 'xz') yield* throughTool(all, kind);
  else yield* all;
}
