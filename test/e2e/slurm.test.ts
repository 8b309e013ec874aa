/**
 * hpcc under real Slurm (one node: munged, slurmctld, slurmd on 127.0.0.1,
 * test/helpers/slurm.ts), as the unprivileged test user: `srun hpcc exec`
 * runs one container per rank with the rank's variables, as the job's user;
 * a rank's exit status reaches srun; the ranks of a later step launch from
 * the launch memos the first step wrote (they differ only in SLURM_* values,
 * which pass through); an Open MPI program's ranks, each in its container,
 * talk through srun's PMIx (the hybrid model); with --sharens two ranks share
 * a user namespace, so Open MPI's CMA works between them (without it, its
 * "different user namespaces" warning); slurm/example.sbatch runs both its
 * steps.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, REPO_ROOT, TEST_USER, removeTree, requireRoot, requireTestUser, requireTools, runUnprivileged, testUserIds } from '../helpers/env.js';
import { makeMpiSif } from '../helpers/mpi-image.js';
import { startSlurm, type TestSlurm } from '../helpers/slurm.js';
import { makeE2eImage, type E2eImage } from './launch-fixture.js';
import { alive, fuseHolders, keepersIn, until } from './warm-fixture.js';

const FRONT = path.join(REPO_ROOT, 'dist/native/hpcc');

describe('e2e: Slurm (srun and sbatch with hpcc exec)', function () {
  this.timeout(300_000);
  let img: E2eImage;
  let slurm: TestSlurm | undefined;
  let cache: string;

  before(async function () {
    requireRoot(this);
    requireTestUser(this);
    requireTools(this, 'slurmctld', 'slurmd', 'srun', 'sbatch', 'sinfo', 'scontrol', 'munged', 'munge');
    img = makeE2eImage(this, 'hpcc-e2e-slurm-');
    cache = path.join(img.tmp, 'cache');
    fs.mkdirSync(cache);
    if (IS_ROOT) fs.chownSync(cache, testUserIds().uid, testUserIds().gid);
    slurm = await startSlurm();
  });
  after(async () => {
    await slurm?.stop();
    if (img?.tmp) removeTree(img.tmp);
  });

  const asUser = (cmd: string, args: string[]) =>
    runUnprivileged(cmd, args, { cwd: img.tmp, env: { SLURM_CONF: slurm!.conf, HPCC_CACHEDIR: cache, HPCC_DEBUG: '1' }, timeout: 120_000 });

  it('srun -n 2: a container per rank, as the job user, with its rank; a second step launches every rank from a memo', () => {
    const uid = testUserIds().uid;
    const step = () => asUser('srun', ['-n', '2', FRONT, 'exec', img.sif, 'sh', '-c', 'echo "rank $SLURM_PROCID of $SLURM_NTASKS uid $(id -u)"']);
    let r = step();
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim().split('\n').sort()).to.deep.equal([`rank 0 of 2 uid ${uid}`, `rank 1 of 2 uid ${uid}`]);
    r = step();
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim().split('\n').sort()).to.deep.equal([`rank 0 of 2 uid ${uid}`, `rank 1 of 2 uid ${uid}`]);
    expect(r.stderr.match(/launch memo \S+: used/g), r.stderr).to.have.length(2);
  });

  it('MPI, hybrid model: srun --mpi=pmix starts 2 ranks of an Open MPI program, each in its hpcc container, and they talk (allreduce)', function () {
    requireTools(this, 'mpicc', 'ldd');
    const dir = path.join(img.tmp, 'mpi');
    fs.mkdirSync(dir);
    const src = path.join(dir, 'hello.c');
    fs.writeFileSync(
      src,
      `#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
  int rank, size, sum = 0;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  printf("rank %d of %d sum %d\\n", rank, size, sum);
  MPI_Finalize();
  return 0;
}
`,
    );
    const sif = makeMpiSif(dir, src, 'mpi-hello');
    const r = asUser('srun', ['-n', '2', '--mpi=pmix', FRONT, 'exec', sif, '/usr/local/bin/mpi-hello']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim().split('\n').sort()).to.deep.equal(['rank 0 of 2 sum 1', 'rank 1 of 2 sum 1']);
  });

  it("MPI ping-pong between 2 ranks on a node: with --sharens they share a user namespace and Open MPI's CMA works; without (warm mounts off) it warns", async function () {
    requireTools(this, 'mpicc', 'ldd');
    const dir = path.join(img.tmp, 'pingpong');
    const sif = makeMpiSif(dir, path.join(REPO_ROOT, 'test/helpers/mpi-pingpong.c'), 'mpi-pingpong', 'pingpong.sif');
    const tmp = path.join(dir, 'launch');
    fs.mkdirSync(tmp);
    if (IS_ROOT) fs.chownSync(tmp, testUserIds().uid, testUserIds().gid);
    // the ranks' own launch directory; warm mounts off (the suites' default), so only --sharens shares
    const ranks = (opts: string[]) =>
      runUnprivileged('srun', ['-n', '2', '--mpi=pmix', FRONT, 'exec', ...opts, sif, '/usr/local/bin/mpi-pingpong', '200'], {
        cwd: img.tmp,
        env: { SLURM_CONF: slurm!.conf, HPCC_CACHEDIR: cache, HPCC_TMPDIR: tmp, HPCC_WARM_IDLE: '0' },
        timeout: 120_000,
      });
    const CMA_WARNING = /CMA is\s+not available due to different user namespaces/;
    const alone = ranks([]);
    expect(alone.status, alone.stderr).to.equal(0);
    expect(alone.stdout).to.match(/pingpong 1048576 B: /);
    expect(`${alone.stdout}${alone.stderr}`, 'separate user namespaces: Open MPI says CMA is off').to.match(CMA_WARNING);
    const shared = ranks(['--sharens']);
    expect(shared.status, shared.stderr).to.equal(0);
    expect(shared.stdout).to.match(/pingpong 8 B: .*\npingpong 1048576 B: /);
    expect(`${shared.stdout}${shared.stderr}`, 'one user namespace: CMA works').to.not.match(CMA_WARNING);
    // the step's keeper (--sharens: the default idle time of 300 s) ended with the step's slurmstepd
    const hpcc = (args: string[]) => runUnprivileged(process.execPath, [path.join(REPO_ROOT, 'bin/run.js'), ...args], { cwd: img.tmp, env: { HPCC_TMPDIR: tmp, HPCC_CACHEDIR: cache } });
    await until('the step\'s keeper has ended', () => JSON.parse(hpcc(['cache', 'list', '--type', 'mounts', '--json']).stdout).entries.length === 0, 20_000);
    expect(hpcc(['cache', 'clean', '--type', 'mounts']).stdout).to.not.match(/In use/);
  });

  it('a warm-mount keeper started in a job step ends with the step (it left the launch\'s process tree; this fixture tracks processes without cgroups)', async () => {
    const tmp = path.join(img.tmp, 'keeper-step');
    fs.mkdirSync(tmp);
    if (IS_ROOT) fs.chownSync(tmp, testUserIds().uid, testUserIds().gid);
    const warm = path.join(tmp, `hpcc-${testUserIds().uid}`, 'warm');
    // the step launches, then (still in the step) shows the keeper's metadata
    const r = runUnprivileged('srun', ['-n', '1', 'sh', '-c', '"$0" exec "$1" true && cat "$2"/*.json', FRONT, img.sif, warm], {
      cwd: img.tmp,
      env: { SLURM_CONF: slurm!.conf, HPCC_CACHEDIR: cache, HPCC_TMPDIR: tmp, HPCC_WARM_IDLE: '300' },
      timeout: 120_000,
    });
    expect(r.status, r.stderr).to.equal(0);
    const pid = (JSON.parse(r.stdout) as { pid: number }).pid;
    expect(pid, r.stdout).to.be.a('number');
    // a 300 s idle time, yet it goes once the step's slurmstepd has: the keeper watches it
    await until('the keeper has ended with its step', () => !alive(pid), 20_000);
    await until('no FUSE server is left', () => fuseHolders(img.sif).length === 0, 10_000);
    expect(keepersIn(warm)).to.deep.equal([]);
  });

  it("a rank's exit status reaches srun", () => {
    const r = asUser('srun', ['-n', '1', FRONT, 'exec', img.sif, 'sh', '-c', 'exit 3']);
    expect(r.status, r.stderr).to.equal(3);
  });

  it('sbatch slurm/example.sbatch: both steps of the example job run on every rank', async () => {
    const example = path.join(REPO_ROOT, 'slurm', 'example.sbatch');
    const sub = asUser('sbatch', ['--parsable', `--export=ALL,IMAGE=${img.sif},HPCC=${FRONT}`, '-o', `${img.tmp}/job-%j.out`, example]);
    expect(sub.status, sub.stderr).to.equal(0);
    const id = sub.stdout.trim().split(';')[0]!;
    let state = '';
    for (let i = 0; i < 600 && !/^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)/.test(state); i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = /JobState=(\S+)/.exec(asUser('scontrol', ['show', 'job', '-o', id]).stdout)?.[1] ?? '';
    }
    const out = fs.readFileSync(path.join(img.tmp, `job-${id}.out`), 'utf8');
    expect(state, out).to.equal('COMPLETED');
    const lines = out.split('\n').filter((l) => /^(rank|step)/.test(l)).sort();
    expect(lines).to.deep.equal([`rank 0 of 2: ${TEST_USER} in the container`, `rank 1 of 2: ${TEST_USER} in the container`, 'step 2, rank 0', 'step 2, rank 1']);
  });
});
