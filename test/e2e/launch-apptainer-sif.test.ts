/**
 * A SIF laid out the way Apptainer writes one, made without hpcc's writers:
 * the root filesystem by mksquashfs (-all-root, gzip), the container by the
 * reference SIF library (test/tools/sifcheck: deffile, JSON metadata, a
 * squashfs primary-system partition), the tree with Apptainer's
 * /.singularity.d (env scripts 01…99, runscript, test, labels, the def file,
 * the /singularity and /environment links). hpcc must run it as it runs its
 * own images.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, findTool, makeTempDir, removeTree, requireTestUser, requireTools, runHpcc, testUserIds } from '../helpers/env.js';
import { requireSifcheck, sifcheck } from '../integration/sif-helpers.js';
import { hpccAs, makeTree } from './launch-fixture.js';

describe('e2e: an Apptainer-style SIF (mksquashfs + the reference SIF library) runs', function () {
  this.timeout(120_000);
  let tmp: string;
  let sif: string;

  before(function () {
    requireTools(this, 'squashfuse_ll', 'busybox', 'mksquashfs');
    requireTestUser(this);
    requireSifcheck(this);
    tmp = makeTempDir('hpcc-e2e-apptainer-');
    const tree = path.join(tmp, 'tree');
    makeTree(tree, findTool('busybox')!);
    const sd = path.join(tree, '.singularity.d');
    // Apptainer's later env scripts: %post values, apps, and the base script that
    // appends the libs directory to LD_LIBRARY_PATH and sets a prompt.
    fs.writeFileSync(path.join(sd, 'env/91-environment.sh'), '#!/bin/sh\nexport POST_VAR="set in post"\n');
    fs.writeFileSync(path.join(sd, 'env/94-appsbase.sh'), '#!/bin/sh\n');
    fs.writeFileSync(path.join(sd, 'env/95-apps.sh'), '#!/bin/sh\n# apps\n');
    fs.writeFileSync(
      path.join(sd, 'env/99-base.sh'),
      '#!/bin/sh\nif [ -z "$LD_LIBRARY_PATH" ]; then\n  LD_LIBRARY_PATH="/.singularity.d/libs"\nelse\n  LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/.singularity.d/libs"\nfi\nPS1="Apptainer> "\nexport LD_LIBRARY_PATH PS1\n',
    );
    fs.writeFileSync(path.join(sd, 'env/99-runtimevars.sh'), '#!/bin/sh\nexport RUNTIME_SEEN="${ORDER}"\n');
    fs.writeFileSync(path.join(sd, 'Singularity'), 'Bootstrap: localimage\nFrom: busybox.sif\n\n%environment\n    export IMG_VAR=image\n');
    fs.mkdirSync(path.join(sd, 'actions'));
    fs.writeFileSync(path.join(sd, 'actions/run'), '#!/bin/sh\nexec /.singularity.d/runscript "$@"\n', { mode: 0o755 });
    fs.symlinkSync('.singularity.d/runscript', path.join(tree, 'singularity'));
    fs.symlinkSync('.singularity.d/env/90-environment.sh', path.join(tree, 'environment'));
    const sqfs = path.join(tmp, 'rootfs.sqfs');
    execFileSync(findTool('mksquashfs')!, [tree, sqfs, '-all-root', '-noappend', '-comp', 'gzip', '-quiet', '-no-progress'], { stdio: 'ignore' });
    fs.writeFileSync(path.join(tmp, 'inspect.json'), JSON.stringify({ data: { attributes: { labels: { 'org.hpcc.test': 'e2e' } } } }));
    sif = path.join(tmp, 'apptainer.sif');
    const r = sifcheck([
      'create', sif,
      `deffile:bootstrap:${path.join(sd, 'Singularity')}`,
      `json:inspect:${path.join(tmp, 'inspect.json')}`,
      `part:1:2:amd64:rootfs:${sqfs}`,
    ]);
    expect(r.status, r.stderr).to.equal(0);
    fs.chmodSync(sif, 0o644);
    if (IS_ROOT) {
      const { uid, gid } = testUserIds();
      execFileSync('chown', [`${uid}:${gid}`, tmp]);
    }
  });
  after(() => {
    if (tmp) removeTree(tmp);
  });

  const hpcc = (args: string[], env: Record<string, string> = {}) => hpccAs(tmp, args, { env });

  it('exec: the env scripts apply in order, 99-base.sh included; the image root belongs to nobody we map and stays read-only', () => {
    const r = hpcc(['exec', sif, 'sh', '-c', 'echo "$ORDER|$IMG_VAR|$POST_VAR|$RUNTIME_SEEN|$PS1"; echo "$LD_LIBRARY_PATH"; id -u; touch /bin/x 2>/dev/null || echo ro'], {
      LD_LIBRARY_PATH: '/host/lib',
    });
    expect(r.status, r.stderr).to.equal(0);
    const [vars, ldpath, uid, ro] = r.stdout.trim().split('\n');
    expect(vars).to.equal('01 10 90|image|set in post|01 10 90|Apptainer> ');
    // the host's LD_LIBRARY_PATH is never imported; the libs directory is there once
    expect(ldpath!.split(':')).to.include('/.singularity.d/libs');
    expect(ldpath).to.not.contain('/host/lib');
    expect(ldpath!.split(':').filter((p) => p === '/.singularity.d/libs')).to.have.length(1);
    expect(uid).to.equal(String(testUserIds().uid));
    expect(ro).to.equal('ro');
  });

  it('run follows the runscript with its arguments; test runs the test script; /singularity links to the runscript', () => {
    let r = hpcc(['run', sif, 'a b', 'c']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('runscript 2 args:\n[a b]\n[c]\n');
    r = hpcc(['test', sif]);
    expect(r.status).to.equal(3);
    expect(r.stdout).to.equal('testing image\n');
    r = hpcc(['exec', sif, '/singularity', 'x']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('runscript 1 args:\n[x]\n');
  });

  it('inspect reads its def file and runscript; sif list shows the reference library\'s objects', () => {
    let r = runHpcc(['inspect', '--deffile', sif]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('Bootstrap: localimage');
    r = runHpcc(['inspect', '--runscript', sif]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('runscript $# args:');
    r = runHpcc(['sif', 'list', sif]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/Def\.FILE/);
    expect(r.stdout).to.contain('FS (Squashfs/*System/amd64)');
  });
});
