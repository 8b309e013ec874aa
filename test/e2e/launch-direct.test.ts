/**
 * Direct exec, end to end: an image whose /.singularity.d/env scripts are
 * comments only (what `hpcc build` writes) runs its payload without the sh
 * wrapper (the plan's argv is the command itself), with the same
 * environment, exit codes, runscript and saved-plan behaviour as the wrapper
 * gives (launch.test.ts covers the wrapper with an image whose env scripts
 * set variables).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodePlan } from '../../src/runtime/codec.js';
import { REPO_ROOT, removeTree, runUnprivileged } from '../helpers/env.js';
import { hpccAs, makeE2eImage } from './launch-fixture.js';

describe('e2e: direct exec when the image env scripts are inert', function () {
  this.timeout(180_000);
  let tmp: string;
  let sif: string;
  const hpcc = (args: string[], env?: Record<string, string>) => hpccAs(tmp, args, env ? { env } : {});
  const helper = path.join(REPO_ROOT, 'dist/native/hpcc-launch');
  const envLines = (out: string) => out.split('\n').filter(Boolean);

  before(function () {
    ({ tmp, sif } = makeE2eImage(this, 'hpcc-e2e-direct-', { inert: true }));
  });
  after(() => {
    if (tmp) removeTree(tmp);
  });

  it('the plan execs the command itself; --env, PREPEND_PATH, HPCCENV_, host variables and the libs directory apply as with the wrapper', () => {
    const plan = path.join(tmp, 'direct.plan');
    const env = { HPCCENV_APPEND_PATH: '/app', HOSTVAR: 'from host' };
    let r = hpcc(['exec', '--plan-out', plan, '--env', 'X=a b', '--env', 'PREPEND_PATH=/pre', sif, 'env'], env);
    expect(r.status, r.stderr).to.equal(0);
    const p = decodePlan(fs.readFileSync(plan));
    expect([p.argv, p.commandIndex]).to.deep.equal([['env'], 0]);
    r = hpcc(['exec', '--env', 'X=a b', '--env', 'PREPEND_PATH=/pre', sif, 'env'], env);
    expect(r.status, r.stderr).to.equal(0);
    const lines = envLines(r.stdout);
    expect(lines).to.include.members([
      'X=a b',
      'PATH=/pre:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/app',
      'HOSTVAR=from host',
      'LD_LIBRARY_PATH=/.singularity.d/libs',
      'PS1=hpcc> ',
    ]);
    expect(r.stdout).not.to.contain('__HPCC_');
  });

  it('exit codes pass through; a missing command gives 127 as through the wrapper', () => {
    expect(hpcc(['exec', sif, 'sh', '-c', 'exit 42']).status).to.equal(42);
    expect(hpcc(['exec', sif, 'false']).status).to.equal(1);
    const r = hpcc(['exec', sif, 'no-such-command']);
    expect(r.status).to.equal(127);
    expect(r.stderr).to.contain('no-such-command');
  });

  it('run follows the runscript with its arguments; test runs the test script', () => {
    let r = hpcc(['run', sif, 'a b', 'c']);
    expect([r.status, r.stdout]).to.deep.equal([0, 'runscript 2 args:\n[a b]\n[c]\n']);
    r = hpcc(['test', sif]);
    expect(r.status).to.equal(3);
    expect(r.stdout).to.equal('testing \n');
  });

  it('shell reads commands from a piped stdin', () => {
    const r = hpccAs(tmp, ['shell', '--env', 'X=x', sif], { input: 'echo "shell $X"; exit 4\n' });
    expect([r.status, r.stdout]).to.deep.equal([4, 'shell x\n']);
  });

  it('a saved plan run with CMD ARGS replaces the whole command and keeps the environment', () => {
    const plan = path.join(tmp, 'saved.plan');
    let r = hpcc(['exec', '--plan-out', plan, '--env', 'FROM_FLAG=flag value', sif, 'true']);
    expect(r.status, r.stderr).to.equal(0);
    r = runUnprivileged(helper, ['--plan', plan, 'sh', '-c', 'echo "$FROM_FLAG|$1"; exit 5', 'sh', 'a b'], { cwd: tmp, timeout: 60_000 });
    expect([r.status, r.stdout]).to.deep.equal([5, 'flag value|a b\n']);
    r = runUnprivileged(helper, ['--plan', plan, 'env'], { cwd: tmp, timeout: 60_000 });
    expect(r.status, r.stderr).to.equal(0);
    expect(envLines(r.stdout)).to.include('FROM_FLAG=flag value');
  });
});
