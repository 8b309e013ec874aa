/**
 * The Slurm wrappers (slurm/hpcc-sbatch, slurm/hpcc-srun; src/slurm) on the
 * 3-node test cluster (test/helpers/slurm-cluster.ts), as the unprivileged
 * test user:
 *   - hpcc-sbatch pins a SIF at submit; two hpcc-srun steps of 4 ranks on
 *     each of 3 nodes run it from the node-local copy, with one FUSE server
 *     per node (--sharens), and the job's end removes the copies;
 *   - a docker:// reference is pinned at submit: the held job runs the digest
 *     of submission although the tag moved, and the nodes ask the registry
 *     nothing (its access log holds only the login side's address);
 *   - Open MPI through hpcc-srun --mpi=pmix over 3 nodes, CMA within a node;
 *   - bad input: no image, a reference that does not resolve (sbatch not run),
 *     a SIF changed after submit (refused on the node, nothing run), full
 *     node-local storage (the step fails with hpcc's code, no partial copy,
 *     the next job stages), another user's stage directory (refused).
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, REPO_ROOT, TEST_USER, removeTree, requireRoot, requireTestUser, requireTools, runUnprivileged, testUserIds } from '../helpers/env.js';
import { makeBusyboxTree, umociImage } from '../helpers/registry-fixtures.js';
import { skopeoPush } from '../helpers/registry.js';
import { expectMpiCheck, makeMpiSif } from '../helpers/mpi-image.js';
import { startCluster, type TestCluster } from '../helpers/slurm-cluster.js';
import { makeE2eImage, type E2eImage } from './launch-fixture.js';

const SBATCH = path.join(REPO_ROOT, 'slurm/hpcc-sbatch');
const SRUN = path.join(REPO_ROOT, 'slurm/hpcc-srun');
const MPIRUN = path.join(REPO_ROOT, 'slurm/hpcc-mpirun');
const NODES = ['node1', 'node2', 'node3'];

describe('e2e: the Slurm wrappers hpcc-sbatch and hpcc-srun on a 3-node cluster', function () {
  this.timeout(300_000);
  let img: E2eImage;
  let cluster: TestCluster | undefined;
  let cache: string;
  let work: string;
  let uid: number;
  let mpiSif: string | undefined;

  before(async function () {
    requireRoot(this);
    requireTestUser(this);
    requireTools(this, 'slurmctld', 'slurmd', 'srun', 'sbatch', 'salloc', 'squeue', 'munged', 'ip', 'nsenter', 'unshare');
    img = makeE2eImage(this, 'hpcc-e2e-wrappers-');
    uid = testUserIds().uid;
    cache = path.join(img.tmp, 'cache');
    work = path.join(img.tmp, 'work');
    for (const d of [cache, work]) {
      fs.mkdirSync(d);
      if (IS_ROOT) fs.chownSync(d, uid, testUserIds().gid);
    }
    cluster = await startCluster({ nodes: 3 });
  });
  after(async () => {
    await cluster?.stop();
    if (img?.tmp) removeTree(img.tmp);
  });

  const envOf = (env: Record<string, string> = {}) => ({ ...cluster!.env, HPCC_CACHEDIR: cache, OMPI_MCA_btl_vader_single_copy_mechanism: 'none', ...env });
  const asUser = (cmd: string, args: string[], env: Record<string, string> = {}) =>
    runUnprivileged(cmd, args, { cwd: work, env: envOf(env), timeout: 150_000 });
  const lines = (s: string) => s.trim().split('\n').filter(Boolean).sort();
  const script = (name: string, body: string) => {
    const f = path.join(work, name);
    fs.writeFileSync(f, `#!/bin/sh\n${body}`, { mode: 0o755 });
    fs.chownSync(f, uid, testUserIds().gid);
    return f;
  };
  const jobCount = () => asUser('squeue', ['-h', '-t', 'all', '-o', '%A']).stdout.trim().split('\n').filter(Boolean).length;

  /** The test user's squashfuse servers on each node (a node is a network namespace; pids are shared). */
  function fuseServersPerNode(): Record<string, number> {
    const byNs = new Map(cluster!.nodes.map((n) => [`net:[${fs.statSync(`/run/netns/${n.netns}`).ino}]`, n.name]));
    const out: Record<string, number> = Object.fromEntries(NODES.map((n) => [n, 0]));
    for (const p of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      try {
        if (!/^squashfuse/.test(fs.readFileSync(`/proc/${p}/comm`, 'utf8')) || fs.statSync(`/proc/${p}`).uid !== uid) continue;
        const node = byNs.get(fs.readlinkSync(`/proc/${p}/ns/net`));
        if (node) out[node]!++;
      } catch {
        /* gone */
      }
    }
    return out;
  }

  /** What the node-local storage of each node holds for the test user's stage tree (a step on every node). */
  const stageTrees = () =>
    lines(asUser('srun', ['-N3', '-n3', 'sh', '-c', `cd "$TMPDIR" && echo "$(hostname):" $(find hpcc-stage-${uid} 2>/dev/null | sort)`]).stdout);

  it('hpcc-sbatch --image FILE.sif: two hpcc-srun steps of 4 ranks on each of 3 nodes, one FUSE server per node, staged copies removed at the end', async () => {
    const marks = path.join(work, 'marks');
    fs.mkdirSync(marks);
    fs.chownSync(marks, uid, testUserIds().gid);
    // HPCC_DEBUG: the native front says whether it launched from a memo
    const job = script('two-steps.sh', `#SBATCH -N3 -n12 --overcommit
export HPCC_DEBUG=1
${SRUN} -- sh -c 'echo "step1 $SLURM_PROCID $(hostname) $(readlink /proc/self/ns/user)"' 2>${work}/step1.err
${SRUN} -- sh -c 'echo "step2 $SLURM_PROCID $(hostname)"; touch ${marks}/$SLURM_PROCID; while [ ! -e ${marks}/done ]; do sleep 0.2; done' 2>${work}/step2.err
`);
    const child = spawn('setpriv', ['--reuid', String(uid), '--regid', String(testUserIds().gid), '--init-groups', '--', SBATCH, '--wait', `--output=${work}/two-steps.out`, '--image', img.sif, '--env=A=1', job], {
      cwd: work,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: `/home/${TEST_USER}`, USER: TEST_USER, HPCC_WARM_IDLE: '0', ...envOf() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const done = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    const until = Date.now() + 120_000;
    while (fs.readdirSync(marks).length < 12 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    const servers = fuseServersPerNode();
    fs.writeFileSync(path.join(marks, 'done'), '');
    expect(await done, err).to.equal(0);
    const out = fs.readFileSync(path.join(work, 'two-steps.out'), 'utf8');
    expect(servers, out).to.deep.equal({ node1: 1, node2: 1, node3: 1 });
    const step1 = out.split('\n').filter((l) => l.startsWith('step1 '));
    expect(step1, out).to.have.length(12);
    for (const n of NODES) {
      const ns = new Set(step1.filter((l) => l.includes(` ${n} `)).map((l) => l.split(' ')[3]));
      expect(ns.size, `the 4 ranks on ${n} share one user namespace: ${out}`).to.equal(1);
    }
    expect(out.split('\n').filter((l) => l.startsWith('step2 ')), out).to.have.length(12);
    // the first step: the node's stager planned once (hpcc slurm stage), and every rank started from that memo
    const err1 = fs.readFileSync(path.join(work, 'step1.err'), 'utf8');
    expect(err1.split('\n').filter((l) => /^hpcc: launch memo .*: used$/.test(l)), err1).to.have.length(12);
    // the second step on each node: a stat of the stage mark, then every rank from a launch memo, no Node
    const err2 = fs.readFileSync(path.join(work, 'step2.err'), 'utf8');
    expect(err2.split('\n').filter((l) => /^hpcc: launch memo .*: used$/.test(l)), err2).to.have.length(12);
    // the job's end removed the staged copies on every node
    expect(stageTrees()).to.deep.equal(NODES.map((n) => `${n}: hpcc-stage-${uid}`));
  });

  /** Wait for a job to end; its final state. */
  async function jobEnd(id: string): Promise<string> {
    for (let i = 0; i < 600; i++) {
      const st = asUser('squeue', ['-h', '-t', 'all', '-j', id, '-o', '%T']).stdout.trim();
      if (!['PENDING', 'RUNNING', 'COMPLETING', 'CONFIGURING'].includes(st)) return st;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`job ${id} did not end`);
  }

  it('hpcc-sbatch --image docker://…:v1 pins the digest at submit: the held job runs v1 after the tag moved, and the nodes ask the registry nothing', async function () {
    requireTools(this, 'docker-registry', 'skopeo', 'umoci', 'busybox');
    const reg = await cluster!.registry();
    const layout = path.join(img.tmp, 'layout');
    const bb = makeBusyboxTree(img.tmp);
    for (const v of ['v1', 'v2']) {
      const t = path.join(img.tmp, `ver-${v}`);
      fs.mkdirSync(t);
      fs.writeFileSync(path.join(t, 'version'), `${v}\n`);
      umociImage(layout, v, [bb, t]);
    }
    await skopeoPush(reg, `oci:${layout}:v1`, 'wr/app:v1');
    const before = reg.requests().length;
    const job = script('pinned.sh', `#SBATCH -N3 -n3\n#HPCC --image=docker://${reg.host}/wr/app:v1\n${SRUN} -- sh -c 'echo "$(hostname) $(cat /version)"'\n`);
    const sub = asUser(SBATCH, ['--hold', '--parsable', `--output=${work}/pinned.out`, job], { HPCC_INSECURE_REGISTRIES: reg.host });
    expect(sub.status, sub.stderr).to.equal(0);
    const id = sub.stdout.trim();
    expect(id).to.match(/^\d+$/);
    await skopeoPush(reg, `oci:${layout}:v2`, 'wr/app:v1'); // the tag moves while the job waits
    expect(asUser('scontrol', ['release', id]).status).to.equal(0);
    expect(await jobEnd(id)).to.equal('COMPLETED');
    expect(lines(fs.readFileSync(path.join(work, 'pinned.out'), 'utf8'))).to.deep.equal(NODES.map((n) => `${n} v1`));
    const seen = reg.requests().slice(before);
    expect(seen.filter((q) => /\/manifests\//.test(q.path)).length, 'the pin resolved the tag').to.be.greaterThan(0);
    expect([...new Set(seen.map((q) => q.client))], 'only the login side asked the registry').to.deep.equal([cluster!.loginAddr]);
  });

  it('no image, a reference that does not resolve, misplaced options: a typed error, and no job is submitted', async function () {
    const job = script('noimage.sh', '#SBATCH -N1\necho ran\n');
    const n0 = jobCount();
    let r = asUser(SBATCH, [job]);
    expect(r.status, r.stderr).to.equal(2);
    expect(r.stderr).to.contain('HPCC_E_SLURM_NO_IMAGE');
    r = asUser(SBATCH, ['-N', '1', '--image', img.sif, '-N', '2', '--nv', job]);
    expect(r.status, r.stderr).to.equal(2);
    expect(r.stderr).to.contain('HPCC_E_SLURM_ARGS').and.contain('--nv comes after the Slurm option -N');
    r = asUser(SRUN, ['-N1', '--', 'echo', 'ran']);
    expect(r.status, r.stderr).to.equal(2);
    expect(r.stderr).to.contain('HPCC_E_SLURM_NO_IMAGE');
    if (spawnSync('which', ['docker-registry']).status === 0) {
      const reg = await cluster!.registry();
      r = asUser(SBATCH, ['--image', `docker://${reg.host}/wr/nothing:here`, job], { HPCC_INSECURE_REGISTRIES: reg.host });
      expect(r.status, r.stderr).to.not.equal(0);
      expect(r.stderr).to.match(/^Error \(HPCC_E_[A-Z_]+\): /m);
      expect(r.stdout).to.not.contain('Submitted');
    }
    expect(jobCount(), 'sbatch was never run').to.equal(n0);
  });

  it('a SIF changed after submit is refused on the nodes: nothing runs, the step fails with HPCC_E_SLURM_IMAGE_CHANGED', async () => {
    const sif = path.join(work, 'changing.sif');
    fs.copyFileSync(img.sif, sif);
    fs.chownSync(sif, uid, testUserIds().gid);
    const job = script('changed.sh', `#SBATCH -N3 -n3\n${SRUN} -- echo ran\necho "step exit $?"\n`);
    const sub = asUser(SBATCH, ['--hold', '--parsable', `--output=${work}/changed.out`, '--image', sif, job]);
    expect(sub.status, sub.stderr).to.equal(0);
    const id = sub.stdout.trim();
    // one byte of the file changes (same size, same path)
    const fd = fs.openSync(sif, 'r+');
    const size = fs.fstatSync(fd).size;
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, size - 1);
    b[0] = b[0]! ^ 0xff;
    fs.writeSync(fd, b, 0, 1, size - 1);
    fs.closeSync(fd);
    expect(asUser('scontrol', ['release', id]).status).to.equal(0);
    await jobEnd(id);
    const out = fs.readFileSync(path.join(work, 'changed.out'), 'utf8');
    expect(out).to.not.match(/^ran$/m);
    expect(out).to.contain('HPCC_E_SLURM_IMAGE_CHANGED');
    expect(out).to.match(/^step exit 88$/m);
  });

  it('node-local storage full while staging: the step fails with HPCC_E_SLURM_STAGE, no partial copy is left, the next job stages', () => {
    const fill = asUser('srun', ['-w', 'node1', '-N1', '-n1', 'sh', '-c',
      'avail=$(df -k --output=avail "$TMPDIR" | tail -1); head -c $(( (avail - 300) * 1024 )) /dev/zero > "$TMPDIR/fill"; echo filled']);
    expect(fill.stdout, fill.stderr).to.contain('filled');
    const tree = () => asUser('srun', ['-w', 'node1', '-N1', '-n1', 'sh', '-c', `cd "$TMPDIR" && find hpcc-stage-${uid} -type f | sort`]).stdout.trim();
    try {
      const r = asUser(SRUN, ['-w', 'node1', '-N1', '-n2', '--image', img.sif, '--', 'echo', 'ran']);
      expect(r.stdout).to.not.contain('ran');
      expect(r.status, r.stderr).to.equal(89);
      expect(r.stderr).to.contain('HPCC_E_SLURM_STAGE').and.contain('node-local storage is full');
      // nothing but the ranks' gate (an empty file they take turns at with flock)
      expect(tree().split('\n').filter((l) => l && !/^hpcc-stage-\d+\/\d+\/[0-9a-f]{64}\.gate$/.test(l)), 'no partial copy, no lock').to.deep.equal([]);
    } finally {
      asUser('srun', ['-w', 'node1', '-N1', '-n1', 'sh', '-c', 'rm -f "$TMPDIR/fill"']);
    }
    const r = asUser(SRUN, ['-w', 'node1', '-N1', '-n2', '--image', img.sif, '--', 'echo', 'ran']);
    expect(r.status, r.stderr).to.equal(0);
    expect(lines(r.stdout)).to.deep.equal(['ran', 'ran']);
    // the failed job's directory went at this staging (Slurm no longer runs it); this job's copy stays until the next
    expect(tree()).to.match(/^hpcc-stage-\d+\/\d+\/[0-9a-f]{64}\.gate\nhpcc-stage-\d+\/\d+\/[0-9a-f]{64}\.ready\nhpcc-stage-\d+\/\d+\/[0-9a-f]{64}\.sif$/);
  });

  it("another user's stage directory is refused (HPCC_E_SLURM_STAGE_DIR), even with the job's image planted in it: nothing runs", () => {
    const shared = path.join(img.tmp, 'shared-stage');
    fs.mkdirSync(shared, { mode: 0o777 });
    fs.chmodSync(shared, 0o1777);
    // an allocation whose job id is known, then someone else (root here) makes the stage directory first
    // and plants a file under the name the job's staged copy would have
    const alloc = asUser('salloc', ['-N1', '-n1', '--no-shell']);
    const id = /Granted job allocation (\d+)/.exec(alloc.stderr)?.[1];
    expect(id, alloc.stderr).to.match(/^\d+$/);
    try {
      const base = path.join(shared, `hpcc-stage-${uid}`);
      fs.mkdirSync(path.join(base, id!), { recursive: true, mode: 0o777 });
      fs.chmodSync(base, 0o777);
      const sha = createHash('sha256').update(fs.readFileSync(img.sif)).digest('hex');
      fs.copyFileSync(img.sif, path.join(base, id!, `${sha}.sif`));
      fs.chmodSync(path.join(base, id!, `${sha}.sif`), 0o644);
      const r = asUser(SRUN, [`--jobid=${id}`, '-N1', '-n1', '--image', img.sif, '--', 'echo', 'ran'], { HPCC_STAGE_DIR: shared });
      expect(r.stdout).to.not.contain('ran');
      expect(r.status, r.stderr).to.equal(89);
      expect(r.stderr).to.contain('HPCC_E_SLURM_STAGE_DIR').and.contain('owned by uid 0');
    } finally {
      asUser('scancel', [id!]);
    }
  });

  /** The MPI program's output: per-rank lines checked, every rank on its expected node. */
  const expectMpi = (out: string, ranks: number, perNode: number) => expectMpiCheck(out, ranks, perNode, NODES);

  it('Open MPI through hpcc-srun --mpi=pmix over 3 nodes, two ranks per node sharing a user namespace (CMA on)', function () {
    requireTools(this, 'mpicc', 'ldd');
    mpiSif = makeMpiSif(path.join(img.tmp, 'mpi'), path.join(REPO_ROOT, 'test/fixtures/mpi/mpi-check.c'), 'mpi-check');
    // Open MPI's CMA choice left alone, so that it would say when CMA is off
    const r = runUnprivileged(SRUN, ['-N3', '-n6', '--mpi=pmix', '--image', mpiSif, '--', '/usr/local/bin/mpi-check'], {
      cwd: work,
      env: { ...cluster!.env, HPCC_CACHEDIR: cache },
      timeout: 150_000,
    });
    expect(r.status, r.stderr).to.equal(0);
    expectMpi(r.stdout, 6, 2);
    expect(`${r.stdout}${r.stderr}`).to.not.match(/CMA is\s+not available/);
  });

  it('salloc: a repeated hpcc-srun --image starts srun from a command memo (no Node, no hashing on the login side); a touched SIF is pinned again', () => {
    const mine = path.join(work, 'mine.sif');
    fs.copyFileSync(img.sif, mine);
    fs.chownSync(mine, uid, testUserIds().gid);
    // the key stops at --: each step has its own command
    const step = (n: number) => `HPCC_DEBUG=1 ${SRUN} -N2 -n2 --image ${mine} -- echo step${n} 2>${work}/memo-step${n}.err`;
    const r = runUnprivileged('salloc', ['-N2', '-n2', 'sh', '-c', `${step(1)} && ${step(2)} && touch ${mine} && ${step(3)} && ${step(4)}`], {
      cwd: work,
      env: envOf(),
      timeout: 150_000,
    });
    expect(r.status, r.stderr).to.equal(0);
    expect(lines(r.stdout)).to.deep.equal(['step1', 'step1', 'step2', 'step2', 'step3', 'step3', 'step4', 'step4']);
    const used = (n: number) => fs.readFileSync(path.join(work, `memo-step${n}.err`), 'utf8').split('\n').filter((l) => /^hpcc: command memo .*: used$/.test(l)).length;
    expect([1, 2, 3, 4].map(used), 'steps from a command memo: the repeats, not the first, nor the one after the touch').to.deep.equal([0, 1, 0, 1]);
  });

  it('--sharens in two steps running side by side: each step has its own keeper, so the one ending first takes no mount of the other with it', () => {
    const front = path.join(REPO_ROOT, 'dist/native/hpcc');
    const step = (body: string) => `srun -Q --overlap -N1 -n1 ${front} exec --sharens ${img.sif} sh -c '${body}'`;
    const r = runUnprivileged('salloc', ['-Q', '-N1', '-n2', 'sh', '-c',
      `${step('sleep 2; echo one')} & sleep 1; ${step('i=0; while [ $i -lt 4 ]; do sleep 1; ls /bin >/dev/null || exit 9; i=$((i + 1)); done; echo two')}; s=$?; wait; exit $s`], {
      cwd: work,
      env: envOf({ HPCC_WARM_IDLE: '60' }), // as on a cluster: a keeper outlives its last user for a while
      timeout: 150_000,
    });
    expect(r.status, r.stderr).to.equal(0);
    expect(lines(r.stdout)).to.deep.equal(['one', 'two']);
  });

  it('Open MPI: salloc -N3 -n6 hpcc-mpirun: mpirun inside the allocation starts the ranks from the staged image', function () {
    if (!mpiSif) this.skip();
    const r = runUnprivileged('salloc', ['-N3', '-n6', MPIRUN, '-np', '6', '--image', mpiSif!, '--', '/usr/local/bin/mpi-check'], {
      cwd: work,
      env: { ...cluster!.env, HPCC_CACHEDIR: cache },
      timeout: 150_000,
    });
    expect(r.status, r.stderr).to.equal(0);
    expectMpi(r.stdout, 6, 2);
    expect(`${r.stdout}${r.stderr}`).to.not.match(/CMA is\s+not available/);
  });
});
