/**
 * `hpcc build OUT.sif FILE.def` end to end, as the unprivileged test user
 * (who has subordinate ids): every agent hpcc builds from (a busybox image
 * served as a SIF, a sandbox, an OCI layout, oci-archive, docker-archive and
 * a test registry), every section, multi-stage isolation, owners set by
 * %post, failures and SIGTERM leaving nothing behind, --deterministic, and
 * the built image under inspect/run/test.
 */
import { expect } from 'chai';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, REPO_ROOT, removeTree, requireTools, runHpcc, testUserIds } from '../helpers/env.js';
import { startRegistry, skopeoPush, type TestRegistry } from '../helpers/registry.js';
import { umociImage } from '../helpers/registry-fixtures.js';
import { goArch } from '../../src/build/def/image-meta.js';
import { exitOf, hpccAs, makeE2eImage, type E2eImage } from './launch-fixture.js';

describe('e2e: hpcc build from a definition file (unprivileged)', function () {
  this.timeout(120_000);
  let img: E2eImage;
  let ctx: string;
  let tmpdir: string;
  let env: Record<string, string>;

  /** A fresh directory of the test user for one build's inputs and output. */
  const dirOf = (name: string): string => {
    const d = path.join(img.tmp, name);
    fs.mkdirSync(d);
    if (IS_ROOT) execFileSync('chown', [`${testUserIds().uid}:${testUserIds().gid}`, d]);
    return d;
  };
  const write = (dir: string, name: string, text: string): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    fs.chmodSync(p, 0o644);
    return p;
  };
  const build = (dir: string, args: string[], extra: Record<string, string> = {}) => hpccAs(dir, ['build', ...args], { env: { ...env, ...extra } });
  /** The packed tree of a SIF, unpacked by root so owners are exact. */
  const unpack = (sif: string): string => {
    const out = path.join(path.dirname(sif), `${path.basename(sif)}.tree`);
    const r = runHpcc(['build', '--sandbox', '-F', '-q', out, sif]);
    expect(r.status, r.stderr).to.equal(0);
    return out;
  };
  const leftovers = () => fs.readdirSync(tmpdir).filter((n) => n.startsWith('hpcc-build-'));

  before(function () {
    img = makeE2eImage(this, 'hpcc-e2e-def-');
    requireTools(this, 'newuidmap', 'newgidmap', 'unshare');
    ctx = dirOf('ctx');
    tmpdir = dirOf('tmpdir');
    env = { HPCC_TMPDIR: tmpdir, HPCC_CACHEDIR: path.join(tmpdir, 'cache') };
    fs.copyFileSync(img.sif, path.join(ctx, 'base.sif'));
    fs.chmodSync(path.join(ctx, 'base.sif'), 0o644);
    write(ctx, 'note.txt', 'a note from the host\n');
    fs.mkdirSync(path.join(ctx, 'conf'));
    write(path.join(ctx, 'conf'), 'a.conf', 'a\n');
    write(path.join(ctx, 'conf'), 'b.conf', 'b\n');
    write(path.join(ctx, 'conf'), 'skip.txt', 'x\n');
    if (IS_ROOT) execFileSync('chown', ['-R', `${testUserIds().uid}:${testUserIds().gid}`, ctx]);
  });
  after(() => {
    if (img) removeTree(img.tmp);
  });
  afterEach(() => {
    if (tmpdir) expect(leftovers(), 'a build left its work directory').to.deep.equal([]);
  });

  const FULL = `Bootstrap: localimage
From: base.sif

%arguments
    WHO=nobody

%setup
    echo "setup as $(id -u)" > "$APPTAINER_ROOTFS/setup.txt"
    test "$SINGULARITY_ROOTFS" = "$APPTAINER_ROOTFS"

%files
    note.txt /opt/notes/
    conf/*.conf /etc/app/

%post
    echo 'alice:x:2345:2345::/data/alice:/bin/sh' >> /etc/passwd
    /bin/busybox mkdir -p /data/alice
    /bin/busybox chown 2345:2345 /data/alice
    /bin/busybox chown 7:9 /opt/notes/note.txt
    echo "{{ WHO }}" > /who.txt

%environment
    export GREETING="hello {{ WHO }}"

%runscript
    echo "runscript says $GREETING: $*"

%startscript
    echo started

%test
    echo "test sees $GREETING"
    test -f /who.txt

%labels
    Author {{ WHO }}
    Purpose e2e test

%help
    Usage: run it.
`;

  it('localimage SIF: every section, owners set by %post kept, Apptainer metadata; inspect, run and test behave', () => {
    const dir = dirOf('full');
    write(dir, 'app.def', FULL);
    fs.copyFileSync(path.join(ctx, 'base.sif'), path.join(dir, 'base.sif'));
    fs.cpSync(path.join(ctx, 'conf'), path.join(dir, 'conf'), { recursive: true });
    fs.copyFileSync(path.join(ctx, 'note.txt'), path.join(dir, 'note.txt'));
    if (IS_ROOT) execFileSync('chown', ['-R', `${testUserIds().uid}:${testUserIds().gid}`, dir]);
    const r = build(dir, ['--build-arg', 'WHO=world', 'out.sif', 'app.def']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.contain('test sees hello world'); // %test ran on the packed image
    const tree = unpack(path.join(dir, 'out.sif'));
    const st = (p: string) => fs.lstatSync(path.join(tree, p));
    expect(fs.readFileSync(path.join(tree, 'setup.txt'), 'utf8')).to.equal(`setup as ${testUserIds().uid}\n`);
    expect(fs.readFileSync(path.join(tree, 'opt/notes/note.txt'), 'utf8')).to.equal('a note from the host\n');
    expect(fs.readdirSync(path.join(tree, 'etc/app')).sort()).to.deep.equal(['a.conf', 'b.conf']);
    expect(st('etc/app/a.conf').uid).to.equal(0);
    expect([st('data/alice').uid, st('data/alice').gid]).to.deep.equal([2345, 2345]);
    expect([st('opt/notes/note.txt').uid, st('opt/notes/note.txt').gid]).to.deep.equal([7, 9]);
    expect(fs.readFileSync(path.join(tree, 'etc/passwd'), 'utf8')).to.match(/^alice:x:2345:2345:/m);
    expect(fs.readFileSync(path.join(tree, 'who.txt'), 'utf8')).to.equal('world\n');
    const sd = (p: string) => fs.readFileSync(path.join(tree, '.singularity.d', p), 'utf8');
    expect(sd('Singularity')).to.contain('From: base.sif').and.contain('echo "{{ WHO }}"'.replace('{{ WHO }}', 'world'));
    expect(sd('runscript')).to.match(/^#!\/bin\/sh\n\n/);
    expect(sd('env/90-environment.sh')).to.contain('export GREETING="hello world"').and.contain('IMG_VAR=image');
    expect(sd('runscript.help')).to.equal('Usage: run it.\n');
    const labels = JSON.parse(sd('labels.json')) as Record<string, string>;
    expect(labels).to.include({
      Author: 'world',
      Purpose: 'e2e test',
      'org.hpcc.test': 'e2e', // the base image's labels stay
      'org.label-schema.schema-version': '1.0',
      'org.label-schema.usage': '/.singularity.d/runscript.help',
      'org.label-schema.usage.apptainer.runscript.help': '/.singularity.d/runscript.help',
      'org.label-schema.usage.singularity.deffile.bootstrap': 'localimage',
      'org.label-schema.usage.singularity.deffile.from': 'base.sif',
      'org.label-schema.build-arch': goArch(process.arch),
    });
    expect(labels['org.label-schema.build-date']).to.match(/^[A-Z][a-z]+day_\d+_[A-Z][a-z]+_\d{4}_\d+:\d+:\d+_UTC$/);

    const sif = path.join(dir, 'out.sif');
    const list = hpccAs(dir, ['sif', 'list', sif]);
    expect(list.stdout).to.match(/\|Def\.FILE/).and.match(/\|JSON\.Generic/);
    const all = JSON.parse(hpccAs(dir, ['inspect', '--all', sif]).stdout) as { data: { attributes: Record<string, unknown> } };
    const a = all.data.attributes;
    expect(a.deffile).to.contain('Bootstrap: localimage');
    expect(a.runscript).to.contain('runscript says');
    expect(a.startscript).to.contain('echo started');
    expect(a.test).to.contain('test sees');
    expect(a.helpfile).to.equal('Usage: run it.');
    expect((a.labels as Record<string, string>).Author).to.equal('world');
    expect(Object.keys(a.environment as object)).to.include('/.singularity.d/env/90-environment.sh');
    for (const [flag, text] of [['--labels', 'Author: world'], ['--deffile', 'From: base.sif'], ['--runscript', 'runscript says'], ['--test', 'test sees'], ['--environment', 'GREETING'], ['--helpfile', 'Usage: run it.'], ['--startscript', 'echo started']]) {
      const v = hpccAs(dir, ['inspect', flag!, sif]);
      expect(v.status, v.stderr).to.equal(0);
      expect(v.stdout, flag).to.contain(text);
    }
    const run = hpccAs(dir, ['run', sif, 'a', 'b']);
    expect(run.status, run.stderr).to.equal(0);
    expect(run.stdout).to.equal('runscript says hello world: a b\n');
    const test = hpccAs(dir, ['test', sif]);
    expect(test.status, test.stderr).to.equal(0);
    expect(test.stdout).to.contain('test sees hello world');
  });

  it('scratch + %files, built twice with --deterministic: identical bytes; --notest', () => {
    const dir = dirOf('det');
    write(dir, 'note.txt', 'n\n');
    const def = write(dir, 'app.def', 'Bootstrap: scratch\n%files\n    note.txt\n    note.txt /deep/er/copy.txt\n%labels\n    K v\n%test\n    exit 1\n');
    if (IS_ROOT) execFileSync('chown', ['-R', `${testUserIds().uid}:${testUserIds().gid}`, dir]);
    const one = build(dir, ['--deterministic', '--notest', 'one.sif', def]);
    expect(one.status, one.stderr).to.equal(0);
    const two = build(dir, ['--deterministic', '--notest', 'two.sif', def]);
    expect(two.status, two.stderr).to.equal(0);
    expect(fs.readFileSync(path.join(dir, 'one.sif')).equals(fs.readFileSync(path.join(dir, 'two.sif')))).to.equal(true);
    const tree = unpack(path.join(dir, 'one.sif'));
    expect(fs.readFileSync(path.join(tree, 'note.txt'), 'utf8')).to.equal('n\n');
    expect(fs.readFileSync(path.join(tree, 'deep/er/copy.txt'), 'utf8')).to.equal('n\n');
    expect(JSON.parse(fs.readFileSync(path.join(tree, '.singularity.d/labels.json'), 'utf8'))['org.label-schema.build-date']).to.equal('Thursday_1_January_1970_0:0:0_UTC');
    // without --notest the failing %test fails the build, and nothing is left at the output
    const failed = build(dir, ['three.sif', def]);
    expect(failed.status).to.equal(73);
    expect(failed.stderr).to.contain('%test').and.contain('exit status');
    expect(fs.existsSync(path.join(dir, 'three.sif'))).to.equal(false);
  });

  it('localimage sandbox directory; multi-stage: only %files from reaches the image', () => {
    const dir = dirOf('multi');
    const sandbox = path.join(dir, 'sandbox');
    execFileSync('cp', ['-a', path.join(unpack(img.sif)), sandbox]);
    if (IS_ROOT) execFileSync('chown', ['-R', `${testUserIds().uid}:${testUserIds().gid}`, dir]);
    write(dir, 'app.def', `Bootstrap: localimage
From: sandbox
Stage: build
%post
    echo built > /artifact
    mkdir -p /out/sub && echo deep > /out/sub/f
    echo secret > /leak

Bootstrap: scratch
%files from build
    /artifact /opt/artifact
    /out /opt/
`);
    const r = build(dir, ['final.sif', 'app.def']);
    expect(r.status, r.stderr).to.equal(0);
    const tree = unpack(path.join(dir, 'final.sif'));
    expect(fs.readFileSync(path.join(tree, 'opt/artifact'), 'utf8')).to.equal('built\n');
    expect(fs.readFileSync(path.join(tree, 'opt/out/sub/f'), 'utf8')).to.equal('deep\n');
    expect(fs.existsSync(path.join(tree, 'leak'))).to.equal(false);
    expect(fs.existsSync(path.join(tree, 'bin/busybox'))).to.equal(false); // the first stage's base stays out
    const labels = JSON.parse(fs.readFileSync(path.join(tree, '.singularity.d/labels.json'), 'utf8')) as Record<string, string>;
    expect(labels['org.label-schema.usage.singularity.deffile.bootstrap']).to.equal('scratch');
  });

  it('a failing %post: exit status and output tail, nothing at the output; SIGTERM mid-%post removes every tree', async () => {
    const dir = dirOf('fail');
    fs.copyFileSync(path.join(ctx, 'base.sif'), path.join(dir, 'base.sif'));
    write(dir, 'bad.def', 'Bootstrap: localimage\nFrom: base.sif\n%post\n    echo about to fail\n    exit 7\n');
    write(dir, 'slow.def', 'Bootstrap: localimage\nFrom: base.sif\n%post\n    echo sleeping-now\n    sleep 60\n');
    if (IS_ROOT) execFileSync('chown', ['-R', `${testUserIds().uid}:${testUserIds().gid}`, dir]);
    const r = build(dir, ['out.sif', 'bad.def']);
    expect(r.status).to.equal(73);
    expect(r.stderr).to.contain('HPCC_E_STEP_FAILED').and.contain('%post (bad.def:3) failed with exit status 7').and.contain('| about to fail');
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['bad.def', 'base.sif', 'slow.def']);

    // through the native front (dist/native/hpcc), as users run it: it execs the bundled Node, so the signal
    // reaches the build itself (bin/run.js on an older Node runs the build in a child it does not forward signals to)
    const { uid, gid } = testUserIds();
    const front = path.join(REPO_ROOT, 'dist/native/hpcc');
    const argv = ['build', 'out.sif', 'slow.def'];
    const child = IS_ROOT
      ? spawn('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', front, ...argv], { cwd: dir, env: { PATH: process.env.PATH!, HOME: '/home/hpcctest', ...env } })
      : spawn(front, argv, { cwd: dir, env: { ...process.env, ...env } });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const done = exitOf(child);
    const t0 = Date.now();
    while (!err.includes('sleeping-now') && Date.now() - t0 < 30_000) await new Promise((res) => setTimeout(res, 100));
    expect(err).to.contain('sleeping-now');
    child.kill('SIGTERM');
    const e = await done;
    expect(e.code).to.equal(143);
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['bad.def', 'base.sif', 'slow.def']);
    const t1 = Date.now(); // the namespace's processes die with its init, just after the build exits
    while (spawnSync('pgrep', ['-f', 'sleep 60']).status === 0 && Date.now() - t1 < 5000) await new Promise((res) => setTimeout(res, 100));
    expect(spawnSync('pgrep', ['-f', 'sleep 60']).status, 'the %post process survived').to.not.equal(0);
  });

  it('definition errors name file:line:column; unsupported agents; undefined arguments', () => {
    const dir = dirOf('errs');
    write(dir, 'yum.def', 'Bootstrap: yum\nOSVersion: 9\n');
    write(dir, 'arg.def', 'Bootstrap: scratch\n%runscript\n    echo {{ NOPE }}\n');
    let r = build(dir, ['o.sif', 'yum.def']);
    expect(r.status).to.equal(71);
    expect(r.stderr).to.contain('HPCC_E_DEF_AGENT').and.contain('yum.def:1:12: Bootstrap agent "yum" is not supported');
    r = build(dir, ['o.sif', 'arg.def']);
    expect(r.status).to.equal(71);
    expect(r.stderr).to.contain('arg.def:3:10: build argument "NOPE" is not defined').and.contain('--build-arg NOPE=VALUE');
    r = build(dir, ['--build-arg', 'NOPE=x', '--notest', 'o.sif', 'arg.def']);
    expect(r.status, r.stderr).to.equal(0);
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['arg.def', 'o.sif', 'yum.def']);
  });

  it('a hostile base image: links in it never lead %files, the metadata or %files from out of the tree', () => {
    const dir = dirOf('hostile');
    const victim = path.join(dir, 'victim'); // directories and a file of the user, outside every tree
    const victimSd = path.join(dir, 'victim-sd');
    const secret = path.join(dir, 'secret.txt');
    fs.mkdirSync(victim);
    fs.mkdirSync(victimSd);
    write(dir, 'secret.txt', 'the user\'s secret\n');
    write(dir, 'note.txt', 'note\n');
    const sandbox = path.join(dir, 'sandbox');
    execFileSync('cp', ['-a', path.join(unpack(img.sif)), sandbox]);
    fs.rmSync(path.join(sandbox, 'opt'), { recursive: true, force: true });
    fs.symlinkSync(victim, path.join(sandbox, 'opt'));
    fs.rmSync(path.join(sandbox, '.singularity.d'), { recursive: true });
    fs.symlinkSync(victimSd, path.join(sandbox, '.singularity.d'));
    fs.symlinkSync(secret, path.join(sandbox, 'leak'));
    if (IS_ROOT) execFileSync('chown', ['-R', '-h', `${testUserIds().uid}:${testUserIds().gid}`, dir]);
    write(dir, 'files.def', 'Bootstrap: localimage\nFrom: sandbox\n%files\n    note.txt /opt/note.txt\n%labels\n    K v\n%runscript\n    echo hi\n');
    const r = build(dir, ['--notest', 'files.sif', 'files.def']);
    expect(r.status, r.stderr).to.equal(0);
    expect(fs.readdirSync(victim), 'a %files copy followed the image\'s /opt link').to.deep.equal([]);
    expect(fs.readdirSync(victimSd), 'a metadata write followed the image\'s /.singularity.d link').to.deep.equal([]);
    const tree = unpack(path.join(dir, 'files.sif'));
    expect(fs.readFileSync(path.join(tree, victim, 'note.txt'), 'utf8')).to.equal('note\n');
    expect(fs.existsSync(path.join(tree, victimSd, 'labels.json'))).to.equal(true);

    write(dir, 'from.def', 'Bootstrap: localimage\nFrom: sandbox\nStage: one\n\nBootstrap: scratch\n%files from one\n    /leak /stolen\n');
    const f = build(dir, ['--notest', 'from.sif', 'from.def']);
    expect(f.status, f.stderr).to.not.equal(0);
    expect(f.stderr).to.contain('from.def:7').and.contain('/leak does not exist in that stage');
    expect(fs.existsSync(path.join(dir, 'from.sif'))).to.equal(false);
  });

  describe('OCI agents: oci, oci-archive, docker-archive and docker (test registry)', () => {
    let reg: TestRegistry | undefined;
    let dir: string;
    before(async function () {
      requireTools(this, 'umoci', 'skopeo');
      dir = dirOf('oci');
      const tree = path.join(dir, 'bbtree');
      execFileSync('cp', ['-a', path.join(unpack(img.sif)), tree]);
      fs.rmSync(path.join(tree, '.singularity.d'), { recursive: true });
      umociImage(path.join(dir, 'layout'), 'bb', [tree], '/bin/sh');
      execFileSync('skopeo', ['copy', '--quiet', `oci:${dir}/layout:bb`, `oci-archive:${dir}/bb.oci.tar:bb`]);
      execFileSync('skopeo', ['copy', '--quiet', `oci:${dir}/layout:bb`, `docker-archive:${dir}/bb.docker.tar:lab/bb:latest`]);
      reg = await startRegistry('none');
      await skopeoPush(reg, `oci:${dir}/layout:bb`, 'lab/bb:1.0');
      if (IS_ROOT) execFileSync('chown', ['-R', `${testUserIds().uid}:${testUserIds().gid}`, dir]);
    });
    after(async () => {
      await reg?.stop();
    });
    const agents: Array<[string, () => string]> = [
      ['oci', () => 'Bootstrap: oci\nFrom: layout:bb\n'],
      ['oci-archive', () => 'Bootstrap: oci-archive\nFrom: bb.oci.tar\n'],
      ['docker-archive', () => 'Bootstrap: docker-archive\nFrom: bb.docker.tar\n'],
      ['docker', () => `Bootstrap: docker\nFrom: ${reg!.host}/lab/bb:1.0\n`],
    ];
    for (const [agent, head] of agents) {
      it(`Bootstrap: ${agent}`, () => {
        write(dir, `${agent}.def`, `${head()}%post\n    echo "from ${agent}" > /marker\n%runscript\n    cat /marker\n`);
        const platform = agent === 'docker' ? ['--arch', goArch(process.arch)] : agent === 'oci' ? ['--platform', `linux/${goArch(process.arch)}`] : [];
        const r = build(dir, ['--notest', ...platform, `${agent}.sif`, `${agent}.def`], { HPCC_INSECURE_REGISTRIES: reg!.host });
        expect(r.status, r.stderr).to.equal(0);
        const run = hpccAs(dir, ['run', `${agent}.sif`], { env });
        expect(run.stdout).to.equal(`from ${agent}\n`);
        const tree = unpack(path.join(dir, `${agent}.sif`));
        expect(fs.existsSync(path.join(tree, '.singularity.d/env/10-docker2singularity.sh'))).to.equal(true);
      });
    }
  });
});
