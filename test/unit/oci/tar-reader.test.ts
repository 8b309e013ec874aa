import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HpccError, OciError } from '../../../src/errors/index.js';
import { decompressLayer, sniffCompression } from '../../../src/oci/flatten/decompress.js';
import { parseNumber, parsePax } from '../../../src/oci/flatten/tar-header.js';
import { readTar, type TarEntry } from '../../../src/oci/flatten/tar-reader.js';
import { makeTempDir, removeTree, requireTools } from '../../helpers/env.js';
import { compress, makeTar } from '../../helpers/oci-layers.js';

async function* chunked(b: Buffer, size: number) {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function list(src: AsyncIterable<Uint8Array>): Promise<Array<TarEntry & { sha: string }>> {
  const out: Array<TarEntry & { sha: string }> = [];
  for await (const { entry, body } of readTar(src)) {
    const h = createHash('sha256');
    for await (const c of body) h.update(c);
    out.push({ ...entry, sha: h.digest('hex') });
  }
  return out;
}

async function errCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(HpccError);
    return (e as HpccError).code;
  }
  return 'no error';
}

describe('oci/flatten tar reader', () => {
  it('reads ustar, pax (binary xattr values, big ids, long names) and GNU long names, in any chunking', async () => {
    const bin = Buffer.from([0, 0xff, 0x80, 0x0a, 0x3d]);
    const long = 'd/' + 'n'.repeat(200);
    const tar = makeTar([
      { name: 'dir/', type: '5', mode: 0o1777, uid: 5, gid: 6, mtime: 123 },
      { name: 'dir/f', data: 'hello', mode: 0o4755 },
      { name: 'x', data: 'x', pax: { 'SCHILY.xattr.user.bin': bin, 'SCHILY.xattr.security.capability': bin, uid: '4000000', mtime: '1700000000.5' } },
      { name: long, data: 'long' },
      { name: 'g/' + 'y'.repeat(150), data: 'gnu', gnuLongName: true },
      { name: 'hl', type: '1', linkname: 'dir/f' },
      { name: 'sl', type: '2', linkname: 't'.repeat(150) },
      { name: 'c', type: '3', devmajor: 4095, devminor: 1048575 },
      { name: 'p', type: '6' },
    ]);
    for (const size of [1, 7, 512, 100000]) {
      const es = await list(chunked(tar, size));
      expect(es.map((e) => `${e.path}:${e.kind}`)).to.deep.equal([
        'dir/:dir',
        'dir/f:file',
        'x:file',
        `${long}:file`,
        `g/${'y'.repeat(150)}:file`,
        'hl:link',
        'sl:symlink',
        'c:char',
        'p:fifo',
      ]);
      expect(es[0]).to.include({ mode: 0o1777, uid: 5, gid: 6, mtime: 123 });
      expect(es[1]!.mode).to.equal(0o4755);
      expect(es[1]!.sha).to.equal(createHash('sha256').update('hello').digest('hex'));
      expect(es[2]!.uid).to.equal(4000000);
      expect(es[2]!.mtime).to.equal(1700000000);
      expect(Buffer.from(es[2]!.xattrs.get('user.bin')!)).to.deep.equal(bin);
      expect(es[5]!.linkname).to.equal('dir/f');
      expect(es[6]!.linkname).to.equal('t'.repeat(150));
      expect(es[7]).to.include({ devmajor: 4095, devminor: 1048575 });
    }
  });

  it('parses base-256 numbers and pax records', () => {
    const b = Buffer.alloc(12);
    b[0] = 0x80;
    b.writeUIntBE(5_000_000_000, 6, 6);
    expect(parseNumber(b, 0, 12, 'size')).to.equal(5_000_000_000);
    const m = parsePax(Buffer.from('12 path=abc\n20 SCHILY.xattr.a=b\n'));
    expect(m.get('path')![0]!.toString()).to.equal('abc');
    expect(() => parsePax(Buffer.from('99 path=abc\n'))).to.throw(/bad pax record/);
  });

  it('refuses bad checksums, truncated data, oversize extended headers, bad octal', async () => {
    const tar = makeTar([{ name: 'f', data: 'x'.repeat(1000) }]);
    const badSum = Buffer.from(tar);
    badSum[0] = 0x41;
    expect(await errCode(list(chunked(badSum, 512)))).to.equal('HPCC_E_OCI_TAR');
    expect(await errCode(list(chunked(tar.subarray(0, 700), 512)))).to.equal('HPCC_E_OCI_TAR');
    const huge = makeTar([{ name: 'f', data: 'x', pax: { comment: Buffer.alloc(2 << 20, 0x61) } }]);
    expect(await errCode(list(chunked(huge, 65536)))).to.equal('HPCC_E_OCI_TAR');
    const badOctal = Buffer.from(tar);
    badOctal.write('9', 124, 'latin1');
    let sum = 0;
    badOctal.fill(0x20, 148, 156);
    for (let i = 0; i < 512; i++) sum += badOctal[i]!;
    badOctal.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
    expect(await errCode(list(chunked(badOctal, 512)))).to.equal('HPCC_E_OCI_TAR');
  });

  it('clamps times before 1970 to 0 (GNU base-256 and pax mtime=-N), as tar2sqfs does, and reports each', async () => {
    const tar = makeTar([
      { name: 'gnu', data: 'a', mtime: -315622800 },
      { name: 'pax', data: 'b', pax: { mtime: '-315622800' } },
      { name: 'paxfrac', data: 'c', pax: { mtime: '-1.5' } },
      { name: 'huge', data: 'd', mtime: -(2 ** 60) },
      { name: 'ok', data: 'e', mtime: 5 },
    ]);
    const seen: Array<[string, number]> = [];
    const es: TarEntry[] = [];
    for await (const { entry, body } of readTar(chunked(tar, 333), { onNegativeMtime: (p, m) => seen.push([p, m]) })) {
      for await (const _ of body) void _;
      es.push(entry);
    }
    expect(es.map((e) => [e.path, e.mtime])).to.deep.equal([['gnu', 0], ['pax', 0], ['paxfrac', 0], ['huge', 0], ['ok', 5]]);
    expect(seen).to.deep.equal([['gnu', -315622800], ['pax', -315622800], ['paxfrac', -2], ['huge', -Number.MAX_SAFE_INTEGER]]);
    // other numeric fields stay unsigned
    const negUid = makeTar([{ name: 'u', data: 'x', pax: { uid: '-1' } }]);
    expect(await errCode(list(chunked(negUid, 512)))).to.equal('HPCC_E_OCI_TAR');
    const b = Buffer.alloc(8, 0xff);
    expect(() => parseNumber(b, 0, 8, 'uid')).to.throw(/negative uid/);
    expect(parseNumber(b, 0, 8, 'mtime', true)).to.equal(-1);
  });

  it('reads pre-1970 files archived by GNU tar in gnu and posix formats', async function () {
    requireTools(this, 'tar', 'touch');
    const dir = makeTempDir('hpcc-negtime-');
    try {
      fs.writeFileSync(path.join(dir, 'old'), 'old\n');
      expect(spawnSync('touch', ['-d', '@-315622800', path.join(dir, 'old')]).status).to.equal(0);
      expect(fs.statSync(path.join(dir, 'old')).mtimeMs).to.equal(-315622800_000);
      for (const format of ['gnu', 'posix']) {
        const r = spawnSync('tar', [`--format=${format}`, '-C', dir, '-cf', '-', 'old']);
        expect(r.status, String(r.stderr)).to.equal(0);
        const es = await list(chunked(r.stdout, 512));
        expect(es.map((e) => [e.path, e.mtime, e.size])).to.deep.equal([['old', 0, 4]]);
      }
    } finally {
      removeTree(dir);
    }
  });

  it('skips bodies the consumer leaves unread, and accepts a missing end marker and final padding', async () => {
    const tar = makeTar([{ name: 'a', data: 'a'.repeat(3000) }, { name: 'b', data: 'bb' }]);
    const names: string[] = [];
    for await (const { entry } of readTar(chunked(tar, 100))) names.push(entry.path);
    expect(names).to.deep.equal(['a', 'b']);
    const cut = tar.subarray(0, 512 * 8 + 2); // b's data without padding or end blocks
    expect((await list(chunked(cut, 512))).map((e) => e.path)).to.deep.equal(['a', 'b']);
  });

  describe('sparse files made by GNU tar', () => {
    let dir = '';
    before(function () {
      requireTools(this, 'tar', 'truncate');
      dir = makeTempDir('hpcc-sparse-');
      const f = path.join(dir, 's');
      spawnSync('truncate', ['-s', '5M', f]);
      const fd = fs.openSync(f, 'r+');
      fs.writeSync(fd, Buffer.from('middle'), 0, 6, 2_000_000);
      fs.writeSync(fd, Buffer.from('end'), 0, 3, 5 * 1024 * 1024 - 3);
      fs.closeSync(fd);
    });
    after(() => {
      if (dir) removeTree(dir);
    });
    for (const args of [['--format=gnu'], ['--format=posix'], ['--format=posix', '--sparse-version=0.1'], ['--format=posix', '--sparse-version=0.0']]) {
      it(`reads ${args.join(' ')}`, async () => {
        const r = spawnSync('tar', ['--sparse', ...args, '-C', dir, '-cf', '-', 's'], { maxBuffer: 1 << 26 });
        expect(r.status).to.equal(0);
        expect(r.stdout.length).to.be.below(100_000);
        const es = await list(chunked(r.stdout, 4096));
        expect(es).to.have.length(1);
        expect(es[0]!.path).to.equal('s');
        expect(es[0]!.sparse).to.equal(true);
        expect(es[0]!.size).to.equal(5 * 1024 * 1024);
        expect(es[0]!.sha).to.equal(createHash('sha256').update(fs.readFileSync(path.join(dir, 's'))).digest('hex'));
      });
    }
  });

  it('decompresses gzip, zstd and plain layers by their magic bytes', async function () {
    requireTools(this, 'zstd');
    const tar = makeTar([{ name: 'f', data: 'content' }]);
    expect(sniffCompression(compress(tar, 'gzip'))).to.equal('gzip');
    expect(sniffCompression(compress(tar, 'zstd'))).to.equal('zstd');
    expect(sniffCompression(tar)).to.equal('none');
    for (const c of ['gzip', 'zstd', 'none'] as const) {
      const es = await list(decompressLayer(chunked(compress(tar, c), 3), 'application/octet-stream'));
      expect(es.map((e) => e.path)).to.deep.equal(['f']);
    }
    const broken = Buffer.from(compress(tar, 'zstd'));
    broken[broken.length - 5]! ^= 0xff;
    expect(await errCode(list(decompressLayer(chunked(broken, 1000), '')))).to.match(/HPCC_E_OCI_(DECOMPRESS|TAR)/);
    const gz = Buffer.from(compress(tar, 'gzip'));
    gz[gz.length - 6]! ^= 0xff; // CRC
    let err: unknown;
    try {
      await list(decompressLayer(chunked(gz, 1000), ''));
    } catch (e) {
      err = e;
    }
    expect((err as OciError).code).to.equal('HPCC_E_OCI_DECOMPRESS');
  });
});
