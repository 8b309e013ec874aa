/**
 * OCI images → SIF against the reference OCI layer implementation: for each
 * fixture (built here, offline, with umoci, skopeo and hand-made layers) the
 * tree inside hpcc's SIF (extracted with unsquashfs as root) equals
 * `umoci unpack`'s rootfs — files, bytes, modes, owners, mtimes, xattrs,
 * link targets, hard-link groups. Also: oci-archive and docker-archive
 * sources, zstd and uncompressed layers, sparse files, a multi-platform
 * index, digest and path-escape failures that leave nothing behind, the
 * generated runscript/env files, and the SIF object order (reference reader).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { convertImage } from '../../src/core/convert.js';
import { HpccError } from '../../src/errors/index.js';
import { parsePlatform } from '../../src/oci/platform.js';
import { resolveSource } from '../../src/oci/sources.js';
import { IS_ROOT, makeTempDir, removeTree, requireRoot, requireTools } from '../helpers/env.js';
import { blobFile, makeTar, writeImage } from '../helpers/oci-layers.js';
import { compareTrees } from '../helpers/tree-compare.js';
import { makeBusyboxTree, makeSecondTree, sh, writeWhiteoutImage } from './oci-fixtures.js';
import { findTool } from '../helpers/env.js';

const GENERATED = ['.singularity.d', 'singularity', 'environment'];
const SIFCHECK = path.resolve('test/.cache/bin/sifcheck');

async function convert(ref: string, out: string, platform?: string): Promise<void> {
  const img = await resolveSource(ref).resolve(platform ? { platform: parsePlatform(platform) } : {});
  try {
    await convertImage(img, out, { compressor: 'gzip', level: 1 });
  } finally {
    await img.close();
  }
}

function partitionOffset(sif: string): number {
  // the reference layout puts the first partition at 36864 for three small objects; read it from the descriptor instead
  const r = spawnSync(SIFCHECK, ['list', sif], { encoding: 'utf8' });
  if (r.status === 0) {
    const j = JSON.parse(r.stdout) as { descriptors: Array<{ dataTypeName: string; offset: number }> };
    return j.descriptors.find((d) => d.dataTypeName === 'FS')!.offset;
  }
  return 36864;
}

function extract(sif: string, dir: string): string {
  sh('unsquashfs', ['-q', '-n', '-o', String(partitionOffset(sif)), '-d', dir, sif]);
  return dir;
}

async function expectSameTree(ours: string, reference: string): Promise<void> {
  // link counts of everything but the root (which holds the extra /.singularity.d) are compared through hard-link groups
  const diffs = await compareTrees(ours, reference, { owners: true, mtimes: true, xattrs: true, nlink: false, ignore: GENERATED });
  expect(diffs, diffs.join('\n')).to.deep.equal([]);
  expect(fs.lstatSync(ours).nlink).to.equal(fs.lstatSync(reference).nlink + 1);
  const links = (root: string) =>
    sh('find', [root, '-path', `${root}/.singularity.d`, '-prune', '-o', '-printf', '%P %n\n']).split('\n').filter((l) => l !== '' && !l.startsWith(' ') && !/^(singularity|environment) /.test(l)).sort();
  expect(links(ours)).to.deep.equal(links(reference));
}

async function expectCode(p: Promise<unknown>, code: string): Promise<HpccError> {
  try {
    await p;
  } catch (e) {
    expect(e, String(e)).to.be.instanceOf(HpccError);
    expect((e as HpccError).code, (e as Error).message).to.equal(code);
    return e as HpccError;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

describe('integration: OCI image → SIF vs umoci unpack', function () {
  this.timeout(180_000);
  let tmp = '';
  let layout = '';
  let bbTree = '';

  before(function () {
    requireRoot(this);
    requireTools(this, 'umoci', 'skopeo', 'unsquashfs', 'zstd', 'setfattr', 'tar');
    tmp = makeTempDir('hpcc-oci-');
    layout = path.join(tmp, 'layout');
    writeWhiteoutImage(layout, 'wh');
    writeWhiteoutImage(layout, 'whz', true);
    bbTree = makeBusyboxTree(tmp);
    const second = makeSecondTree(bbTree, tmp);
    sh('umoci', ['new', '--image', `${layout}:bb`]);
    sh('umoci', ['insert', '--image', `${layout}:bb`, bbTree, '/']);
    // umoci's own whiteouts: a deleted file and an opaque directory
    sh('umoci', ['insert', '--image', `${layout}:bb`, '--whiteout', '/bin/ls']);
    sh('umoci', ['insert', '--image', `${layout}:bb`, '--opaque', path.join(second, 'home'), '/home']);
    sh('umoci', ['config', '--image', `${layout}:bb`, '--config.cmd', '/bin/sh', '--config.env', 'A=1']);
    sh('skopeo', ['copy', '--quiet', `oci:${layout}:bb`, `oci-archive:${tmp}/bb.oci.tar:bb`]);
    sh('skopeo', ['copy', '--quiet', `oci:${layout}:bb`, `docker-archive:${tmp}/bb.docker.tar:lab/bb:latest`]);
    sh('skopeo', ['copy', '--quiet', `oci:${layout}:wh`, `docker-archive:${tmp}/wh.docker.tar:lab/wh:latest`]);
    sh('skopeo', ['copy', '--quiet', '--dest-compress-format', 'zstd', `oci:${layout}:bb`, `oci:${tmp}/zlayout:bbz`]);
    for (const t of ['wh', 'bb']) sh('umoci', ['unpack', '--image', `${layout}:${t}`, path.join(tmp, `unpack-${t}`)]);
  });

  after(() => {
    if (tmp) removeTree(tmp);
  });

  const cases: Array<[string, () => string, string]> = [
    ['whiteouts, hard links, replacements (gzip + plain layers)', () => `oci:${layout}:wh`, 'wh'],
    ['the same with a zstd layer', () => `oci:${layout}:whz`, 'wh'],
    ['a umoci-made busybox image with umoci whiteouts', () => `oci:${layout}:bb`, 'bb'],
    ['oci-archive (skopeo)', () => `oci-archive:${tmp}/bb.oci.tar:bb`, 'bb'],
    ['docker-archive (skopeo, uncompressed layers)', () => `docker-archive:${tmp}/bb.docker.tar`, 'bb'],
    ['docker-archive of the whiteout image, selected by name', () => `docker-archive:${tmp}/wh.docker.tar:lab/wh:latest`, 'wh'],
    ['zstd layers written by skopeo', () => `oci:${tmp}/zlayout:bbz`, 'bb'],
  ];
  cases.forEach(([name, ref, ref2], i) => {
    it(`${name}: same tree as umoci unpack`, async () => {
      const out = path.join(tmp, `case${i}.sif`);
      await convert(ref(), out);
      const ex = extract(out, path.join(tmp, `case${i}.ex`));
      await expectSameTree(ex, path.join(tmp, `unpack-${ref2}`, 'rootfs'));
      removeTree(ex);
      fs.rmSync(out);
    });
  });

  it('sparse files (GNU and pax 1.0 formats) come out equal to umoci unpack', async () => {
    const src = path.join(tmp, 'sparse-src');
    fs.mkdirSync(src);
    sh('truncate', ['-s', '9M', path.join(src, 'holes')]);
    sh('dd', ['of=' + path.join(src, 'holes'), 'bs=1', 'seek=5000000', 'conv=notrunc', 'status=none'], { input: Buffer.from('data in the middle') });
    sh('truncate', ['-s', '3M', path.join(src, 'tailhole')]);
    sh('touch', ['-d', '@1700000000', path.join(src, 'holes'), path.join(src, 'tailhole')]);
    const tarOf = (format: string) => spawnSync('tar', ['--sparse', `--format=${format}`, '-C', src, '-cf', '-', 'tailhole', 'holes'], { maxBuffer: 1 << 26 }).stdout;
    const gnu = tarOf('gnu');
    const pax = tarOf('posix');
    expect(gnu.length).to.be.below(64 * 1024);
    expect(pax.length).to.be.below(64 * 1024);
    const sl = path.join(tmp, 'sparse-layout');
    // umoci 0.4 reads pax sparse files but refuses GNU 'S' entries: the GNU variant is checked against the same reference tree
    writeImage(sl, 'pax', { layers: [{ tar: pax, compression: 'gzip' }] });
    writeImage(sl, 'gnu', { layers: [{ tar: gnu, compression: 'none' }] });
    sh('umoci', ['unpack', '--image', `${sl}:pax`, path.join(tmp, 'unpack-sp')]);
    for (const t of ['pax', 'gnu']) {
      const out = path.join(tmp, `sparse-${t}.sif`);
      await convert(`oci:${sl}:${t}`, out);
      const ex = extract(out, path.join(tmp, `sparse-${t}.ex`));
      await expectSameTree(ex, path.join(tmp, 'unpack-sp', 'rootfs'));
      expect(fs.statSync(path.join(ex, 'holes')).size).to.equal(9 * 1024 * 1024);
      expect(sh('cmp', [path.join(ex, 'holes'), path.join(src, 'holes')])).to.equal('');
    }
  });

  it('a multi-platform index: the host platform by default, --platform picks another, a missing one is a clear error', async () => {
    const top = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; size: number; mediaType: string; annotations?: Record<string, string> }> };
    const d = (t: string) => {
      const m = top.manifests.find((x) => x.annotations?.['org.opencontainers.image.ref.name'] === t)!;
      return { mediaType: m.mediaType, digest: m.digest, size: m.size };
    };
    const idx = JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { ...d('wh'), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { ...d('bb'), platform: { os: 'linux', architecture: 'amd64' } },
        { ...d('whz'), platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      ],
    });
    const ml = path.join(tmp, 'multi');
    fs.mkdirSync(path.join(ml, 'blobs', 'sha256'), { recursive: true });
    for (const f of fs.readdirSync(path.join(layout, 'blobs', 'sha256'))) fs.linkSync(path.join(layout, 'blobs', 'sha256', f), path.join(ml, 'blobs', 'sha256', f));
    const { createHash } = await import('node:crypto');
    const hex = createHash('sha256').update(idx).digest('hex');
    fs.writeFileSync(path.join(ml, 'blobs', 'sha256', hex), idx);
    fs.writeFileSync(path.join(ml, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    fs.writeFileSync(
      path.join(ml, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${hex}`, size: idx.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } }] }),
    );
    const arm = await resolveSource(`oci:${ml}:multi`).resolve({ platform: parsePlatform('linux/arm64') });
    expect(arm.manifestDigest).to.equal(d('wh').digest);
    await arm.close();
    const armv7 = await resolveSource(`oci:${ml}`).resolve({ platform: parsePlatform('linux/arm/v7') });
    expect(armv7.manifestDigest).to.equal(d('whz').digest);
    await armv7.close();
    if (process.arch === 'x64') {
      const out = path.join(tmp, 'multi.sif');
      await convert(`oci:${ml}:multi`, out);
      const ex = extract(out, path.join(tmp, 'multi.ex'));
      await expectSameTree(ex, path.join(tmp, 'unpack-bb', 'rootfs'));
    }
    const e = await expectCode(resolveSource(`oci:${ml}:multi`).resolve({ platform: parsePlatform('linux/s390x') }), 'HPCC_E_OCI_PLATFORM');
    expect(e.hint).to.contain('linux/arm64/v8');
  });

  it('a tampered layer blob fails with HPCC_E_OCI_DIGEST and leaves nothing at the output', async () => {
    const tl = path.join(tmp, 'tampered');
    sh('cp', ['-a', layout, tl]);
    const m = JSON.parse(fs.readFileSync(path.join(tl, 'index.json'), 'utf8')).manifests.find((x: { annotations?: Record<string, string> }) => x.annotations?.['org.opencontainers.image.ref.name'] === 'bb');
    const man = JSON.parse(fs.readFileSync(blobFile(tl, m.digest), 'utf8')) as { layers: Array<{ digest: string }> };
    const blob = blobFile(tl, man.layers[0]!.digest);
    const bytes = fs.readFileSync(blob);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x55;
    fs.writeFileSync(blob, bytes);
    const outDir = path.join(tmp, 'tampered-out');
    fs.mkdirSync(outDir);
    const err = await expectCode(convert(`oci:${tl}:bb`, path.join(outDir, 'x.sif')), 'HPCC_E_OCI_DIGEST');
    expect(err.exitCode).to.equal(69);
    expect(fs.readdirSync(outDir)).to.deep.equal([]);
  });

  it('a layer entry with ../ is refused with HPCC_E_UNSAFE_PATH and nothing is written', async () => {
    const el = path.join(tmp, 'escape');
    writeImage(el, 'esc', { layers: [{ tar: makeTar([{ name: 'ok', data: 'fine' }, { name: 'a/../../escape', data: 'evil' }]), compression: 'gzip' }] });
    const outDir = path.join(tmp, 'escape-out');
    fs.mkdirSync(outDir);
    const e = await expectCode(convert(`oci:${el}:esc`, path.join(outDir, 'x.sif')), 'HPCC_E_UNSAFE_PATH');
    expect(e.message).to.contain('../../escape');
    expect(fs.readdirSync(outDir)).to.deep.equal([]);
    expect(fs.existsSync(path.join(tmp, 'escape'))).to.equal(true); // the layout dir, not a file written by the layer
  });

  it('entries dated before 1970 (GNU base-256 and pax mtime) convert with mtime 0 and one warning, as with tar2sqfs', async () => {
    const nl = path.join(tmp, 'negtime');
    const tar = makeTar([
      { name: 'd/', type: '5', mtime: -1 },
      { name: 'd/gnu', data: 'g', mtime: -315622800 },
      { name: 'd/pax', data: 'p', pax: { mtime: '-315622800' } },
      { name: 'd/new', data: 'n', mtime: 1700000000 },
    ]);
    writeImage(nl, 'n', { layers: [{ tar, compression: 'gzip' }] });
    const out = path.join(tmp, 'negtime.sif');
    const warnings: string[] = [];
    const img = await resolveSource(`oci:${nl}:n`).resolve({});
    try {
      await convertImage(img, out, { compressor: 'gzip', level: 1, onWarning: (w) => warnings.push(w) });
    } finally {
      await img.close();
    }
    const ex = extract(out, path.join(tmp, 'negtime.ex'));
    const mtime = (p: string) => fs.lstatSync(path.join(ex, p)).mtimeMs / 1000;
    expect([mtime('d'), mtime('d/gnu'), mtime('d/pax'), mtime('d/new')]).to.deep.equal([0, 0, 0, 1700000000]);
    expect(fs.readFileSync(path.join(ex, 'd/pax'), 'utf8')).to.equal('p');
    expect(warnings.filter((w) => /before 1970/.test(w))).to.have.length(1);
    expect(warnings.join('\n')).to.match(/3 entries dated before 1970 \(first: d\/?\)/);
    removeTree(ex);
  });

  it('a hard link to a missing target is a typed error, like tar', async () => {
    const hl = path.join(tmp, 'badlink');
    writeImage(hl, 't', { layers: [{ tar: makeTar([{ name: 'a', data: 'x' }, { name: '.wh.a', data: '' }]), compression: 'gzip' }, { tar: makeTar([{ name: '.wh.a' }, { name: 'b', type: '1', linkname: 'a' }]), compression: 'gzip' }] });
    await expectCode(convert(`oci:${hl}:t`, path.join(tmp, 'badlink.sif')), 'HPCC_E_OCI_HARDLINK');
    expect(fs.existsSync(path.join(tmp, 'badlink.sif'))).to.equal(false);
  });

  it('writes the runscript, env and labels from Entrypoint, Cmd, Env and Labels, and they behave', async () => {
    const out = path.join(tmp, 'meta.sif');
    await convert(`oci:${layout}:wh`, out);
    const ex = extract(out, path.join(tmp, 'meta.ex'));
    const sd = path.join(ex, '.singularity.d');
    const run = (args: string[], env: Record<string, string> = {}) => spawnSync('/bin/sh', [path.join(sd, 'runscript'), ...args], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', ...env } });
    expect(run([]).stdout).to.equal("it's a b $HOME\n");
    expect(run(['x y', 'z']).stdout).to.equal("it's x y z\n");
    expect(fs.statSync(path.join(sd, 'runscript')).mode & 0o777).to.equal(0o755);
    const envFile = path.join(sd, 'env', '10-docker2singularity.sh');
    const show = (pre: Record<string, string>) =>
      spawnSync('/bin/sh', ['-c', `. "${envFile}"; printf '%s|%s|%s' "$PATH" "$LANG" "$Q"`], { encoding: 'utf8', env: { PATH: '/host/bin', ...pre } }).stdout;
    expect(show({})).to.equal('/usr/local/bin:/usr/bin:/bin|C.UTF-8|say "hi" `x` $y \\z');
    expect(show({ LANG: 'fr_FR' })).to.equal('/usr/local/bin:/usr/bin:/bin|fr_FR|say "hi" `x` $y \\z');
    expect(JSON.parse(fs.readFileSync(path.join(sd, 'labels.json'), 'utf8'))).to.deep.equal({ a: '1', b: '2' });
    expect(fs.readFileSync(path.join(sd, 'Singularity'), 'utf8')).to.equal(`BootStrap: docker\nFrom: oci:${layout}:wh\n`);
    expect(fs.readlinkSync(path.join(ex, 'singularity'))).to.equal('.singularity.d/runscript');
  });

  it('SIF objects in Apptainer order, read by the reference: deffile, inspect-metadata.json, oci-config.json, squashfs', async function () {
    if (!fs.existsSync(SIFCHECK)) {
      if (findTool('go')) throw new Error('sifcheck not built (bash test/tools/build.sh)');
      this.skip();
    }
    const out = path.join(tmp, 'order.sif');
    await convert(`oci:${layout}:bb`, out);
    const j = JSON.parse(sh(SIFCHECK, ['list', out])) as { descriptors: Array<{ dataTypeName: string; nameHex: string; groupId: number; partition?: { fsType: number; partType: number; arch: string }; dataSha256: string }> };
    const names = j.descriptors.map((d) => `${d.dataTypeName}:${Buffer.from(d.nameHex, 'hex').toString()}`);
    expect(names).to.deep.equal(['Def.FILE:', 'JSON.Generic:inspect-metadata.json', 'JSON.Generic:oci-config.json', 'FS:']);
    expect(j.descriptors.every((d) => d.groupId === 1)).to.equal(true);
    expect(j.descriptors[3]!.partition).to.deep.equal({ fsType: 1, partType: 2, arch: 'amd64' });
    const img = await resolveSource(`oci:${layout}:bb`).resolve({});
    const { createHash } = await import('node:crypto');
    expect(j.descriptors[2]!.dataSha256).to.equal(createHash('sha256').update(img.configBytes).digest('hex'));
    await img.close();
  });

  it('hpcc build OUT.sif oci:… works from the CLI, prints per-layer lines, --quiet silences them', function () {
    if (!IS_ROOT) this.skip();
    const bin = path.resolve('bin/run.js');
    if (!fs.existsSync(path.resolve('dist/src/commands/build.js'))) this.skip();
    const out = path.join(tmp, 'cli.sif');
    const r = spawnSync(process.execPath, [bin, 'build', out, `oci:${layout}:wh`], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/Layer 1\/4 sha256:/);
    expect(r.stderr).to.match(/Layer 4\/4 sha256:/);
    const q = spawnSync(process.execPath, [bin, 'build', '-F', '--quiet', out, `oci-archive:${tmp}/bb.oci.tar`], { encoding: 'utf8' });
    expect(q.status, q.stderr).to.equal(0);
    expect(q.stderr).to.equal('');
    const bad = spawnSync(process.execPath, [bin, 'build', path.join(tmp, 'no.sif'), `oci:${layout}:nosuchtag`], { encoding: 'utf8' });
    expect(bad.status).to.equal(69);
    expect(bad.stderr).to.contain('HPCC_E_OCI_TAG');
    expect(fs.existsSync(path.join(tmp, 'no.sif'))).to.equal(false);
    const plat = spawnSync(process.execPath, [bin, 'build', '--platform', 'linux/arm64', path.join(tmp, 'arm.sif'), `oci:${layout}:bb`], { encoding: 'utf8' });
    expect(plat.status).to.equal(69);
    expect(plat.stderr).to.contain('HPCC_E_OCI_PLATFORM');
    expect(fs.existsSync(path.join(tmp, 'arm.sif'))).to.equal(false);
    const insp = spawnSync(process.execPath, [bin, 'inspect', '--deffile', out], { encoding: 'utf8' });
    expect(insp.status, insp.stderr).to.equal(0);
    expect(insp.stdout).to.equal(`BootStrap: oci-archive\nFrom: ${tmp}/bb.oci.tar\n`);
  });
});
