/**
 * The release tarball (scripts/release.mjs, `npm run release`) works on a machine with no
 * Node.js, unpacked where its user cannot write: a clean Debian bookworm root filesystem
 * (variant essential + squashfuse, fuse3, libstdc++6; test/tools/release-rootfs.sh, cached
 * under /var/tmp) gets the release in /opt/hpcc (root-owned, mounted read-only), and every
 * command runs there as the unprivileged test user (test/tools/release-root.sh: pivot_root
 * into the tree, then setpriv). Checked: `--version`/`version --json`, `build` from a
 * directory and from an OCI archive, `exec`, `run`, `inspect`, `pull` from the test
 * registry, a repeated launch served from a launch memo (HPCC_DEBUG says so), the
 * extraction fallback (HPCC_SQUASHFUSE=none), that the install is left unchanged, and that it
 * is a handful of files (a few JavaScript bundles, Node, the native parts; no node_modules).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT, TEST_USER, makeTempDir, removeTree, requireRoot, requireTestUser, requireTools, testUserIds, WARM_IDLE_FOR_TESTS } from '../helpers/env.js';
import { makeBusyboxTree, umociImage } from '../helpers/registry-fixtures.js';
import { skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.js';

const RELEASE_ROOT = path.join(REPO_ROOT, 'test', 'tools', 'release-root.sh');
const HPCC = '/opt/hpcc/bin/hpcc';

function must(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${String(r.status ?? r.signal)}): ${r.stderr}`);
  return r.stdout;
}

/** Every path below dir with its type, size, mode and mtime (to see that nothing changed). */
function listing(dir: string): string {
  return must('find', [dir, '-printf', '%P %y %s %m %T@\n']).split('\n').sort().join('\n');
}

describe('e2e: the release tarball in a clean Debian root without Node.js, as an unprivileged user', function () {
  this.timeout(20 * 60_000);
  let tmp = '';
  let root = '';
  let reg: TestRegistry | undefined;
  let ids = { uid: 0, gid: 0 };
  let before0 = '';

  /** Run a /bin/sh script in the root as the test user (cwd: ~/work). */
  const inRoot = (script: string, env: Record<string, string> = {}): SpawnSyncReturns<string> =>
    spawnSync('bash', ['--norc', '--noprofile', RELEASE_ROOT, root, String(ids.uid), String(ids.gid), '/bin/sh', '-c', `cd ~/work && ${script}`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, HPCC_WARM_IDLE: WARM_IDLE_FOR_TESTS, ...env },
      timeout: 180_000,
    });
  const ok = (r: SpawnSyncReturns<string>) => {
    expect(r.status, `${r.stdout}\n${r.stderr}`).to.equal(0);
    return r;
  };

  before(async function () {
    requireRoot(this);
    requireTestUser(this);
    requireTools(this, 'mmdebstrap', 'unshare', 'pivot_root', 'setpriv', 'umoci', 'skopeo', 'docker-registry', 'busybox');
    ids = testUserIds();
    tmp = makeTempDir('hpcc-e2e-release-');
    // the release, made from this checkout's build, with a stale file in its dist/native (a
    // helper an earlier build made): the release takes the Makefile's outputs by name, not it
    const stale = path.join(REPO_ROOT, 'dist', 'native', `hpcc-stale-${process.pid}`);
    fs.writeFileSync(stale, '#!/bin/sh\n', { mode: 0o755 });
    let tarball = '';
    try {
      tarball = must(process.execPath, [path.join(REPO_ROOT, 'scripts', 'release.mjs'), '--out', path.join(tmp, 'out')]).trim();
    } finally {
      fs.rmSync(stale, { force: true });
    }
    expect(path.basename(tarball)).to.match(/^hpcc-\d+\.\d+\.\d+.*-linux-x64\.tar\.gz$/);
    // the clean root, from the cached mmdebstrap tarball
    const rootTar = must('bash', [path.join(REPO_ROOT, 'test', 'tools', 'release-rootfs.sh')]).trim();
    root = path.join(tmp, 'root');
    fs.mkdirSync(root);
    must('tar', ['-C', root, '--numeric-owner', '-xf', rootTar]);
    fs.mkdirSync(path.join(root, 'opt', 'hpcc'), { recursive: true });
    must('tar', ['-C', path.join(root, 'opt', 'hpcc'), '--strip-components=1', '--no-same-owner', '-xzf', tarball]);
    before0 = listing(path.join(root, 'opt', 'hpcc'));
    fs.appendFileSync(path.join(root, 'etc', 'passwd'), `${TEST_USER}:x:${ids.uid}:${ids.gid}::/home/${TEST_USER}:/bin/sh\n`);
    fs.appendFileSync(path.join(root, 'etc', 'group'), `${TEST_USER}:x:${ids.gid}:\n`);
    // the user's inputs: a busybox tree, the same as an OCI layout (entrypoint /bin/echo), its archive
    const work = path.join(root, 'home', TEST_USER, 'work');
    fs.mkdirSync(work, { recursive: true });
    const tree = makeBusyboxTree(work);
    const layout = path.join(tmp, 'layout');
    umociImage(layout, 'bb', [tree], 'from-run');
    must('umoci', ['config', '--image', `${layout}:bb`, '--config.entrypoint', '/bin/echo']);
    must('tar', ['-C', layout, '-cf', path.join(work, 'bb.oci.tar'), '.']);
    must('chown', ['-R', `${ids.uid}:${ids.gid}`, path.join(root, 'home', TEST_USER)]);
    reg = await startRegistry('none');
    await skopeoPush(reg, `oci:${layout}:bb`, 'lab/bb:latest');
  });

  after(async function () {
    await reg?.stop();
    if (tmp) removeTree(tmp);
  });

  it('the root has no Node.js; bin/hpcc is the native front; the user cannot write the install', () => {
    const r = ok(inRoot(`command -v node nodejs || echo no-node; readlink ${HPCC}; test -w /opt/hpcc/lib/hpcc && echo writable || echo read-only`));
    expect(r.stdout.split('\n')).to.deep.equal(['no-node', '../lib/hpcc/dist/native/hpcc', 'read-only', '']);
    // man pages and completions travel when the build made them; the Slurm files always
    const share = path.join(root, 'opt', 'hpcc', 'share');
    const man = path.join(REPO_ROOT, 'dist', 'man', 'man1');
    if (fs.existsSync(man)) expect(fs.readdirSync(path.join(share, 'man', 'man1')).sort()).to.deep.equal(fs.readdirSync(man).sort());
    for (const [from, to] of [['hpcc.bash', 'bash-completion/completions/hpcc'], ['_hpcc', 'zsh/site-functions/_hpcc']]) {
      expect(fs.existsSync(path.join(share, to!)), to).to.equal(fs.existsSync(path.join(REPO_ROOT, 'dist', 'completions', from!)));
    }
    expect(fs.readdirSync(path.join(root, 'opt', 'hpcc', 'lib', 'hpcc', 'slurm')).sort()).to.deep.equal(fs.readdirSync(path.join(REPO_ROOT, 'slurm')).sort());
    expect(fs.readlinkSync(path.join(share, 'hpcc', 'slurm'))).to.equal('../../lib/hpcc/slurm');
  });

  it("is a handful of files: one executable of Node and hpcc's JavaScript, the front, the helper and the addons; no node_modules", () => {
    const opt = path.join(root, 'opt', 'hpcc');
    const all = must('find', [opt, '-printf', '%P %y\n']).trim().split('\n');
    const files = all.filter((l) => l.endsWith(' f')).map((l) => l.slice(0, -2));
    // hpcc itself (lib/hpcc but its Slurm scripts) is a couple of dozen files; the rest are the
    // Slurm scripts, man pages, completions, example definition files and docs
    expect(files.filter((f) => f.startsWith('lib/hpcc/') && !f.startsWith('lib/hpcc/slurm/')).length, files.join('\n')).to.be.below(30);
    expect(files.length, files.join('\n')).to.be.below(90);
    expect(all.filter((l) => /(^|\/)node_modules( |\/)/.test(l)), 'node_modules').to.deep.equal([]);
    // the JavaScript outside the SEA (dist/native/hpcc-node): oclif's command table and the two worker entries
    const js = files.filter((f) => /\.[mc]?js$/.test(f)).sort();
    expect(js).to.deep.equal([
      'lib/hpcc/dist/commands.cjs',
      'lib/hpcc/dist/src/build/def/ns-worker.js',
      'lib/hpcc/dist/src/formats/squashfs/codecs/worker.js',
    ]);
    // dist/native: native/Makefile's outputs by name (a stale file of the checkout's dist/native,
    // planted in before(), stays out), the SEA (Node with hpcc's JavaScript) and the dependencies' binary files
    const native = fs.readdirSync(path.join(opt, 'lib', 'hpcc', 'dist', 'native')).sort();
    const made = must('make', ['-s', '--no-print-directory', '-C', path.join(REPO_ROOT, 'native'), 'outputs']).split(/\s+/).filter(Boolean);
    const want = ['hpcc-node', 'lzma-native.node', 'lz4-napi.node', 'zstd.wasm', ...made.filter((f) => fs.existsSync(path.join(REPO_ROOT, 'dist', 'native', f)))];
    expect(native).to.deep.equal(want.sort());
    for (const f of ['hpcc', 'hpcc-launch', 'xattr.node']) expect(native, f).to.include(f);
  });

  it('every command of the checkout is in the bundle: each one loads from the release', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'oclif.manifest.json'), 'utf8')) as { commands: Record<string, unknown> };
    const ids = Object.keys(manifest.commands);
    expect(ids.length).to.be.above(10);
    // help comes from the manifest; a flag no command has makes oclif load the class (its
    // "explicit" strategy: the bundle's table) and then refuse the flag. HPCC_LEAN=0: all through oclif.
    for (const id of ids) {
      // (the Slurm wrappers' hidden commands take any arguments: their own usage error)
      const r = inRoot(`${HPCC} ${id.replaceAll(':', ' ')} --hpcc-no-such-flag`, { HPCC_LEAN: '0' });
      expect(r.stderr, id).not.to.match(/command \S+ not found/);
      if (!id.startsWith('slurm:')) expect(r.stderr, id).to.contain('Nonexistent flag: --hpcc-no-such-flag');
    }
  });

  it('hpcc --version and hpcc version --json: version, build-time revision, Node 24, helper and wire formats, squashfuse found', () => {
    const build = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'dist', 'build-info.json'), 'utf8')) as { version: string; revision: string };
    const text = ok(inRoot(`${HPCC} --version`)).stdout;
    expect(text).to.contain(`hpcc ${build.version} (${build.revision})`);
    // through a symlink of the user's (as `ln -s /opt/hpcc/bin/hpcc ~/bin/hpcc` makes it), the same install
    expect(ok(inRoot(`mkdir -p ~/bin && ln -sf ${HPCC} ~/bin/hpcc && ~/bin/hpcc --version`)).stdout).to.equal(text);
    const v = JSON.parse(ok(inRoot(`${HPCC} version --json`)).stdout) as {
      hpcc: string; revision: string; node: string; install: string; helper: { planVersion: number | null }; wireFormats: { plan: number }; optional: Record<string, unknown>;
    };
    expect(v.revision).to.equal(build.revision);
    expect(v.node).to.match(/^v24\./);
    expect(v.install).to.equal('/opt/hpcc/lib/hpcc');
    expect(v.helper.planVersion).to.equal(v.wireFormats.plan);
    expect(v.optional.squashfuse).to.equal('/usr/bin/squashfuse_ll');
    expect(v.optional.fuseOverlayfs).to.equal(null);
  });

  it('build from a directory and from an OCI archive, then exec, run and inspect them', () => {
    ok(inRoot(`${HPCC} build --quiet dir.sif busybox && ${HPCC} build --quiet oci.sif oci-archive:bb.oci.tar:bb`));
    expect(ok(inRoot(`${HPCC} exec dir.sif echo hello from the release`)).stdout).to.equal('hello from the release\n');
    expect(ok(inRoot(`${HPCC} run oci.sif`)).stdout).to.equal('from-run\n');
    expect(ok(inRoot(`${HPCC} run oci.sif with args`)).stdout).to.equal('with args\n');
    const meta = JSON.parse(ok(inRoot(`${HPCC} inspect --all oci.sif`)).stdout) as object;
    expect(JSON.stringify(meta)).to.contain('/bin/echo');
  });

  it("the codecs with native addons or WebAssembly load from the release: zstd, xz and lz4 images built and read back", () => {
    for (const c of ['zstd', 'xz', 'lz4']) {
      ok(inRoot(`${HPCC} build --quiet --compressor ${c} ${c}.sif busybox`));
      // no squashfuse: hpcc's own reader extracts the image, decoding with the same codec
      const r = ok(inRoot(`${HPCC} exec ${c}.sif echo ${c}`, { HPCC_SQUASHFUSE: 'none' }));
      expect(r.stdout).to.equal(`${c}\n`);
    }
  });

  it('pull from the test registry, then exec the pulled image; exec of a docker:// reference (the launch path loads the pull from the rest)', () => {
    const env = { HPCC_INSECURE_REGISTRIES: reg!.host };
    ok(inRoot(`${HPCC} pull --quiet pulled.sif docker://${reg!.host}/lab/bb:latest`, env));
    expect(ok(inRoot(`${HPCC} exec pulled.sif cat /etc/passwd`)).stdout).to.match(/^root:x:0:0:/);
    expect(ok(inRoot(`${HPCC} exec docker://${reg!.host}/lab/bb:latest echo from the registry`, env)).stdout).to.equal('from the registry\n');
  });

  it('build from a definition file: its steps run in the build namespace by the release\'s worker entry, %test by the SEA', () => {
    // oci.sif: its files are root's (dir.sif's are the user's, which a build namespace without
    // newuidmap, as in this root, cannot map). The namespace worker and `hpcc test` are started
    // from the SEA (src/util/sea.ts): a failing %test must fail the build
    const work = path.join(root, 'home', TEST_USER, 'work');
    const def = (test: string) => `Bootstrap: localimage\nFrom: oci.sif\n\n%post\n    echo made-by-post > /post.txt\n\n%test\n    ${test}\n`;
    for (const [f, test] of [['app.def', 'grep -q made-by-post /post.txt'], ['bad.def', 'echo failing-test; exit 3']]) {
      fs.writeFileSync(path.join(work, f!), def(test!));
      fs.chownSync(path.join(work, f!), ids.uid, ids.gid);
    }
    ok(inRoot(`${HPCC} build --quiet def.sif app.def`));
    expect(ok(inRoot(`${HPCC} exec def.sif cat /post.txt`)).stdout).to.equal('made-by-post\n');
    const bad = inRoot(`${HPCC} build --quiet bad.sif bad.def`);
    expect(bad.status, bad.stderr).not.to.equal(0);
    expect(`${bad.stdout}${bad.stderr}`).to.contain('%test');
    expect(fs.existsSync(path.join(work, 'bad.sif'))).to.equal(false);
  });

  it('the Slurm wrappers are installed next to hpcc and find their per-rank entry in the install (this root has no srun)', () => {
    expect(ok(inRoot('cd /opt/hpcc/bin && readlink hpcc-sbatch hpcc-srun hpcc-mpirun')).stdout.split('\n').filter(Boolean)).to.deep.equal(
      ['sbatch', 'srun', 'mpirun'].map((w) => `../lib/hpcc/slurm/hpcc-${w}`),
    );
    // past the entry's check, the step needs srun, which a Slurm node has and this root has not
    const r = inRoot('/opt/hpcc/bin/hpcc-srun --image dir.sif -- true');
    expect(r.status, r.stderr).to.equal(89);
    expect(r.stderr).to.contain('HPCC_E_SLURM_TOOL').and.contain('cannot run srun').and.not.contain('per-rank entry');
  });

  it('a repeated launch is served from a launch memo; without squashfuse the image is extracted instead', () => {
    const dbg = { HPCC_DEBUG: '1' };
    const first = ok(inRoot(`${HPCC} exec dir.sif echo memo`, dbg));
    expect(first.stdout).to.equal('memo\n');
    expect(first.stderr).not.to.match(/launch memo \S+: used/);
    const again = ok(inRoot(`${HPCC} exec dir.sif echo memo`, dbg));
    expect(again.stdout).to.equal('memo\n');
    expect(again.stderr, again.stderr).to.match(/hpcc: launch memo \S+: used/);
    const extracted = ok(inRoot(`${HPCC} exec dir.sif echo extracted`, { HPCC_SQUASHFUSE: 'none' }));
    expect(extracted.stdout).to.equal('extracted\n');
    expect(extracted.stderr).to.contain('Extracting');
  });

  it('left the install unchanged (the compile cache and memos live in the user\'s cache)', () => {
    expect(listing(path.join(root, 'opt', 'hpcc'))).to.equal(before0);
    const cache = path.join(root, 'home', TEST_USER, '.cache', 'hpcc');
    expect(fs.existsSync(path.join(cache, 'node-compile-cache'))).to.equal(true);
    expect(fs.readdirSync(path.join(cache, 'launch')).some((f) => f.endsWith('.memo'))).to.equal(true);
  });
});
