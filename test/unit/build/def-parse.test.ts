import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DefinitionError } from '../../../src/errors/index.js';
import { fileSections, labelsOf, parseDefinition, readBuildArgs, sectionScript, stageSource } from '../../../src/build/def/index.js';
import { REPO_ROOT, makeTempDir, removeTree } from '../../helpers/env.js';

/** The error parseDefinition gives, checked to be a DefinitionError. */
function errorOf(text: string, args: Record<string, string> = {}): DefinitionError {
  try {
    parseDefinition('app.def', text, new Map(Object.entries(args)));
  } catch (e) {
    expect(e).to.be.instanceOf(DefinitionError);
    return e as DefinitionError;
  }
  throw new Error('expected a DefinitionError');
}

function expectAt(text: string, code: string, line: number, column: number, what: RegExp, args: Record<string, string> = {}): DefinitionError {
  const e = errorOf(text, args);
  expect(e.code).to.equal(code);
  expect(e.exitCode).to.equal(71);
  expect(e.message.split('\n')[0]).to.match(new RegExp(`^app\\.def:${line}:${column}: `));
  expect(e.message).to.match(what);
  expect(e.details).to.include({ file: 'app.def', line, column });
  expect(e.message.split('\n')[1]!.trim()).to.equal(text.split('\n')[line - 1]!.trim());
  expect(e.hint).to.be.a('string').and.not.equal('');
  return e;
}

const FULL = `# comment above
Bootstrap: docker
From: debian:{{ VERSION }}   # trailing comment
Stage: build

%arguments
    VERSION=12
    GREETING=hello world

%setup
    touch "$APPTAINER_ROOTFS/setup-ran"

%files
    a.txt /opt/a.txt
    "with space.txt"
    b/* /opt/b/

%post -c /bin/bash
    echo {{ GREETING }} > /greeting
%post
    echo second part

%environment
    export A=1

%runscript
    #!/bin/bash
    echo run "$@"

%startscript
    echo start

%test
    test -f /greeting

%labels
    Author someone@example.org
    Version {{ VERSION }}
    Empty

%help
    Help text.

Bootstrap: scratch
Stage: final
%files from build
    /greeting /greeting
    /opt /opt
`;

describe('build/def: definition file parser', () => {
  it('reads every section, the header and %arguments substitution', () => {
    const d = parseDefinition('app.def', FULL);
    expect(d.stages).to.have.length(2);
    const [s0, s1] = d.stages;
    expect(s0!.name).to.equal('build');
    expect(s0!.header.get('bootstrap')!.value).to.equal('docker');
    expect(s0!.header.get('from')).to.include({ value: 'debian:12', line: 3, column: 7 });
    expect(stageSource(d, s0!).ref).to.include({ transport: 'docker', repository: 'library/debian', tag: '12' });
    expect(sectionScript(s0!, 'setup')!.script).to.contain('touch "$APPTAINER_ROOTFS/setup-ran"');
    const post = sectionScript(s0!, 'post')!;
    expect(post.args).to.equal('-c /bin/bash');
    expect(post.script).to.contain('echo hello world > /greeting').and.contain('echo second part');
    expect(sectionScript(s0!, 'environment')!.script.trim()).to.equal('export A=1');
    expect(sectionScript(s0!, 'runscript')!.script.trim()).to.match(/^#!\/bin\/bash\n\s+echo run/);
    expect(sectionScript(s0!, 'startscript')!.script.trim()).to.equal('echo start');
    expect(sectionScript(s0!, 'test')!.script.trim()).to.equal('test -f /greeting');
    expect(sectionScript(s0!, 'help')!.script.trim()).to.equal('Help text.');
    expect(labelsOf(s0!)).to.deep.equal([['Author', 'someone@example.org'], ['Version', '12'], ['Empty', '']]);
    const files = fileSections(s0!);
    expect(files).to.have.length(1);
    expect(files[0]!.entries).to.deep.equal([
      { src: 'a.txt', dst: '/opt/a.txt', line: 14 },
      { src: 'with space.txt', dst: '', line: 15 },
      { src: 'b/*', dst: '/opt/b/', line: 16 },
    ]);
    expect(s1!.name).to.equal('final');
    expect(stageSource(d, s1!).agent).to.equal('scratch');
    const from = fileSections(s1!);
    expect(from[0]!.from).to.equal('build');
    expect(from[0]!.entries.map((e) => e.src)).to.deep.equal(['/greeting', '/opt']);
    expect(d.text).to.contain('From: debian:12').and.contain('VERSION=12'); // %arguments kept as written
    expect(d.unusedArgs).to.deep.equal([]);
  });

  it('--build-arg overrides %arguments; unused arguments are reported', () => {
    const d = parseDefinition('app.def', FULL, new Map([['VERSION', '11'], ['NOPE', 'x']]));
    expect(d.stages[0]!.header.get('from')!.value).to.equal('debian:11');
    expect(labelsOf(d.stages[0]!)).to.deep.include(['Version', '11']);
    expect(d.unusedArgs).to.deep.equal(['NOPE']);
  });

  it('reads --build-arg-file then --build-arg (later wins), refusing lines that are not NAME=VALUE', async () => {
    const tmp = makeTempDir('hpcc-def-args-');
    try {
      const f = path.join(tmp, 'args');
      fs.writeFileSync(f, '# comment\nA=1\nB = two words\n\n');
      const m = await readBuildArgs(['A=3', 'C='], f);
      expect([...m]).to.deep.equal([['A', '3'], ['B', 'two words'], ['C', '']]);
      fs.writeFileSync(f, 'A=1\nnot a pair\n');
      await readBuildArgs([], f).then(
        () => expect.fail('accepted'),
        (e: Error) => expect(e.message).to.contain(`${f}:2: "not a pair" is not NAME=VALUE`),
      );
      await readBuildArgs(['=x']).then(
        () => expect.fail('accepted'),
        (e: Error) => expect(e.message).to.contain('expected NAME=VALUE'),
      );
    } finally {
      removeTree(tmp);
    }
  });

  it('keeps {{ ... }} that is not a name (Go templates in scripts)', () => {
    const d = parseDefinition('app.def', 'Bootstrap: scratch\n%post\n    docker inspect -f "{{ .Id }}" x\n');
    expect(sectionScript(d.stages[0]!, 'post')!.script).to.contain('"{{ .Id }}"');
  });

  describe('errors name file:line:column, the offending text and a hint', () => {
    it('undefined argument', () => {
      expectAt('Bootstrap: scratch\n%post\n    echo {{ WHO }}\n', 'HPCC_E_DEF_ARGUMENT', 3, 10, /build argument "WHO" is not defined/);
    });
    it('unterminated {{', () => {
      expectAt('Bootstrap: scratch\n%runscript\n  echo {{ WHO\n', 'HPCC_E_DEF_TEMPLATE', 3, 8, /unterminated "\{\{"/);
    });
    it('a bad %arguments line', () => {
      expectAt('Bootstrap: scratch\n%arguments\n  JUSTANAME\n', 'HPCC_E_DEF_ARGUMENT', 3, 3, /"JUSTANAME" in %arguments is not NAME=VALUE/);
    });
    it('unknown section', () => {
      expectAt('Bootstrap: scratch\n\n%pots\n  echo\n', 'HPCC_E_DEF_SECTION', 3, 1, /unknown section "%pots"/);
    });
    it('SCIF app sections', () => {
      expectAt('Bootstrap: scratch\n  %appinstall foo\n  make\n', 'HPCC_E_DEF_UNSUPPORTED', 2, 3, /SCIF app section "%appinstall"/);
    });
    it('%pre', () => {
      expectAt('Bootstrap: scratch\n%pre\n', 'HPCC_E_DEF_UNSUPPORTED', 2, 1, /"%pre" is not supported/);
    });
    it('bad %files arguments', () => {
      expectAt('Bootstrap: scratch\n%files to x\n', 'HPCC_E_DEF_SECTION', 2, 8, /expected "%files" or "%files from STAGE"/);
    });
    it('%files from an unknown (or later) stage', () => {
      expectAt('Bootstrap: scratch\nStage: a\n%files from b\n  /x\nBootstrap: scratch\nStage: b\n', 'HPCC_E_DEF_STAGE', 3, 8, /no earlier stage is named "b"/);
    });
    it('a stage name used twice', () => {
      expectAt('Bootstrap: scratch\nStage: a\nBootstrap: scratch\nStage: a\n', 'HPCC_E_DEF_STAGE', 4, 8, /stage name "a" is used twice/);
    });
    it('missing Bootstrap', () => {
      expectAt('# only a comment\nFrom: debian:12\n%post\n  true\n', 'HPCC_E_DEF_NO_BOOTSTRAP', 2, 1, /missing "Bootstrap:" header/);
    });
    it('an empty file', () => {
      expectAt('\n# nothing\n', 'HPCC_E_DEF_EMPTY', 1, 1, /empty/);
    });
    it('unknown Bootstrap agent', () => {
      expectAt('Bootstrap: dokcer\nFrom: debian\n', 'HPCC_E_DEF_AGENT', 1, 12, /unknown Bootstrap agent "dokcer"/);
    });
    it('unsupported agents', () => {
      for (const a of ['library', 'yum', 'zypper', 'shub', 'oras']) {
        expectAt(`Bootstrap: scratch\nStage: one\n\nBootstrap: ${a}\nFrom: x\n`, 'HPCC_E_DEF_AGENT', 4, 12, new RegExp(`agent "${a}" is not supported`));
      }
    });
    it('bad From', () => {
      expectAt('Bootstrap: docker\nFrom:   Debian:12!\n', 'HPCC_E_DEF_FROM', 2, 9, /bad From "Debian:12!"/);
    });
    it('missing From', () => {
      expectAt('Bootstrap: localimage\n%post\n', 'HPCC_E_DEF_FROM', 1, 12, /needs a "From:" header/);
    });
    it('debootstrap without OSVersion', () => {
      expectAt('Bootstrap: debootstrap\nMirrorURL: http://deb.debian.org/debian\n', 'HPCC_E_DEF_HEADER', 1, 12, /needs "OSVersion:"/);
    });
    it('unknown header key, and a header line without a colon', () => {
      expectAt('Bootstrap: docker\nFrom: debian\nFrmo: x\n', 'HPCC_E_DEF_HEADER', 3, 1, /unknown header key "Frmo"/);
      expectAt('Bootstrap: docker\nFrom: debian\n  post\n', 'HPCC_E_DEF_HEADER', 3, 3, /header line "post" is not "Key: value"/);
      expectAt('Bootstrap: docker\nFrom:\n', 'HPCC_E_DEF_HEADER', 2, 5, /"From" has no value/);
    });
    it('text before the first Bootstrap', () => {
      expectAt('%post\n  true\nBootstrap: scratch\n', 'HPCC_E_DEF_NO_BOOTSTRAP', 1, 1, /text before the first "Bootstrap:"/);
    });
  });

  it('parses every definitions/**/*.def of the repository', () => {
    const found: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.def')) found.push(p);
      }
    };
    walk(path.join(REPO_ROOT, 'definitions'));
    expect(found.length).to.be.greaterThan(0);
    for (const f of found) {
      const d = parseDefinition(f, fs.readFileSync(f, 'utf8'));
      expect(d.stages.length, f).to.be.greaterThan(0);
      for (const st of d.stages) stageSource(d, st);
    }
  });
});
