/**
 * A compute node without user namespaces (issue: "a node without user
 * namespaces (doctor's hint)"): on a 2-node test cluster whose node2 runs its
 * slurmd where user.max_user_namespaces is 0 for everything below it
 * (test/helpers/slurm-cluster.ts, noUserns), as the unprivileged test user:
 * hpcc-srun's ranks there and plain `srun hpcc exec` fail with
 * HPCC_E_LAUNCH_USERNS (exit 99) and the hint to run `hpcc doctor`, which names
 * the sysctl and its fix; node1 runs the same step.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, REPO_ROOT, removeTree, requireRoot, requireTestUser, requireTools, runUnprivileged, testUserIds } from '../helpers/env.js';
import { startCluster, type TestCluster } from '../helpers/slurm-cluster.js';
import { makeE2eImage, type E2eImage } from './launch-fixture.js';

const SRUN = path.join(REPO_ROOT, 'slurm/hpcc-srun');
const FRONT = path.join(REPO_ROOT, 'dist/native/hpcc');

describe('e2e: Slurm, a node without user namespaces', function () {
  this.timeout(180_000);
  let img: E2eImage;
  let cluster: TestCluster | undefined;
  let work: string;

  before(async function () {
    requireRoot(this);
    requireTestUser(this);
    requireTools(this, 'slurmctld', 'slurmd', 'srun', 'munged', 'ip', 'nsenter', 'unshare');
    img = makeE2eImage(this, 'hpcc-e2e-no-userns-');
    work = path.join(img.tmp, 'work');
    fs.mkdirSync(work);
    if (IS_ROOT) fs.chownSync(work, testUserIds().uid, testUserIds().gid);
    cluster = await startCluster({ nodes: 2, noUserns: ['node2'] });
  });
  after(async () => {
    await cluster?.stop();
    if (img?.tmp) removeTree(img.tmp);
  });

  const asUser = (cmd: string, args: string[]) =>
    runUnprivileged(cmd, args, { cwd: work, env: { ...cluster!.env, HPCC_CACHEDIR: path.join(work, 'cache') }, timeout: 120_000 });

  it('the test node really has none: max_user_namespaces is 0 on node2 only', () => {
    const r = asUser('srun', ['-N2', '-n2', '-l', 'cat', '/proc/sys/user/max_user_namespaces']);
    expect(r.status, r.stderr).to.equal(0);
    const byRank = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/:\s*/)));
    expect(byRank['1'], r.stdout).to.equal('0');
    expect(Number(byRank['0']), r.stdout).to.be.greaterThan(0);
  });

  it('hpcc-srun: the ranks on node2 fail with HPCC_E_LAUNCH_USERNS (exit 99) and the doctor hint; node1 alone runs', () => {
    const r = asUser(SRUN, ['-w', 'node2', '-N1', '-n2', '--image', img.sif, '--', 'echo', 'ran']);
    expect(r.stdout).to.not.contain('ran');
    expect(r.status, r.stderr).to.equal(99);
    expect(r.stderr).to.contain('HPCC_E_LAUNCH_USERNS').and.contain('hpcc doctor').and.not.contain('HPCC_E_LAUNCH_SHARENS');
    const ok = asUser(SRUN, ['-w', 'node1', '-N1', '-n2', '--image', img.sif, '--', 'echo', 'ran']);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(ok.stdout.trim().split('\n')).to.deep.equal(['ran', 'ran']);
  });

  it('plain srun hpcc exec fails the same way there, and hpcc doctor on that node names the sysctl and its fix', () => {
    const r = asUser('srun', ['-w', 'node2', '-N1', '-n1', FRONT, 'exec', img.sif, 'echo', 'ran']);
    expect(r.status, r.stderr).to.equal(99);
    expect(r.stderr).to.contain('HPCC_E_LAUNCH_USERNS').and.contain('hpcc doctor');
    const d = asUser('srun', ['-w', 'node2', '-N1', '-n1', FRONT, 'doctor']);
    expect(d.status).to.equal(1);
    expect(d.stdout).to.match(/\[FAIL\] user\.max_user_namespaces: user namespaces are disabled/).and.contain('fix: As root: sysctl -w user.max_user_namespaces=');
  });
});
