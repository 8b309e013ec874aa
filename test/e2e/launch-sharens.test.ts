/**
 * --sharens end to end (builder/warm.ts, native/launch/warm.c): launches of
 * one image by one user on the node share the warm keeper's user namespace
 * (what Open MPI's CMA needs between ranks), also with warm mounts off
 * (HPCC_WARM_IDLE=0); without it and with warm mounts off each launch has a
 * namespace of its own; where no keeper can be joined the launch fails with
 * HPCC_E_LAUNCH_SHARENS instead of running alone.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HPCC_BIN, IS_ROOT, REPO_ROOT, runUnprivileged, testUserIds } from '../helpers/env.js';
import { exitOf, hpccAs, spawnUnprivileged } from './launch-fixture.js';
import { alive, fuseHolders, keepersIn, until, warmSuite } from './warm-fixture.js';

describe('e2e: --sharens (one user namespace for the launches of an image on a node)', function () {
  this.timeout(120_000);
  const w = warmSuite('hpcc-e2e-sharens-');
  const { uid, gid } = testUserIds();
  const warmDir = w.warmDir;
  const env = (idle: string): Record<string, string> => ({ HPCC_TMPDIR: w.tdir, HPCC_WARM_IDLE: idle, HPCC_DEBUG: '1' });
  /** Two launches at once (both running when each reads its namespace); their user namespaces. */
  async function twoAtOnce(opts: string[], idle: string): Promise<string[]> {
    const cmd = ['exec', ...opts, w.img.sif, 'sh', '-c', 'readlink /proc/self/ns/user; sleep 1'];
    const kids = [0, 1].map(() => spawnUnprivileged(cmd, w.img.tmp, env(idle)));
    const rs = await Promise.all(kids.map((k) => exitOf(k)));
    for (const r of rs) expect(r.code, r.out).to.equal(0);
    return rs.map((r) => r.out.trim());
  }

  it('two concurrent launches with --sharens share the keeper user namespace, also with warm mounts off', async () => {
    const [a, b] = await twoAtOnce(['--sharens'], '0');
    expect(a).to.match(/^user:\[\d+\]$/);
    expect(b).to.equal(a);
    const ks = keepersIn(warmDir());
    expect(ks, 'a keeper despite HPCC_WARM_IDLE=0').to.have.length(1);
    expect(fs.readlinkSync(`/proc/${ks[0]!.pid}/ns/user`)).to.equal(a);
    expect((ks[0] as unknown as { idle: number }).idle, 'the default idle time').to.equal(300);
  });

  it('without --sharens and warm mounts off, each launch has a user namespace of its own', async () => {
    const [a, b] = await twoAtOnce([], '0');
    expect(a).to.match(/^user:\[\d+\]$/);
    expect(b).to.not.equal(a);
    expect(keepersIn(warmDir())).to.have.length(0);
  });

  it('no keeper to join: HPCC_E_LAUNCH_SHARENS, the command never runs alone (helper and builder)', () => {
    // the rendezvous directory is refused (mode): the helper fails instead of mounting the image itself
    fs.mkdirSync(warmDir(), { recursive: true, mode: 0o700 });
    if (IS_ROOT) {
      fs.chownSync(path.dirname(warmDir()), uid, gid);
      fs.chownSync(warmDir(), uid, gid);
    }
    fs.chmodSync(path.dirname(warmDir()), 0o700);
    fs.chmodSync(warmDir(), 0o770);
    let r = hpccAs(w.img.tmp, ['exec', '--sharens', w.img.sif, 'echo', 'ran alone'], { env: env('0') });
    expect(r.stdout).to.not.contain('ran alone');
    expect(r.status, r.stderr).to.equal(99);
    expect(r.stderr).to.contain('HPCC_E_LAUNCH_SHARENS').and.contain('only its owner may use');
    // a saved plan carries the requirement too
    const plan = path.join(w.tdir, 'p.plan');
    fs.chmodSync(warmDir(), 0o700);
    r = hpccAs(w.img.tmp, ['exec', '--sharens', '--plan-out', plan, w.img.sif, 'echo', 'ran alone'], { env: env('0') });
    expect(r.status, r.stderr).to.equal(0);
    fs.chmodSync(warmDir(), 0o770);
    r = runUnprivileged(path.join(REPO_ROOT, 'dist/native/hpcc-launch'), ['--plan', plan], { cwd: w.img.tmp });
    expect(r.stdout).to.not.contain('ran alone');
    expect(r.status).to.equal(99);
    expect(r.stderr).to.contain('--sharens: cannot join the shared namespace');
    // an extracted tree has no keeper: refused before anything starts
    r = hpccAs(w.img.tmp, ['exec', '--sharens', '--unsquash', w.img.sif, 'echo', 'ran alone'], { env: { ...env('0'), HPCC_CACHEDIR: path.join(w.tdir, 'cache') } });
    expect(r.stdout).to.not.contain('ran alone');
    expect(r.status).to.equal(99);
    expect(r.stderr).to.contain('HPCC_E_LAUNCH_SHARENS').and.contain('extracted tree');
  });

  it("ranks in per-task cgroups of one step (Slurm's task/cgroup on cgroup v2) share a keeper; another step, or another mount namespace, gets its own", async function () {
    const cg2 = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'].find((d) => fs.existsSync(path.join(d, 'cgroup.procs')) && fs.existsSync(path.join(d, 'cgroup.subtree_control')));
    if (!IS_ROOT || !cg2) this.skip(); // needs root to make cgroups and a cgroup v2 hierarchy
    const base = path.join(cg2!, `hpcc-test-${process.pid}-${w.n}`);
    const cgs = ['step_0/user/task_0', 'step_0/user/task_1', 'step_1/user/task_0'].map((c) => path.join(base, c));
    for (const c of cgs) fs.mkdirSync(c, { recursive: true });
    try {
      // root moves a shell into the cgroup, which then becomes the test user and launches
      const launch = (cg: string, unshareMnt = false): string => {
        const envs = Object.entries({ HOME: '/home/hpcctest', PATH: '/usr/bin:/bin', ...env('0') }).map(([k, v]) => `${k}=${v}`);
        const r = spawnSync(
          'sh',
          ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg, ...(unshareMnt ? ['unshare', '-m', '--propagation', 'slave'] : []),
            'setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--init-groups', 'env', '-i', ...envs,
            process.execPath, HPCC_BIN, 'exec', '--sharens', w.img.sif, 'readlink', '/proc/self/ns/user'],
          { cwd: w.img.tmp, encoding: 'utf8', timeout: 60_000 },
        );
        expect(r.status, r.stderr).to.equal(0);
        return r.stdout.trim();
      };
      const t0 = launch(cgs[0]!);
      expect(t0).to.match(/^user:\[\d+\]$/);
      expect(launch(cgs[1]!), 'task_1 of the same step: the same keeper').to.equal(t0);
      expect(keepersIn(warmDir())).to.have.length(1);
      expect(launch(cgs[2]!), 'another step: a keeper of its own').to.not.equal(t0);
      expect(launch(cgs[0]!, true), 'another mount namespace: a keeper of its own').to.not.equal(t0);
      expect(keepersIn(warmDir())).to.have.length(3);
    } finally {
      for (const k of keepersIn(warmDir())) if (alive(k.pid)) process.kill(k.pid, 'SIGTERM');
      await until('the keepers have ended', () => fuseHolders(w.img.sif).length === 0).catch(() => undefined);
      for (const c of [...cgs, ...cgs.map((c) => path.dirname(c)), ...cgs.map((c) => path.dirname(path.dirname(c))), base]) {
        for (let i = 0; i < 50; i++) {
          try {
            fs.rmdirSync(c);
            break;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      }
    }
  });
});
