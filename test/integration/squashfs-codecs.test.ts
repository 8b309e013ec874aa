/**
 * Codecs against the real tools and the kernel:
 * - blocks from our zstd and xz encoders decode with `zstd -d` / `xz -d`
 *   (and `xz --robot -lvv` confirms CRC32 and the dictionary size);
 * - an image per codec written by SquashfsWriter extracts byte-identically
 *   with `unsquashfs`, and (as root) loop-mounts: the kernel accepts our xz
 *   dictionary, zstd window and lz4 options block;
 * - mksquashfs images of every codec, including lzma and xz with BCJ
 *   filters, read back through our decoders (the reader test covers layouts).
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { GzipEngine } from '../../src/formats/squashfs/codecs/gzip.js';
import { CODEC_IDS, createDecoder, createEncoder, type CodecName } from '../../src/formats/squashfs/codecs/index.js';
import { libdeflateLoadError, loadLibdeflate } from '../../src/formats/squashfs/codecs/libdeflate.js';
import { decodeSuperblock } from '../../src/formats/squashfs/layout.js';
import { SquashfsReader } from '../../src/formats/squashfs/reader/reader.js';
import { SquashfsWriter } from '../../src/formats/squashfs/writer/writer.js';
import { IN_CI, IS_ROOT, makeTempDir, removeTree, requireRoot, requireTools } from '../helpers/env.js';

const T = 1_700_000_000;
const meta = { mode: 0o644, uid: 0, gid: 0, mtime: T };

/** A small tree: text, binary (x86 code, so BCJ filters apply), zeros, sizes around block multiples. */
function sourceFiles(): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const text = Buffer.from(Array.from({ length: 12000 }, (_, i) => `${i} squashfs codec test line ${i % 13}\n`).join(''));
  files.set('text.txt', text);
  // x86 machine code (the node binary's text section), so mksquashfs -Xbcj x86 picks the BCJ filter
  files.set('bin/node-part', fs.readFileSync(process.execPath).subarray(20 << 20, (20 << 20) + 700_000));
  files.set('zeros', new Uint8Array(300_000));
  files.set('sub/exact', text.subarray(0, 131072));
  files.set('sub/tiny', Buffer.from('tiny\n'));
  files.set('sub/block-plus-one', text.subarray(0, 65537));
  return files;
}

function sh(cmd: string, args: string[], input?: Uint8Array): Buffer {
  return execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
}

describe('squashfs codecs with the real tools', function () {
  this.timeout(180_000);
  let dir: string;
  const files = sourceFiles();

  before(() => {
    dir = makeTempDir('hpcc-codecs-');
    for (const [p, d] of files) {
      fs.mkdirSync(path.join(dir, 'src', path.dirname(p)), { recursive: true });
      fs.writeFileSync(path.join(dir, 'src', p), d);
    }
  });
  after(() => removeTree(dir));

  it('zstd blocks decode with `zstd -d` and declare a window within the block', async function () {
    requireTools(this, 'zstd');
    for (const blockSize of [4096, 131072, 1048576]) {
      const enc = await createEncoder('zstd', { blockSize, level: 19 });
      const input = files.get('bin/node-part')!.subarray(0, blockSize);
      const frame = await enc.compress(input);
      expect(sh('zstd', ['-d', '-c'], frame).equals(Buffer.from(input))).to.equal(true);
      fs.writeFileSync(path.join(dir, 'b.zst'), frame);
      const info = spawnSync('zstd', ['-lv', path.join(dir, 'b.zst')], { encoding: 'utf8' });
      const m = /Window Size:.*\((\d+) B\)/.exec(info.stdout + info.stderr);
      expect(m, info.stdout + info.stderr).to.not.equal(null);
      expect(Number(m![1])).to.be.at.most(Math.max(blockSize, 8192));
    }
  });

  it('xz blocks decode with `xz -d`, with a CRC32 check and dictionary max(block, 8 KiB)', async function () {
    requireTools(this, 'xz');
    for (const blockSize of [4096, 131072]) {
      const enc = await createEncoder('xz', { blockSize });
      const input = files.get('text.txt')!.subarray(0, blockSize);
      const stream = await enc.compress(input);
      expect(sh('xz', ['-d', '-c'], stream).equals(Buffer.from(input))).to.equal(true);
      fs.writeFileSync(path.join(dir, 'b.xz'), stream);
      const robot = sh('xz', ['--robot', '-lvv', path.join(dir, 'b.xz')]).toString();
      expect(robot).to.match(/\tCRC32\t/);
      const dict = /--lzma2=dict=(\d+)(KiB|MiB)?/.exec(robot);
      const bytes = Number(dict![1]) * (dict![2] === 'MiB' ? 1 << 20 : dict![2] === 'KiB' ? 1024 : 1);
      expect(bytes).to.equal(Math.max(blockSize, 8192));
    }
  });

  // gzip: both engines (libdeflate, the default when its addon is built, and Node's zlib)
  const writeCases: Array<{ codec: CodecName; level?: number; blockSize: number; engine?: GzipEngine }> = [
    { codec: 'gzip', blockSize: 65536, engine: 'libdeflate' },
    { codec: 'gzip', level: 9, blockSize: 131072, engine: 'libdeflate' },
    { codec: 'gzip', blockSize: 65536, engine: 'zlib' },
    { codec: 'zstd', blockSize: 65536 },
    { codec: 'zstd', level: 19, blockSize: 4096 },
    { codec: 'xz', blockSize: 131072 },
    { codec: 'xz', level: 1, blockSize: 4096 },
    { codec: 'lz4', blockSize: 65536 },
  ];
  for (const c of writeCases) {
    const label = `${c.codec}${c.engine ? ` (${c.engine})` : ''}${c.level !== undefined ? ` level ${c.level}` : ''} block ${c.blockSize}`;
    const tag = `${c.codec}-${c.engine ?? ''}${c.level ?? ''}-${c.blockSize}`;
    it(`an image written with ${label} extracts with unsquashfs and mounts in the kernel`, async function () {
      requireTools(this, 'unsquashfs');
      if (c.engine === 'libdeflate' && !loadLibdeflate()) {
        if (IN_CI) throw new Error(`libdeflate addon missing in CI: ${String(libdeflateLoadError())}`);
        this.skip();
      }
      const img = path.join(dir, `w-${tag}.sqfs`);
      const fh = await open(img, 'w+');
      const savedEngine = process.env.HPCC_GZIP_ENGINE;
      if (c.engine) process.env.HPCC_GZIP_ENGINE = c.engine;
      try {
        const w = await SquashfsWriter.create({
          handle: fh,
          compressor: c.codec,
          blockSize: c.blockSize,
          deterministic: true,
          ...(c.level !== undefined ? { level: c.level } : {}),
        });
        w.addDirectory('/', { ...meta, mode: 0o755 });
        for (const [p, d] of files) await w.addFile(p, meta, d);
        await w.finish();
      } finally {
        if (savedEngine === undefined) delete process.env.HPCC_GZIP_ENGINE;
        else process.env.HPCC_GZIP_ENGINE = savedEngine;
        await fh.close();
      }
      const sb = decodeSuperblock(fs.readFileSync(img).subarray(0, 96));
      expect(sb.compressor).to.equal(CODEC_IDS[c.codec]);
      const stat = sh('unsquashfs', ['-s', img]).toString();
      expect(stat).to.include(`Compression ${c.codec}`);
      const out = path.join(dir, `x-${tag}`);
      sh('unsquashfs', ['-d', out, '-no-progress', img]);
      for (const [p, d] of files) expect(fs.readFileSync(path.join(out, p)).equals(Buffer.from(d)), p).to.equal(true);
      removeTree(out);
      if (!IS_ROOT) return; // the kernel check needs root (requireRoot fails it in CI)
      const mnt = path.join(dir, `m-${tag}`);
      fs.mkdirSync(mnt);
      sh('mount', ['-t', 'squashfs', '-o', 'loop,ro', img, mnt]);
      try {
        for (const [p, d] of files) expect(fs.readFileSync(path.join(mnt, p)).equals(Buffer.from(d)), `kernel ${p}`).to.equal(true);
      } finally {
        spawnSync('umount', [mnt]);
        fs.rmdirSync(mnt);
      }
    });
  }

  it('the kernel mount check runs as root', function () {
    requireRoot(this);
    expect(IS_ROOT).to.equal(true);
  });

  const readCases: Array<{ codec: CodecName; args: string[] }> = [
    { codec: 'lzma', args: [] },
    { codec: 'lzo', args: ['-Xalgorithm', 'lzo1x_999', '-Xcompression-level', '9'] },
    { codec: 'xz', args: ['-Xdict-size', '64K', '-Xbcj', 'x86,arm'] },
  ];
  for (const c of readCases) {
    it(`reads a mksquashfs ${c.codec} ${c.args.join(' ')} image through our decoder`, async function () {
      requireTools(this, 'mksquashfs');
      const img = path.join(dir, `r-${c.codec}.sqfs`);
      sh('mksquashfs', [path.join(dir, 'src'), img, '-noappend', '-quiet', '-no-progress', '-comp', c.codec, ...c.args]);
      const bytes = fs.readFileSync(img);
      if (c.codec === 'xz') {
        // at least one block chose a BCJ filter (x86 = 0x04, arm = 0x07) before LZMA2
        let bcj = 0;
        for (let i = bytes.indexOf('fd377a585a00', 0, 'hex'); i >= 0; i = bytes.indexOf('fd377a585a00', i + 6, 'hex')) {
          // block header: size, flags (0x40 compressed size, 0x80 uncompressed size follow as varints), filter id
          let q = i + 12 + 2;
          const flags = bytes[i + 12 + 1]!;
          for (const bit of [0x40, 0x80]) if (flags & bit) while (bytes[q++]! & 0x80);
          const filterId = bytes[q];
          if (filterId === 0x04 || filterId === 0x07) bcj++;
        }
        expect(bcj, 'blocks with a BCJ filter').to.be.above(0);
      }
      const r = await SquashfsReader.fromBuffer(bytes);
      try {
        expect(r.compressor).to.equal(c.codec);
        for (const [p, d] of files) expect((await r.readFile('/' + p)).equals(Buffer.from(d)), p).to.equal(true);
      } finally {
        await r.close();
      }
    });
  }

  it('decodes every metadata block of a mksquashfs lz4 -Xhc image at block level', async function () {
    requireTools(this, 'mksquashfs');
    const img = path.join(dir, 'r-lz4hc.sqfs');
    sh('mksquashfs', [path.join(dir, 'src'), img, '-noappend', '-quiet', '-no-progress', '-comp', 'lz4', '-Xhc']);
    const bytes = fs.readFileSync(img);
    const sb = decodeSuperblock(bytes.subarray(0, 96));
    const opts = bytes.subarray(98, 98 + (bytes.readUInt16LE(96) & 0x7fff));
    expect([...opts]).to.deep.equal([1, 0, 0, 0, 1, 0, 0, 0]);
    const dec = await createDecoder(sb.compressor, opts, sb.blockSize);
    let pos = sb.inodeTableStart;
    let blocks = 0;
    while (pos < sb.idTableStart && pos < sb.fragmentTableStart) {
      const hdr = bytes.readUInt16LE(pos);
      const len = hdr & 0x7fff;
      const payload = bytes.subarray(pos + 2, pos + 2 + len);
      const out = hdr & 0x8000 ? payload : dec.decompress(payload, 8192);
      expect(out.length).to.be.within(1, 8192);
      pos += 2 + len;
      blocks++;
    }
    expect(blocks).to.be.above(1);
  });
});
