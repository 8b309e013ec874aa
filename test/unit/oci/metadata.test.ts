import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UnsafePathError } from '../../../src/errors/index.js';
import { ShadowTree, normaliseTarPath } from '../../../src/oci/flatten/shadow.js';
import { dockerEnvScript, labelsJson, runscriptFor, shQuote, singularityFiles } from '../../../src/oci/metadata.js';
import { makeTempDir, removeTree } from '../../helpers/env.js';

describe('oci/metadata', () => {
  let dir = '';
  before(() => {
    dir = makeTempDir('hpcc-meta-');
  });
  after(() => {
    if (dir) removeTree(dir);
  });
  const runSh = (script: string, args: string[], env: Record<string, string> = {}) => {
    const f = path.join(dir, 'script');
    fs.writeFileSync(f, script);
    return spawnSync('/bin/sh', [f, ...args], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', ...env } });
  };

  it('writes Env in Apptainer form: run-time values win, PATH verbatim', () => {
    expect(dockerEnvScript(['PATH=/a:/b', 'A=x y', 'EMPTY', 'B=', 'bad-name=1'])).to.equal(
      '#!/bin/sh\nexport PATH="/a:/b"\nexport A="${A:-"x y"}"\nexport EMPTY="${EMPTY:-}"\nexport B="${B:-""}"\n# skipped: "bad-name" is not a valid variable name\n',
    );
  });

  it('keeps hostile values literal when sourced', () => {
    const evil = 'a"b$(touch /tmp/pwned)`id`\\c${HOME}\'d';
    const s = dockerEnvScript([`V=${evil}`]) + 'printf %s "$V"\n';
    expect(runSh(s, []).stdout).to.equal(evil);
    expect(runSh(s, [], { V: 'preset' }).stdout).to.equal('preset');
  });

  it('runscript: Entrypoint + Cmd, arguments replace Cmd, quoting survives', () => {
    const cfg = { Entrypoint: ['/bin/echo', "it's"], Cmd: ['a b', '$HOME', '*'] };
    expect(runSh(runscriptFor(cfg), []).stdout).to.equal("it's a b $HOME *\n");
    expect(runSh(runscriptFor(cfg), ['x', 'y z']).stdout).to.equal("it's x y z\n");
    expect(runSh(runscriptFor({ Cmd: ['/bin/echo', 'cmd only'] }), []).stdout).to.equal('cmd only\n');
    expect(runSh(runscriptFor({ Cmd: ['/bin/echo', 'cmd only'] }), ['/bin/echo', 'args']).stdout).to.equal('args\n');
    expect(runSh(runscriptFor({ Entrypoint: ['/bin/echo'] }), ['e']).stdout).to.equal('e\n');
    expect(runscriptFor(undefined)).to.contain('exec /bin/sh');
    expect(shQuote("a'b")).to.equal(`'a'\\''b'`);
    expect(shQuote('/usr/bin/x')).to.equal('/usr/bin/x');
  });

  it('labels sorted; the file set Apptainer images have', () => {
    expect(labelsJson({ Labels: { b: '1', a: '2' } })).to.equal('{\n\t"a": "2",\n\t"b": "1"\n}\n');
    const names = singularityFiles({}, 'BootStrap: docker\nFrom: x\n').map((f) => f.path);
    for (const n of ['.singularity.d/env/01-base.sh', '.singularity.d/env/10-docker2singularity.sh', '.singularity.d/env/90-environment.sh', '.singularity.d/env/99-base.sh', '.singularity.d/runscript', '.singularity.d/labels.json', '.singularity.d/Singularity', 'singularity']) {
      expect(names).to.include(n);
    }
  });
});

describe('oci/flatten shadow tree', () => {
  it('normalises names and refuses ..', () => {
    expect(normaliseTarPath('./a//b/./c/', 'l')).to.deep.equal(['a', 'b', 'c']);
    expect(normaliseTarPath('/abs', 'l')).to.deep.equal(['abs']);
    expect(normaliseTarPath('./', 'l')).to.deep.equal([]);
    for (const bad of ['../x', 'a/../../x', 'a/..', 'a\0b']) expect(() => normaliseTarPath(bad, 'l')).to.throw(UnsafePathError);
  });

  it('resolves parents through symlinks inside the root only', () => {
    const t = new ShadowTree();
    t.put(['usr', 'lib'], 'dir', 0);
    t.put(['lib'], 'symlink', 0, 'usr/lib');
    t.put(['abs'], 'symlink', 0, '/usr');
    t.put(['up'], 'symlink', 0, '../../../../etc');
    t.put(['loop'], 'symlink', 0, 'loop');
    expect(t.resolveParent(['lib', 'x.so'])).to.deep.equal(['usr', 'lib', 'x.so']);
    expect(t.resolveParent(['abs', 'lib', 'y'])).to.deep.equal(['usr', 'lib', 'y']);
    expect(t.resolveParent(['up', 'passwd'])).to.deep.equal(['etc', 'passwd']);
    expect(t.resolveParent(['lib'])).to.deep.equal(['lib']);
    expect(() => t.resolveParent(['loop', 'x'])).to.throw(UnsafePathError);
  });
});
