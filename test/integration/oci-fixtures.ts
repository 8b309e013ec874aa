/**
 * Fixture images for the OCI conversion tests (built at test time, offline).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTar, writeImage, type TarSpec } from '../helpers/oci-layers.js';

export function sh(cmd: string, args: string[], opts: { input?: Buffer } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...(opts.input ? { input: opts.input } : {}) });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const D = (name: string, extra: Partial<TarSpec> = {}): TarSpec => ({ name, type: '5', ...extra });
const F = (name: string, data: string | Buffer, extra: Partial<TarSpec> = {}): TarSpec => ({ name, type: '0', data, ...extra });

/**
 * Five layers covering every whiteout, link and replacement case:
 *  1 (gzip)  base tree: files, dirs, symlink, hard-link source, devices, fifo,
 *            setuid file, owners, xattrs (text and binary, pax), long names (pax and GNU)
 *  2 (gzip)  .wh. of a file and of a dir, opaque dir with new content, file→dir,
 *            dir→file, hard links into layer 1, symlink replaced by a file,
 *            dir metadata update that keeps lower content
 *  3 (gzip or zstd)  delete a hard-link target (the link keeps the data), dir→file back,
 *            whiteout of a name the same layer adds, opaque on a dir whose new
 *            child comes first in the same layer
 *  4 (none)  uncompressed; a parent path through a symlinked dir; ./ and // in names
 */
export function whiteoutLayers(): TarSpec[][] {
  const bin = Buffer.from([0x00, 0xff, 0x01, 0x80, 0x7f]);
  const long = 'deep/' + 'x'.repeat(120) + '/file-with-a-long-name';
  const gnuLong = 'gnu/' + 'y'.repeat(130);
  const l1: TarSpec[] = [
    D('./', { mode: 0o755 }),
    D('etc/'),
    F('etc/keep', 'keep\n'),
    F('etc/del', 'delete me\n'),
    D('dir/'),
    F('dir/a', 'a\n'),
    D('dir/sub/'),
    F('dir/sub/b', 'b\n'),
    D('opq/', { mode: 0o750, uid: 10, gid: 20 }),
    F('opq/x', 'x\n'),
    D('opq/sub/'),
    F('opq/sub/y', 'y\n'),
    F('f2d', 'was a file\n'),
    D('d2f/'),
    F('d2f/z', 'z\n'),
    F('link-src', 'shared inode\n', { uid: 1234, gid: 5678, mode: 0o640 }),
    F('victim', 'victim data\n'),
    { name: 'sym', type: '2', linkname: 'etc/keep', mode: 0o777 },
    D('dev/'),
    { name: 'dev/null', type: '3', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'dev/sda', type: '4', devmajor: 8, devminor: 0, mode: 0o660, gid: 6 },
    { name: 'dev/pipe', type: '6', mode: 0o600 },
    F('suid', '#!/bin/sh\n', { mode: 0o4755 }),
    F('sticky-dir-file', 'q', { mode: 0o1644 }),
    F('xattrs', 'with xattrs\n', { pax: { 'SCHILY.xattr.user.text': 'hello', 'SCHILY.xattr.user.bin': bin } }),
    F('big-uid', 'uid\n', { pax: { uid: '3000000', gid: '3000001' } }),
    D('deep/'),
    D('deep/' + 'x'.repeat(120) + '/'),
    F(long, 'long pax name\n'),
    D('gnu/'),
    F(gnuLong, 'long gnu name\n', { gnuLongName: true }),
    D('real/'),
    F('real/r', 'r\n'),
    { name: 'via', type: '2', linkname: 'real', mode: 0o777 },
  ];
  const l2: TarSpec[] = [
    F('etc/.wh.del', ''),
    F('.wh.dir', ''),
    D('opq/', { mode: 0o750, uid: 10, gid: 20 }),
    F('opq/.wh..wh..opq', ''),
    F('opq/new', 'new\n'),
    D('f2d/'),
    F('f2d/inner', 'inner\n'),
    F('d2f', 'now a file\n'),
    { name: 'hl', type: '1', linkname: 'link-src' },
    { name: 'hl-victim', type: '1', linkname: 'victim' },
    F('sym', 'symlink replaced by a file\n'),
    D('etc/', { mode: 0o700, uid: 7 }),
    F('etc/added', 'added\n'),
  ];
  const l3: TarSpec[] = [
    F('.wh.victim', ''),
    F('f2d', 'file again\n'),
    F('same-layer', 'kept\n'),
    F('.wh.same-layer', ''),
    D('etc/'),
    F('etc/third', '3\n'),
    F('etc/.wh..wh..opq', ''),
  ];
  const l4: TarSpec[] = [
    F('via/through-link', 'written through a symlinked parent\n'),
    F('.//etc//fourth', '4\n'),
    F('/abs-name', 'absolute names are made relative\n'),
  ];
  return [l1, l2, l3, l4];
}

/** Write the whiteout image into `layout` as `tag` (layer 3 zstd when asked; umoci 0.4 cannot read zstd). */
export function writeWhiteoutImage(layout: string, tag: string, zstd = false): void {
  const [l1, l2, l3, l4] = whiteoutLayers();
  writeImage(layout, tag, {
    layers: [
      { tar: makeTar(l1!), compression: 'gzip' },
      { tar: makeTar(l2!), compression: 'gzip' },
      { tar: makeTar(l3!), compression: zstd ? 'zstd' : 'gzip' },
      { tar: makeTar(l4!), compression: 'none' },
    ],
    config: { Entrypoint: ['/bin/echo', "it's"], Cmd: ['a b', '$HOME'], Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'LANG=C.UTF-8', 'Q=say "hi" `x` $y \\z'], Labels: { b: '2', a: '1' } },
    omitMediaType: true,
  });
}

/** A small rootfs tree with a static busybox and a few applets (no network). */
export function makeBusyboxTree(dir: string): string {
  const root = path.join(dir, 'bbroot');
  for (const d of ['bin', 'etc', 'tmp', 'home/user']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
  fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'ls', 'cat', 'echo', 'env']) fs.symlinkSync('busybox', path.join(root, 'bin', a));
  fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n');
  fs.linkSync(path.join(root, 'etc', 'passwd'), path.join(root, 'etc', 'passwd.hl'));
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.chownSync(path.join(root, 'home/user'), 1000, 1000);
  sh('setfattr', ['-n', 'user.note', '-v', 'busybox tree', path.join(root, 'etc', 'passwd')]);
  return root;
}

/** A second tree for a two-layer umoci image: overwrites and deletes through umoci's own diff. */
export function makeSecondTree(base: string, dir: string): string {
  const t = path.join(dir, 'bbroot2');
  sh('cp', ['-a', base, t]);
  fs.rmSync(path.join(t, 'bin', 'ls'));
  fs.writeFileSync(path.join(t, 'etc', 'motd'), 'layer two\n');
  fs.rmSync(path.join(t, 'home', 'user'), { recursive: true });
  fs.mkdirSync(path.join(t, 'home', 'other'));
  fs.writeFileSync(path.join(t, 'home', 'other', 'hello'), 'opaque home\n');
  return t;
}
