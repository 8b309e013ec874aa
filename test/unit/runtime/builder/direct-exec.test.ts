/**
 * Direct exec without the sh wrapper when the image's env scripts are inert
 * (comments and blank lines only, as `hpcc build` writes them): the plan's
 * argv is the payload and its environment is what the wrapper would make.
 * The equivalence is checked by running the wrapper with the host's /bin/sh.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { isInertScript, needsShell, wrapperScript } from '../../../../src/runtime/builder/actions.js';
import { buildLaunch } from '../../../../src/runtime/builder/build.js';
import { planEnv } from '../../../../src/runtime/builder/env.js';
import type { BuildInput, ImageFacts, LaunchFlags } from '../../../../src/runtime/builder/types.js';
import { IMAGE_TREE, input, treeLookup } from './fixtures.js';

const INERT: Partial<ImageFacts> = {
  envScripts: ['99-base.sh', '01-base.sh', 'README'],
  envScriptText: {
    '01-base.sh': '#!/bin/sh\n# Base environment (hpcc build)\n',
    '99-base.sh': '#!/bin/sh\n\n  \t# Final environment hooks (hpcc build)\n\t\n',
  },
};

function parseEnv(list: string[]): Record<string, string> {
  return Object.fromEntries(list.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

/** Run argv[0..commandIndex) (the wrapper, its sourcing lines dropped: the scripts are inert) with /usr/bin/env -0 as the payload. */
function envThroughWrapper(b: ReturnType<typeof buildLaunch>, cwd: string): Record<string, string> {
  const script = wrapperScript([], b.env, true);
  const lines = b.plan.argv[2]!.split('\n');
  expect(lines.filter((l) => l.startsWith(". '/.singularity.d/env/"))).to.have.length(2);
  expect(lines.filter((l) => !l.startsWith(". '/.singularity.d/env/")).join('\n'), 'the wrapper differs only by its sourcing lines').to.equal(script);
  const r = spawnSync('/bin/sh', ['-c', script, 'hpcc-exec', '/usr/bin/env', '-0'], { env: parseEnv(b.plan.env), cwd, encoding: 'utf8' });
  expect(r.status, r.stderr).to.equal(0);
  return Object.fromEntries(r.stdout.split('\0').filter(Boolean).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

describe('runtime/builder: direct exec when the env scripts are inert', () => {
  const cwd = fs.realpathSync(os.tmpdir());

  it('inert scripts: blank lines, spaces, tabs and comments only; CR, commands and code are not', () => {
    expect(isInertScript('')).to.equal(true);
    expect(isInertScript('#!/bin/sh\n# x\n\n   # y\n\t#z')).to.equal(true);
    expect(isInertScript('#!/bin/sh\r\n# x\r\n')).to.equal(true); // a comment runs to the newline
    expect(isInertScript('#!/bin/sh\r\n\r\n')).to.equal(false); // a lone CR is a command to sh
    expect(isInertScript('#!/bin/sh\n:\n')).to.equal(false);
    expect(isInertScript('# a\nexport A=1 # b\n')).to.equal(false);
    expect(isInertScript('\v\n')).to.equal(false);
  });

  it('exec, run, shell, test: argv is the payload (commandIndex 0), no wrapper variables', () => {
    for (const [action, args, want] of [
      ['exec', ['ls', '-la'], ['ls', '-la']],
      ['run', ['a b', 'c'], ['/.singularity.d/runscript', 'a b', 'c']],
      ['shell', [], ['/bin/bash']],
      ['test', [], ['/bin/sh', '/.singularity.d/test']],
    ] as const) {
      const b = buildLaunch(input({ action, args: [...args] }, { image: INERT }));
      expect(b.plan.argv, action).to.deep.equal(want);
      expect(b.plan.commandIndex).to.equal(0);
      expect(b.sourcesScripts).to.equal(false);
      expect(b.plan.env.filter((v) => v.startsWith('__HPCC') || v.startsWith('__hpcc'))).to.deep.equal([]);
    }
  });

  it('the wrapper stays for a script that does something, a script whose text is unknown, bash as /bin/sh, and host variables the shell sets itself', () => {
    const wrapped = (b: ReturnType<typeof buildLaunch>): boolean => b.plan.commandIndex === 4 && b.plan.argv[0] === '/bin/sh';
    expect(wrapped(buildLaunch(input()))).to.equal(true); // the fixture's scripts export variables
    const unknown = { envScripts: [...INERT.envScripts!, '50-big.sh'], envScriptText: INERT.envScriptText };
    expect(wrapped(buildLaunch(input({}, { image: unknown })))).to.equal(true);
    const crlf = { ...INERT, envScriptText: { ...INERT.envScriptText, '01-base.sh': '#!/bin/sh\r\n\r\n' } };
    expect(wrapped(buildLaunch(input({}, { image: crlf })))).to.equal(true);
    const bash = { ...INERT, lookup: treeLookup({ ...IMAGE_TREE, '/bin/sh': '->bash' }) };
    expect(wrapped(buildLaunch(input({}, { image: bash })))).to.equal(true);
    const ifs = buildLaunch(input({}, { image: INERT, host: { env: { HOME: '/home/alice', IFS: ':' } } }));
    expect(wrapped(ifs)).to.equal(true);
    // --cleanenv drops the host variable, so nothing is left for the shell to shadow
    expect(wrapped(buildLaunch(input({ cleanEnv: true }, { image: INERT, host: { env: { HOME: '/home/alice', IFS: ':' } } })))).to.equal(false);
    const i = input({}, { image: INERT });
    expect(needsShell(i.image, planEnv(i, '/home/alice', '/'))).to.equal(false);
  });

  const cases: Record<string, { flags?: Partial<LaunchFlags>; env?: Record<string, string> }> = {
    defaults: {},
    'PREPEND_PATH and APPEND_PATH': { flags: { env: ['PREPEND_PATH=/pre'] }, env: { HPCCENV_APPEND_PATH: '/app' } },
    'empty PREPEND_PATH (the wrapper keeps the empty part)': { flags: { env: ['PREPEND_PATH=', 'APPEND_PATH='] } },
    'PATH emptied, then APPEND_PATH': { flags: { env: ['PATH=', 'APPEND_PATH=/a'] } },
    'LD_LIBRARY_PATH from --env, empty and set': { flags: { env: ['LD_LIBRARY_PATH='] } },
    'LD_LIBRARY_PATH set': { flags: { env: ['LD_LIBRARY_PATH=/l1:/l2', 'X=1', 'X=2'] } },
    'odd values, overrides of base variables, host variables': {
      flags: { env: ['WEIRD=a b"c$d\'e\nf', 'USER=bob', 'PWD=/elsewhere', 'HOME=/h2'] },
      env: { FOO: 'host', EMPTY: '', HPCCENV_USER: 'carol', 'A-B': 'x', TERM: 'vt100', LANG: 'C' },
    },
    '--cleanenv': { flags: { cleanEnv: true, env: ['K=v'] }, env: { FOO: 'host' } },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(`same environment as the wrapper (host /bin/sh): ${name}`, () => {
      const mk = (image: Partial<ImageFacts>): BuildInput =>
        input({ pwd: cwd, ...c.flags }, { image, host: { env: { HOME: '/home/alice', PATH: '/usr/bin:/bin', ...c.env } } });
      const direct = buildLaunch(mk(INERT));
      expect(direct.plan.commandIndex).to.equal(0);
      const wrapped = buildLaunch(mk({ ...INERT, envScriptText: {} }));
      expect(wrapped.plan.commandIndex).to.equal(4);
      expect(parseEnv(direct.plan.env)).to.deep.equal(envThroughWrapper(wrapped, cwd));
    });
  }
});
