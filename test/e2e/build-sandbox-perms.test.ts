/**
 * `hpcc build --sandbox` must not hand the caller's identity to other local
 * users: as a non-root user the setuid/setgid bits and group/other write
 * bits of the image are dropped (every entry belongs to the caller, so they
 * would only let others run files as the caller or write into the caller's
 * tree); as root the image is copied exactly. Extended attributes come back
 * by default (user.* as a user, every namespace as root), and --no-xattrs
 * skips them. The image is built as root (setuid-root files, a 0777 root,
 * trusted.* attributes); the attack runs as the unprivileged test user.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  HPCC_BIN,
  makeTempDir,
  removeTree,
  requireRoot,
  requireTestUser,
  requireTools,
  runHpcc,
  runUnprivileged,
  testUserIds,
} from '../helpers/env.js';

/** name → value of every xattr on `p` (symlinks not followed), read with getfattr. */
function xattrsOf(p: string): Record<string, string> {
  const r = spawnSync('getfattr', ['--absolute-names', '-h', '-d', '-m', '-', '-e', 'text', p], { encoding: 'utf8' });
  expect(r.status, r.stderr).to.equal(0);
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^([^#=][^=]*)="(.*)"$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** name → hex value of every xattr on `p`: binary values compared byte for byte. */
function xattrsHex(p: string): Record<string, string> {
  const r = spawnSync('getfattr', ['--absolute-names', '-h', '-d', '-m', '-', '-e', 'hex', p], { encoding: 'utf8' });
  expect(r.status, r.stderr).to.equal(0);
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

// vfs_cap_data v2 (CAP_NET_RAW permitted + effective) and a value that is not UTF-8.
const CAP_HEX = '0100000200200000000000000000000000000000';
const BIN_HEX = '00ff80fe0a3d';

/** Every path under `root` (root included) with its lstat, symlinks not followed. */
function walk(root: string): Array<[string, fs.Stats]> {
  const out: Array<[string, fs.Stats]> = [[root, fs.lstatSync(root)]];
  for (const name of fs.readdirSync(root, { recursive: true }) as string[]) {
    const p = path.join(root, name);
    out.push([p, fs.lstatSync(p)]);
  }
  return out;
}

const mode = (p: string) => fs.lstatSync(p).mode & 0o7777;

describe('e2e: build --sandbox permissions and xattrs', function () {
  this.timeout(120_000);
  let tmp: string;
  let sif: string;
  let userDir: string;

  before(function () {
    requireRoot(this);
    requireTestUser(this);
    requireTools(this, 'setfattr', 'getfattr');
    tmp = makeTempDir('hpcc-sbx-');
    const tree = path.join(tmp, 'tree');
    for (const d of ['bin', 'pub', 'tmp', 'ro', 'sgdir']) fs.mkdirSync(path.join(tree, d), { recursive: true });
    fs.writeFileSync(path.join(tree, 'bin/suid'), '#!/bin/sh\nid\n');
    fs.chmodSync(path.join(tree, 'bin/suid'), 0o4755);
    fs.writeFileSync(path.join(tree, 'bin/sgid'), '#!/bin/sh\nid\n');
    fs.chmodSync(path.join(tree, 'bin/sgid'), 0o2755);
    fs.writeFileSync(path.join(tree, 'bin/both'), '#!/bin/sh\nid\n');
    fs.chmodSync(path.join(tree, 'bin/both'), 0o6711);
    fs.writeFileSync(path.join(tree, 'pub/gw'), 'anyone may write\n');
    fs.chmodSync(path.join(tree, 'pub/gw'), 0o666);
    fs.writeFileSync(path.join(tree, 'ro/f'), 'read only\n');
    execFileSync('setfattr', ['-n', 'user.test', '-v', 'hello', path.join(tree, 'ro/f')]);
    execFileSync('setfattr', ['-n', 'trusted.test', '-v', 'secret', path.join(tree, 'ro/f')]);
    execFileSync('setfattr', ['-n', 'user.dir', '-v', 'd', path.join(tree, 'pub')]);
    fs.writeFileSync(path.join(tree, 'bin/cap'), '#!/bin/sh\n');
    fs.chmodSync(path.join(tree, 'bin/cap'), 0o755);
    execFileSync('setfattr', ['-n', 'security.capability', '-v', `0x${CAP_HEX}`, path.join(tree, 'bin/cap')]);
    execFileSync('setfattr', ['-n', 'trusted.bin', '-v', `0x${BIN_HEX}`, path.join(tree, 'bin/cap')]);
    execFileSync('setfattr', ['-n', 'user.bin', '-v', `0x${BIN_HEX}`, path.join(tree, 'bin/cap')]);
    fs.chmodSync(path.join(tree, 'ro/f'), 0o444); // a user.* attribute needs write access: restored before the mode
    fs.chmodSync(path.join(tree, 'pub'), 0o777);
    fs.chmodSync(path.join(tree, 'tmp'), 0o1777);
    fs.chmodSync(path.join(tree, 'sgdir'), 0o2775);
    fs.chmodSync(tree, 0o777);
    sif = path.join(tmp, 'img.sif');
    const r = runHpcc(['build', sif, tree]);
    expect(r.status, r.stderr).to.equal(0);
    // A directory the test user may create sandboxes in.
    userDir = path.join(tmp, 'user');
    fs.mkdirSync(userDir);
    const { uid, gid } = testUserIds();
    fs.chownSync(userDir, uid, gid);
  });
  after(() => {
    if (tmp) removeTree(tmp);
  });

  const asUser = (...args: string[]) => runUnprivileged(process.execPath, [HPCC_BIN, 'build', ...args]);

  it('as a user: no setuid/setgid bit, nothing group/world-writable, the root 0755 at most', () => {
    const out = path.join(userDir, 'sbx');
    const r = asUser('--sandbox', out, sif);
    expect(r.status, r.stderr).to.equal(0);
    const entries = walk(out).filter(([, st]) => !st.isSymbolicLink());
    for (const [p, st] of entries) expect(st.mode & 0o6000, `${p} keeps a set-id bit`).to.equal(0);
    for (const [p, st] of entries) expect(st.mode & 0o022, `${p} is group/world-writable`).to.equal(0);
    expect(mode(out)).to.equal(0o755);
    expect(mode(path.join(out, 'bin/suid'))).to.equal(0o755);
    expect(mode(path.join(out, 'bin/sgid'))).to.equal(0o755);
    expect(mode(path.join(out, 'bin/both'))).to.equal(0o711);
    expect(mode(path.join(out, 'pub'))).to.equal(0o755);
    expect(mode(path.join(out, 'pub/gw'))).to.equal(0o644);
    expect(mode(path.join(out, 'tmp'))).to.equal(0o1755); // sticky kept, but nobody else may create names
    expect(mode(path.join(out, 'sgdir'))).to.equal(0o755);
    expect(mode(path.join(out, 'ro/f'))).to.equal(0o444);
    // Another user cannot plant a file in the tree.
    const plant = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', '--', 'touch', path.join(out, 'pub/planted')]);
    expect(plant.status).to.not.equal(0);
    expect(fs.existsSync(path.join(out, 'pub/planted'))).to.equal(false);
  });

  it('as a user: user.* attributes restored by default, trusted.* skipped silently', () => {
    const out = path.join(userDir, 'sbx-x');
    const r = asUser('--sandbox', out, sif);
    expect(r.status, r.stderr).to.equal(0);
    expect(xattrsOf(path.join(out, 'ro/f'))).to.deep.equal({ 'user.test': 'hello' });
    expect(xattrsOf(path.join(out, 'pub'))).to.deep.equal({ 'user.dir': 'd' });
    expect(r.stderr).to.not.match(/warning/i);
    expect(r.stderr).to.not.contain('xattrs: true');
  });

  it('binary values in every namespace survive build and --sandbox byte for byte (security.*, trusted.* as root; user.* as the user)', () => {
    const rootOut = path.join(tmp, 'root-sbx-bin');
    const r = runHpcc(['build', '--sandbox', rootOut, sif]);
    expect(r.status, r.stderr).to.equal(0);
    expect(xattrsHex(path.join(rootOut, 'bin/cap'))).to.deep.equal({ 'security.capability': CAP_HEX, 'trusted.bin': BIN_HEX, 'user.bin': BIN_HEX });
    const userOut = path.join(userDir, 'sbx-bin');
    const u = asUser('--sandbox', userOut, sif);
    expect(u.status, u.stderr).to.equal(0);
    expect(xattrsHex(path.join(userOut, 'bin/cap'))).to.deep.equal({ 'user.bin': BIN_HEX });
    expect(u.stderr).to.not.match(/warning/i);
  });

  it('as a user: --no-xattrs restores none and says nothing about them', () => {
    const out = path.join(userDir, 'sbx-nox');
    const r = asUser('--no-xattrs', '--sandbox', out, sif);
    expect(r.status, r.stderr).to.equal(0);
    expect(xattrsOf(path.join(out, 'ro/f'))).to.deep.equal({});
    expect(xattrsOf(path.join(out, 'pub'))).to.deep.equal({});
    expect(r.stderr).to.not.match(/warning/i);
  });

  it('as root: modes, set-id bits and every xattr namespace kept exactly', () => {
    const out = path.join(tmp, 'root-sbx');
    const r = runHpcc(['build', '--sandbox', out, sif]);
    expect(r.status, r.stderr).to.equal(0);
    expect(mode(out)).to.equal(0o777);
    expect(mode(path.join(out, 'bin/suid'))).to.equal(0o4755);
    expect(mode(path.join(out, 'bin/sgid'))).to.equal(0o2755);
    expect(mode(path.join(out, 'bin/both'))).to.equal(0o6711);
    expect(mode(path.join(out, 'tmp'))).to.equal(0o1777);
    expect(mode(path.join(out, 'sgdir'))).to.equal(0o2775);
    expect(mode(path.join(out, 'pub/gw'))).to.equal(0o666);
    expect(xattrsOf(path.join(out, 'ro/f'))).to.deep.equal({ 'trusted.test': 'secret', 'user.test': 'hello' });
    const none = path.join(tmp, 'root-sbx-nox');
    const n = runHpcc(['build', '--sandbox', '--no-xattrs', none, sif]);
    expect(n.status, n.stderr).to.equal(0);
    expect(xattrsOf(path.join(none, 'ro/f'))).to.deep.equal({});
  });

  it('on a file system without xattrs: one warning naming --no-xattrs, the sandbox still made', function () {
    requireTools(this, 'unshare', 'mount', 'setpriv');
    const mnt = path.join(tmp, 'ramfs');
    fs.mkdirSync(mnt);
    const { uid, gid } = testUserIds();
    // ramfs has no xattr handlers (ENOTSUP); mounted in a private mount namespace, then dropped to the test user.
    const script =
      'm=$1 u=$2 g=$3; shift 3; mount -t ramfs ramfs "$m" && chown "$u:$g" "$m" && ' +
      'HOME=/nonexistent setpriv --reuid "$u" --regid "$g" --init-groups -- "$@"; rc=$?; ls "$m/sbx/ro"; exit $rc';
    const inRamfs = (...args: string[]) =>
      spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', mnt, String(uid), String(gid), process.execPath, HPCC_BIN, 'build', ...args], {
        encoding: 'utf8',
      });
    const r = inRamfs('--sandbox', path.join(mnt, 'sbx'), sif);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('f');
    const warnings = r.stderr.split('\n').filter((l) => /^Warning/.test(l));
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.match(/does not support extended attributes: 3 were not restored \(pass --no-xattrs to skip them\)/);
    const quiet = inRamfs('--no-xattrs', '--sandbox', path.join(mnt, 'sbx'), sif);
    expect(quiet.status, quiet.stderr).to.equal(0);
    expect(quiet.stderr).to.not.match(/warning/i);
  });

  it('--no-xattrs without --sandbox is a usage error', () => {
    const r = runHpcc(['build', '--no-xattrs', path.join(tmp, 'x.sif'), path.join(tmp, 'tree')]);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.contain('--no-xattrs applies to --sandbox only');
  });

  it('unsquashfs as a user agrees on the set-id bits and the user.* namespace', function () {
    requireTools(this, 'unsquashfs');
    const buf = fs.readFileSync(sif);
    const off = buf.indexOf(Buffer.from('hsqs'), 32176);
    const out = path.join(userDir, 'unsq');
    // unsquashfs (4.5) sets attributes after the mode, so a read-only file's user.* attribute fails there: skip them.
    const r = runUnprivileged('unsquashfs', ['-no-progress', '-no-xattrs', '-o', String(off), '-d', out, sif]);
    expect(r.status, r.stderr).to.equal(0);
    expect(mode(path.join(out, 'bin/suid'))).to.equal(0o755);
    expect(mode(path.join(out, 'bin/sgid'))).to.equal(0o755);
  });
});
