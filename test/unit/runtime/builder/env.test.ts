import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { UsageError } from '../../../../src/errors/index.js';
import { wrapperScript } from '../../../../src/runtime/builder/actions.js';
import { buildLaunch } from '../../../../src/runtime/builder/build.js';
import { parseEnvFile, parseEnvFlag, planEnv, scanEnvScript } from '../../../../src/runtime/builder/env.js';
import { explainEnv, renderExplanation } from '../../../../src/runtime/builder/explain.js';
import { input } from './fixtures.js';

/** Run the wrapper with the host's /bin/sh (no env scripts) and the plan's environment; return the resulting env. */
function runWrapper(env: string[], script: string): Record<string, string> {
  const r = spawnSync('/bin/sh', ['-c', script, 'hpcc-test', '/usr/bin/env', '-0'], {
    env: Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).to.equal(0);
  return Object.fromEntries(r.stdout.split('\0').filter(Boolean).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

describe('runtime/builder: environment', () => {
  it('--env-file: comments, export prefix, quotes, line numbers in errors', () => {
    expect(parseEnvFile('# c\n\nexport A="x y"\nB=\'q\'\nC=a=b\n', 'f').map((v) => [v.name, v.value, v.source])).to.deep.equal([
      ['A', 'x y', '--env-file f:3'],
      ['B', 'q', '--env-file f:4'],
      ['C', 'a=b', '--env-file f:5'],
    ]);
    expect(() => parseEnvFile('A=1\nnot a line\n', 'f')).to.throw(UsageError, /f:2/);
  });

  it('--env needs NAME=VALUE with a shell name', () => {
    expect(parseEnvFlag('A=b=c')).to.deep.equal({ name: 'A', value: 'b=c', source: '--env' });
    expect(() => parseEnvFlag('A')).to.throw(UsageError);
    expect(() => parseEnvFlag('1A=x')).to.throw(UsageError);
  });

  it('precedence: HPCCENV_ < --env-file < --env; PREPEND/APPEND_PATH split out', () => {
    const i = input(
      { env: ['X=flag', 'APPEND_PATH=/a2'], envFiles: [{ path: 'f', text: 'X=file\nY=file\n' }] },
      { host: { env: { HPCCENV_X: 'hpccenv', HPCCENV_Z: 'z', HPCCENV_PREPEND_PATH: '/p', HOME: '/home/alice' } } },
    );
    const e = planEnv(i, '/home/alice', '/');
    expect(e.inject.map((v) => `${v.name}=${v.value}`)).to.deep.equal(['X=hpccenv', 'Z=z', 'X=file', 'Y=file', 'X=flag']);
    expect(e.prependPath?.value).to.equal('/p');
    expect(e.appendPath?.value).to.equal('/a2');
  });

  it('host variables: restored unless --cleanenv; PATH, LD_LIBRARY_PATH, LD_PRELOAD and odd names never', () => {
    const hostEnv = { LD_LIBRARY_PATH: '/x', LD_PRELOAD: '/y.so', PATH: '/hostbin', FOO: 'foo', 'A-B': '1', HPCCENV_Q: '1', TERM: 't', HOME: '/home/alice' };
    const e = planEnv(input({}, { host: { env: hostEnv } }), '/home/alice', '/');
    expect(e.restore.map((v) => v.name)).to.deep.equal(['FOO']);
    expect(e.base.find((v) => v.name === 'TERM')?.value).to.equal('t');
    const clean = planEnv(input({ cleanEnv: true }, { host: { env: hostEnv } }), '/home/alice', '/');
    expect(clean.restore).to.deep.equal([]);
    expect(clean.inject.map((v) => v.name)).to.deep.equal(['Q']);
  });

  it('the sh wrapper applies the precedence (run with the host /bin/sh)', () => {
    const i = input(
      { env: ['X=flag', 'PREPEND_PATH=/pre', 'WEIRD=a b"c$d\'e\nf'] },
      { host: { env: { HOME: '/home/alice', HPCCENV_X: 'hpccenv', HPCCENV_APPEND_PATH: '/app', FOO: 'host', LD_LIBRARY_PATH: '/hostlib', USER: 'mallory' } } },
    );
    // the fixture image's env scripts set variables, so the payload starts through the wrapper
    const b = buildLaunch(i);
    const [, , script] = b.plan.argv;
    // commandIndex marks where the payload starts: everything before it is the wrapper
    expect(b.plan.argv.slice(0, b.plan.commandIndex)).to.deep.equal(['/bin/sh', '-c', script, 'hpcc-exec']);
    expect(b.plan.argv.slice(b.plan.commandIndex)).to.deep.equal(['ls', '-la']);
    expect(script).to.contain(". '/.singularity.d/env/01-base.sh'");
    // the host has no /.singularity.d: run the same wrapper without the sourcing lines
    const out = runWrapper(b.plan.env, wrapperScript([], b.env, true));
    expect(out.X).to.equal('flag');
    expect(out.WEIRD).to.equal('a b"c$d\'e\nf');
    expect(out.PATH).to.equal('/pre:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/app');
    expect(out.FOO).to.equal('host');
    expect(out.USER).to.equal('alice');
    expect(out.LD_LIBRARY_PATH).to.equal('/.singularity.d/libs');
    expect(Object.keys(out).filter((k) => k.startsWith('__HPCC') || k === '__hpcc_n')).to.deep.equal([]);
  });

  it('the wrapper text holds names only, never values', () => {
    const i = input({ env: ['SECRET=hunter2'] }, { host: { env: { HOME: '/h', TOKEN: 's3cr3t' } } });
    const e = planEnv(i, '/h', '/');
    const s = wrapperScript(['01-base.sh'], e, false);
    expect(s).to.not.contain('hunter2').and.not.contain('s3cr3t');
    expect(s).to.contain('SECRET').and.contain('TOKEN');
  });

  it('scans env scripts for assignments (static view for --explain-env)', () => {
    expect(scanEnvScript('#!/bin/sh\nexport A="${A:-"v"}"\n  B=2\nif x; then :; fi\n')).to.deep.equal([
      { name: 'A', expr: '"${A:-"v"}"' },
      { name: 'B', expr: '2' },
    ]);
  });

  it('--explain-env names the source of each variable and what it overrides', () => {
    const i = input({ env: ['GREETING=hi'] }, { host: { env: { HOME: '/home/alice', HPCCENV_PREPEND_PATH: '/p', EDITOR: 'vi' } } });
    const rows = explainEnv(buildLaunch(i), i.image);
    const by = Object.fromEntries(rows.map((r) => [r.name, r]));
    expect(by.GREETING).to.deep.include({ value: 'hi', source: '--env', overrides: ['image /.singularity.d/env/90-environment.sh'] });
    expect(by.PATH!.value).to.equal('/p:"/opt/conda/bin:/usr/bin:/bin"');
    expect(by.PATH!.source).to.contain('10-docker2singularity.sh').and.contain('HPCCENV_PREPEND_PATH');
    expect(by.EDITOR).to.deep.include({ value: 'vi', source: 'host' });
    expect(by.LD_LIBRARY_PATH!.value).to.equal('/.singularity.d/libs');
    expect(renderExplanation(rows)).to.match(/^GREETING=hi\n {4}from --env \(overrides image/m);
  });
});
