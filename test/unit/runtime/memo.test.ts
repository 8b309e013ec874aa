/**
 * Launch memos (src/runtime/memo.ts): the variable rule (which
 * native/envrule.h applies too), the pass-through check run before a memo is written
 * (with the real plan builder), fact recording and the file layout the
 * native front reads. The front itself is exercised end to end in
 * test/e2e/launch-memo.test.ts.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderContractHeader } from '../../../src/cli/contract-header.js';
import { buildLaunch } from '../../../src/runtime/builder/build.js';
import { decodePlan } from '../../../src/runtime/codec.js';
import {
  ENV_CREDENTIAL_WORDS, MEMO_MAGIC, MEMO_TEMP_RE, MemoFacts, encodeMemo, envIsCredential, envKeyedByValue, fnv64, hostEnvPassesThrough,
  keyMaterial, stageMemo, withoutHostValues,
} from '../../../src/runtime/memo.js';
import type { LaunchPlan } from '../../../src/runtime/plan.js';
import { REPO_ROOT, makeTempDir, removeTree } from '../../helpers/env.js';
import { input } from './builder/fixtures.js';

describe('runtime/memo', () => {
  // the C side applies the same rule to the same lists (generated header): test/integration/launch-contract.test.ts
  it('keys by value the variables that shape a launch', () => {
    for (const n of ['HOME', 'PATH', 'PWD', 'HPCC_BIND', 'HPCCENV_X', 'SINGULARITYENV_Y', 'APPTAINER_BIND', 'XDG_RUNTIME_DIR', 'LD_PRELOAD', 'NODE_OPTIONS', '__HPCC_HOST_FOO', 'x'.repeat(256)])
      expect(envKeyedByValue(n), n).to.equal(true);
    for (const n of ['FOO', 'SLURM_PROCID', 'OLDPWD', 'TERM', 'LANG', 'HOMEDIR_X', 'MYPATH']) expect(envKeyedByValue(n), n).to.equal(false);
  });

  it('treats as credentials the variables keyed by value whose name holds a credential word in any case (the C side gets the words from the generated header)', () => {
    const h = renderContractHeader();
    expect(h).to.contain(`HPCC_ENV_CREDENTIAL_WORDS[] = {${ENV_CREDENTIAL_WORDS.map((w) => `"${w}"`).join(', ')}, 0}`);
    expect(fs.readFileSync(path.join(REPO_ROOT, 'native/envrule.h'), 'utf8')).to.match(/if \(!hpcc_env_keyed\(name, n\)\) return 0;/);
    const creds = ['APPTAINER_DOCKER_PASSWORD', 'SINGULARITY_DOCKER_PASSWORD', 'APPTAINER_DOCKER_USERNAME', 'APPTAINER_LIBRARY_ACCESS_TOKEN', 'HPCC_REGISTRY_TOKEN',
      'APPTAINERENV_GITHUB_TOKEN', 'SINGULARITYENV_AWS_SECRET_ACCESS_KEY', 'HPCC_AUTH_FILE', 'APPTAINER_Docker_Passwd', 'XDG_SESSION_COOKIE'];
    for (const n of creds) expect(envIsCredential(n), n).to.equal(true);
    for (const n of ['GITHUB_TOKEN', 'MY_PASSWORD', 'HPCC_BIND', 'APPTAINER_BIND', 'HOME', 'PATH', 'XDG_RUNTIME_DIR']) expect(envIsCredential(n), n).to.equal(false);
    expect(keyMaterial({ build: [], uid: 1, gid: 1, cwd: '/', argv: [], env: { APPTAINER_DOCKER_PASSWORD: 'xyz' } })).to.equal(null);
  });

  it('FNV-1a 64 as the C front computes it', () => {
    expect(fnv64(new Uint8Array())).to.equal('cbf29ce484222325');
    expect(fnv64(Buffer.from('a'))).to.equal('af63dc4c8601ec8c');
    expect(fnv64(Buffer.from('foobar'))).to.equal('85944171f73967e8');
  });

  describe('pass-through check (the plan rebuilt with marked values)', () => {
    const check = (flags: Parameters<typeof input>[0], env: Record<string, string>, over: Parameters<typeof input>[1] = {}) => {
      const base = input(flags, over);
      const withEnv = (e: Record<string, string>) => ({ ...base, host: { ...base.host, env: e } });
      const plan = buildLaunch(withEnv(env)).plan as LaunchPlan;
      return hostEnvPassesThrough(plan, env, (e) => buildLaunch(withEnv(e)).plan as LaunchPlan);
    };

    it('host variables that are only copied pass (wrapper: __HPCC_HOST_NAME; direct exec: NAME)', () => {
      const env = { HOME: '/home/alice', PATH: '/usr/bin:/bin', FOO: 'one', SLURM_PROCID: '3', TERM: 'xterm', OLDPWD: '/x' };
      expect(check({}, env)).to.equal(null);
      const inert = { envScripts: ['01-base.sh'], envScriptText: { '01-base.sh': '#!/bin/sh\n# nothing\n' } };
      expect(check({}, env, { image: inert })).to.equal(null);
      expect(check({ cleanEnv: true }, env)).to.equal(null);
      expect(check({ action: 'run', args: ['a'] }, env)).to.equal(null);
    });

    it('a variable also set by --env: the wrapper keeps the host value apart (passes); direct exec has only the flag value (refused)', () => {
      const env = { HOME: '/home/alice', PATH: '/usr/bin', FOO: 'host' };
      const base = input({ env: ['FOO=flag'] });
      const plan = buildLaunch({ ...base, host: { ...base.host, env } }).plan;
      expect(plan.env).to.include.members(['__HPCC_SET_FOO=flag', '__HPCC_HOST_FOO=host']);
      expect(check({ env: ['FOO=flag'] }, env)).to.equal(null);
      const inert = { envScripts: ['01-base.sh'], envScriptText: { '01-base.sh': '# nothing\n' } };
      expect(check({ env: ['FOO=flag'] }, env, { image: inert })).to.match(/FOO/);
    });

    it('the stored plan leaves out the pass-through values (the helper puts the current ones in)', () => {
      const env = { HOME: '/home/alice', PATH: '/usr/bin', TOKEN: 'secret', HPCC_X: 'kept' };
      for (const image of [{}, { envScripts: ['01-base.sh'], envScriptText: { '01-base.sh': '# nothing\n' } }]) {
        const base = input({}, { image });
        const plan = buildLaunch({ ...base, host: { ...base.host, env } }).plan as LaunchPlan;
        const stored = withoutHostValues(plan, env);
        expect(plan.env.join('\n')).to.contain('secret');
        expect(stored.env.join('\n')).not.to.contain('secret');
        expect(stored.env.filter((e) => /^(__HPCC_HOST_)?TOKEN=/.test(e))).to.have.length(1).and.satisfy((l: string[]) => l[0]!.endsWith('TOKEN='));
        expect(stored.env.filter((e) => !/TOKEN=/.test(e))).to.deep.equal(plan.env.filter((e) => !/TOKEN=/.test(e)));
        expect({ ...stored, env: [] }).to.deep.equal({ ...plan, env: [] });
      }
    });

    it('a value that shapes the plan is refused, and so is a rebuild that throws', () => {
      const plan = buildLaunch(input()).plan as LaunchPlan;
      const env = { FOO: 'x' };
      expect(hostEnvPassesThrough(plan, env, () => ({ ...plan, cwd: '/elsewhere' }))).to.match(/shapes the plan/);
      expect(hostEnvPassesThrough(plan, env, () => ({ ...plan, env: [...plan.env, 'EXTRA=1'] }))).to.match(/shapes the plan/);
      expect(
        hostEnvPassesThrough(plan, env, () => {
          throw new Error('boom');
        }),
      ).to.match(/cannot be rebuilt.*boom/);
    });
  });

  describe('facts, key and file', () => {
    let tmp: string;
    beforeEach(() => (tmp = makeTempDir('hpcc-memo-unit-')));
    afterEach(() => removeTree(tmp));

    it('records identities, absences and content sums once each; odd paths and unreadable files spoil the memo', () => {
      const f = new MemoFacts();
      const file = path.join(tmp, 'a');
      fs.writeFileSync(file, 'x');
      f.id(file);
      f.id(file);
      f.id(path.join(tmp, 'missing'));
      f.id(path.join(file, 'below-a-file'));
      f.look('/x', null);
      f.acc('/usr/bin/true', 1, true);
      f.own(tmp, 0);
      f.sum(file);
      const st = fs.statSync(file, { bigint: true });
      expect(f.records).to.deep.equal([
        `id\0${file}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}\n`,
        `id\0${path.join(tmp, 'missing')}\0absent\n`,
        `id\0${path.join(file, 'below-a-file')}\0absent\n`,
        'look\0/x\0absent\n',
        'acc\0/usr/bin/true\x001\x001\n',
        `own\0${tmp}\x000\n`,
        `sum\0${file}\0${fnv64(Buffer.from('x'))}\n`,
      ]);
      expect(f.spoiled).to.equal(null);
      f.look('/with\nnewline', null);
      expect(f.spoiled).to.match(/newline/);
      const g = new MemoFacts();
      g.sum(path.join(tmp, 'missing'));
      expect(g.spoiled).to.match(/cannot read/);
    });

    it('key material: NUL-separated fields, keyed variables with their values, the others by name', () => {
      const helper = path.join(tmp, 'h');
      fs.writeFileSync(helper, '');
      const key = keyMaterial({ build: [helper, helper, helper], uid: 7, gid: 8, cwd: '/w', argv: ['exec', 'img.sif'], env: { FOO: 'secret', HPCC_X: 'y', U: undefined } })!;
      const fields = key.toString('utf8').split('\0');
      expect(fields.at(-1)).to.equal('');
      expect(fields.slice(0, 2)).to.deep.equal(['hpcc-memo/1', 'build']);
      expect(fields.slice(5)).to.include.ordered.members(['ids', '7', '8', 'release']);
      expect(fields.slice(fields.indexOf('cwd'))).to.deep.equal(['cwd', '/w', 'argv', '2', 'exec', 'img.sif', 'env', '2', 'FOO', 'HPCC_X=y', '']);
      expect(keyMaterial({ build: [path.join(tmp, 'nope')], uid: 0, gid: 0, cwd: '/', argv: [], env: {} })).to.equal(null);
    });

    it('the file: magic, key, facts, then the plan to the end; written 0600 atomically, too large refused', () => {
      const plan = buildLaunch(input()).plan as LaunchPlan;
      const f = new MemoFacts();
      f.look('/tmp', { kind: 'dir', real: '/tmp' });
      const key = Buffer.from('k\0');
      const bytes = encodeMemo(key, f, plan)!;
      const head = `${MEMO_MAGIC}key 2\nk\0\nfacts ${f.records[0]!.length}\n${f.records[0]}\nplan `;
      expect(bytes.subarray(0, head.length).toString('latin1')).to.equal(head);
      const nl = bytes.indexOf(10, head.length);
      const len = Number(bytes.subarray(head.length, nl).toString());
      expect(nl + 1 + len).to.equal(bytes.length);
      expect(decodePlan(bytes.subarray(nl + 1))).to.deep.equal(JSON.parse(JSON.stringify(plan)));
      const file = path.join(tmp, 'cache', 'launch', '0123456789abcdef.memo');
      const saved = process.env.HPCC_CACHEDIR;
      process.env.HPCC_CACHEDIR = path.join(tmp, 'cache');
      try {
        expect(stageMemo(path.join(tmp, 'elsewhere', '0123456789abcdef.memo'), bytes), 'only into the memo directory').to.equal(null);
        // the name staging files had before: a symlink planted there is not followed
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
        const victim = path.join(tmp, 'victim');
        fs.writeFileSync(victim, 'untouched');
        fs.symlinkSync(victim, `${file}.${process.pid}.tmp`);
        // a staging file of a launch killed an hour ago is pruned; a fresh one is not
        const stale = `${file}.1-0000000000000000.tmp`;
        const fresh = `${file}.2-0000000000000000.tmp`;
        fs.writeFileSync(stale, '');
        fs.writeFileSync(fresh, '');
        fs.utimesSync(stale, new Date(Date.now() - 7_200_000), new Date(Date.now() - 7_200_000));
        const staged = stageMemo(file, bytes)!;
        const temps = fs.readdirSync(path.dirname(file)).filter((n) => MEMO_TEMP_RE.test(n) && n.includes(`.${process.pid}-`));
        expect(temps).to.have.length(1);
        expect(temps[0]).to.not.equal(path.basename(`${file}.${process.pid}.tmp`));
        expect(staged.commit()).to.equal(true);
        expect(fs.readFileSync(victim, 'utf8')).to.equal('untouched');
        expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
        expect(fs.statSync(path.dirname(file)).mode & 0o777).to.equal(0o700);
        expect(fs.readdirSync(path.dirname(file)).sort()).to.deep.equal([path.basename(file), path.basename(fresh), `${path.basename(file)}.${process.pid}.tmp`].sort());
      } finally {
        if (saved === undefined) delete process.env.HPCC_CACHEDIR;
        else process.env.HPCC_CACHEDIR = saved;
      }
      const big = { ...plan, env: Array.from({ length: 40 }, (_, i) => `V${i}=${'x'.repeat(120_000)}`) };
      expect(encodeMemo(key, f, big)).to.equal(null);
    });
  });
});
