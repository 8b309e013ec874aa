/**
 * hpcc on a multi-node Slurm cluster (test/helpers/slurm-cluster.ts: 3 nodes,
 * each in its own network namespace with its address, hostname, slurmd and
 * node-local tmpfs), as the unprivileged test user, with the native front
 * (dist/native/hpcc) as users run it:
 *   - the cluster itself: tasks land on 3 nodes, each with its own address,
 *     hostname, no route out of the subnet and storage no other node sees;
 *   - `srun -N3 hpcc exec`: a container per node, inside it the node's
 *     hostname and node-local $TMPDIR;
 *   - every node pulls from the registry on the login side's address, and the
 *     registry's access log shows each node's address;
 *   - an Open MPI program (ring send/recv, allreduce, bcast, gather, results
 *     checked), each rank in its hpcc container, across the 3 nodes:
 *     `srun --mpi=pmix` (the host's PMIx, hybrid model) with 1 and 2 ranks per
 *     node, and `mpirun` inside an allocation (orted on each node via Slurm);
 *     with --sharens the ranks of a node share a user namespace (Open MPI's CMA).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, REPO_ROOT, TEST_USER, removeTree, requireRoot, requireTestUser, requireTools, runUnprivileged, testUserIds } from '../helpers/env.js';
import { makeBusyboxTree, umociImage } from '../helpers/registry-fixtures.js';
import { skopeoPush } from '../helpers/registry.js';
import { expectMpiCheck, makeMpiSif } from '../helpers/mpi-image.js';
import { startCluster, type TestCluster } from '../helpers/slurm-cluster.js';
import { makeE2eImage, type E2eImage } from './launch-fixture.js';

const FRONT = path.join(REPO_ROOT, 'dist/native/hpcc');
const NODES = ['node1', 'node2', 'node3'];

describe('e2e: a 3-node Slurm cluster (srun, salloc, mpirun with hpcc exec)', function () {
  this.timeout(300_000);
  let img: E2eImage;
  let cluster: TestCluster | undefined;
  let cache: string;
  let mpiSif: string;

  before(async function () {
    requireRoot(this);
    requireTestUser(this);
    requireTools(this, 'slurmctld', 'slurmd', 'srun', 'salloc', 'sinfo', 'munged', 'munge', 'mungekey', 'ip', 'nsenter', 'unshare', 'mpicc', 'mpirun', 'ldd');
    img = makeE2eImage(this, 'hpcc-e2e-cluster-');
    cache = path.join(img.tmp, 'cache');
    fs.mkdirSync(cache);
    if (IS_ROOT) fs.chownSync(cache, testUserIds().uid, testUserIds().gid);
    // the MPI image: mpi-check built with the host's mpicc, and the host's Open MPI runtime
    mpiSif = makeMpiSif(path.join(img.tmp, 'mpi'), path.join(REPO_ROOT, 'test/fixtures/mpi/mpi-check.c'), 'mpi-check');
    cluster = await startCluster({ nodes: 3 });
  });
  after(async () => {
    await cluster?.stop();
    if (img?.tmp) removeTree(img.tmp);
  });

  const asUser = (cmd: string, args: string[], env: Record<string, string> = {}) =>
    runUnprivileged(cmd, args, {
      cwd: img.tmp,
      env: { ...cluster!.env, HPCC_CACHEDIR: cache, OMPI_MCA_btl_vader_single_copy_mechanism: 'none', ...env },
      timeout: 120_000,
    });
  const lines = (s: string) => s.trim().split('\n').filter(Boolean).sort();

  it('srun -N3: three nodes, each with its own address, hostname, no route out, and node-local storage', () => {
    const r = asUser('srun', ['-N3', '-n3', 'sh', '-c',
      'echo "$(hostname) $(id -un) $(ip -4 -o addr show dev eth0 | awk "{print \\$4}") routes=$(ip route | wc -l)"; ' +
      'echo x > "$TMPDIR/mark-$(hostname)"; echo "$(hostname) sees" $(ls "$TMPDIR" | grep ^mark-)']);
    expect(r.status, r.stderr).to.equal(0);
    const net = cluster!.subnet.replace(/\.0\/24$/, '');
    expect(lines(r.stdout)).to.deep.equal([
      ...NODES.map((n, i) => `${n} ${TEST_USER} ${net}.${11 + i}/24 routes=1`),
      ...NODES.map((n) => `${n} sees mark-${n}`),
    ].sort());
    // the login side sees none of the nodes' files: each node's is a tmpfs of its own
    expect(fs.readdirSync(cluster!.local)).to.deep.equal([]);
  });

  it('srun -N3 hpcc exec: a container per node, with the node\'s hostname and its node-local $TMPDIR inside', () => {
    const r = asUser('srun', ['-N3', '-n3', FRONT, 'exec', img.sif, 'sh', '-c',
      'echo c > "$TMPDIR/ctr-$(hostname)"; echo "$(hostname) $TMPDIR" $(ls "$TMPDIR" | grep ^ctr-)']);
    expect(r.status, r.stderr).to.equal(0);
    expect(lines(r.stdout)).to.deep.equal(NODES.map((n) => `${n} ${cluster!.local} ctr-${n}`));
  });

  it('every node pulls from the registry on the login address; its access log shows each node\'s address', async function () {
    requireTools(this, 'docker-registry', 'skopeo', 'umoci', 'busybox');
    const reg = await cluster!.registry();
    const layout = path.join(img.tmp, 'layout');
    umociImage(layout, 'v1', [makeBusyboxTree(img.tmp)]);
    await skopeoPush(reg, `oci:${layout}:v1`, 'cluster/busybox:v1');
    const before = reg.requests().length;
    // each node pulls into its node-local cache and runs the image it pulled
    const r = asUser('srun', ['-N3', '-n3', 'sh', '-c',
      `HPCC_CACHEDIR="$TMPDIR/cache" ${FRONT} pull --quiet --insecure "$TMPDIR/bb.sif" docker://${reg.host}/cluster/busybox:v1 && ` +
      `HPCC_CACHEDIR="$TMPDIR/cache" ${FRONT} exec "$TMPDIR/bb.sif" sh -c 'echo "$(hostname) pulled"'`]);
    expect(r.status, r.stderr).to.equal(0);
    expect(lines(r.stdout)).to.deep.equal(NODES.map((n) => `${n} pulled`));
    const clients = new Set(reg.requests().slice(before).filter((q) => q.status < 400 && /\/manifests\//.test(q.path)).map((q) => q.client));
    expect([...clients].sort()).to.deep.equal(cluster!.nodes.map((n) => n.addr).sort());
  });

  const expectMpi = (out: string, ranks: number, perNode: number) => expectMpiCheck(out, ranks, perNode, NODES);

  it('Open MPI, hybrid model: srun -N3 -n3 --mpi=pmix hpcc exec, one rank per node, each in its container', () => {
    const r = asUser('srun', ['-N3', '-n3', '--mpi=pmix', FRONT, 'exec', mpiSif, '/usr/local/bin/mpi-check']);
    expect(r.status, r.stderr).to.equal(0);
    expectMpi(r.stdout, 3, 1);
  });

  it('Open MPI, hybrid model: srun -N3 -n6 --mpi=pmix hpcc exec, two ranks per node', () => {
    const r = asUser('srun', ['-N3', '-n6', '--mpi=pmix', FRONT, 'exec', mpiSif, '/usr/local/bin/mpi-check']);
    expect(r.status, r.stderr).to.equal(0);
    expectMpi(r.stdout, 6, 2);
  });

  it('Open MPI: srun -N3 -n6 --mpi=pmix hpcc exec --sharens: the two ranks of each node share a user namespace (CMA), without it they warn', () => {
    // warm mounts off (the suites' default), and Open MPI's CMA choice left alone, so that it says when CMA is off
    const ranks = (opts: string[]) =>
      runUnprivileged('srun', ['-N3', '-n6', '--mpi=pmix', FRONT, 'exec', ...opts, mpiSif, '/usr/local/bin/mpi-check'], {
        cwd: img.tmp,
        env: { ...cluster!.env, HPCC_CACHEDIR: cache },
        timeout: 120_000,
      });
    const CMA_WARNING = /CMA is\s+not available due to different user namespaces/;
    const alone = ranks([]);
    expect(alone.status, alone.stderr).to.equal(0);
    expectMpi(alone.stdout, 6, 2);
    expect(`${alone.stdout}${alone.stderr}`, 'separate user namespaces: Open MPI says CMA is off').to.match(CMA_WARNING);
    const shared = ranks(['--sharens']);
    expect(shared.status, shared.stderr).to.equal(0);
    expectMpi(shared.stdout, 6, 2);
    expect(`${shared.stdout}${shared.stderr}`, 'one user namespace per node: CMA works').to.not.match(CMA_WARNING);
  });

  it('Open MPI: salloc -N3 mpirun hpcc exec, orted on each node through Slurm, one and two ranks per node', () => {
    for (const [n, per] of [[3, 1], [6, 2]] as const) {
      const r = asUser('salloc', ['-N3', `-n${n}`, 'mpirun', '-np', String(n), FRONT, 'exec', mpiSif, '/usr/local/bin/mpi-check']);
      expect(r.status, r.stderr).to.equal(0);
      expectMpi(r.stdout, n, per);
    }
  });

  it('stop() removes every namespace, link, daemon and directory the cluster made', async () => {
    const c = cluster!;
    const tag = c.nodes[0]!.netns.replace(/-node1$/, '');
    cluster = undefined;
    await c.stop();
    expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout).to.not.contain(tag);
    expect(spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout).to.not.contain(tag);
    expect(spawnSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }).stdout).to.not.contain(c.loginAddr + '/');
    expect(fs.existsSync(c.dir)).to.equal(false);
    expect(spawnSync('pgrep', ['-f', c.dir], { encoding: 'utf8' }).stdout).to.equal('');
  });
});
