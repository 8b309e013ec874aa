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
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, REPO_ROOT, TEST_USER, removeTree, requireRoot, requireTestUser, requireTools, runHpcc, runUnprivileged, testUserIds } from '../helpers/env.js';
import { makeBusyboxTree, umociImage } from '../helpers/registry-fixtures.js';
import { skopeoPush } from '../helpers/registry.js';
import { startCluster, type TestCluster } from '../helpers/slurm-cluster.js';
import { makeE2eImage, type E2eImage } from './launch-fixture.js';

const SBATCH = path.join(REPO_ROOT, 'slurm/hpcc-sbatch');
const SRUN = path.join(REPO_ROOT, 'slurm/hpcc-srun');
const NODES = ['node1', 'node2', 'node3'];

describe('e2e: the Slurm wrappers hpcc-sbatch and hpcc-srun on a 3-node cluster', function () {
  this.timeout(300_000);
  let img: E2eImage;
  let cluster: TestCluster | undefined;
  let cache: string;
  let work: string;
  let uid: number;

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
    const job = script('two-steps.sh', `#SBATCH -N3 -n12 --ntasks-per-node=4
${SRUN} -- sh -c 'echo "step1 $SLURM_PROCID $(hostname) $(readlink /proc/self/ns/user)"'
${SRUN} -- sh -c 'echo "step2 $SLURM_PROCID $(hostname)"; touch ${marks}/$SLURM_PROCID; while [ ! -e ${marks}/done ]; do sleep 0.2; done'
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
    // the job's end removed the staged copies on every node
    expect(stageTrees()).to.deep.equal(NODES.map((n) => `${n}: hpcc-stage-${uid}`));
  });
});
