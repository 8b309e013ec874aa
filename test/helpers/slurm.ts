/**
 * A one-node Slurm cluster for tests (root only): munged, slurmctld and
 * slurmd on 127.0.0.1 with a private config, state and spool directory, no
 * cgroups and no accounting. Every daemon runs in the foreground under
 * `timeout` (so a crashed test run cannot leave one behind for long) and is
 * stopped by stop(). Clients need SLURM_CONF=<conf> in their environment.
 * munged is shared: one already answering is used and left alone.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeTempDir, removeTree } from './env.js';

export interface TestSlurm {
  conf: string;
  dir: string;
  stop(): Promise<void>;
}

const TTL_S = 900;

/** slurm.conf settings the test clusters share (this one-node cluster, slurm-cluster.ts): no cgroups,
 * no accounting, processes tracked by parentage. */
export const SLURM_TEST_SETTINGS = `ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobContainerType=job_container/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=300
InactiveLimit=0
KillWait=5
Waittime=0`;

function slurmConf(dir: string): string {
  const mem = /RealMemory=(\d+)/.exec(spawnSync('/usr/sbin/slurmd', ['-C'], { encoding: 'utf8' }).stdout ?? '')?.[1];
  const realMemory = Math.max(1, Math.floor(Number(mem ?? 1024) * 0.9));
  return `ClusterName=hpcctest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MailProg=/bin/true
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/run/slurmctld.pid
SlurmdPidFile=${dir}/run/slurmd.pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd.log
${SLURM_TEST_SETTINGS}
NodeName=localhost NodeAddr=127.0.0.1 CPUs=${os.cpus().length} RealMemory=${realMemory} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
`;
}

const mungeWorks = () => spawnSync('sh', ['-c', 'munge -n </dev/null | unmunge >/dev/null'], { timeout: 10_000 }).status === 0;

function daemon(argv: string[], log: string, user?: string): ChildProcess {
  const out = fs.openSync(log, 'a');
  const cmd = user ? ['setpriv', `--reuid=${user}`, `--regid=${user}`, '--init-groups', ...argv] : argv;
  const child = spawn('timeout', [String(TTL_S), ...cmd], { detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  child.unref();
  return child;
}

async function waitFor(what: string, ok: () => boolean, ms: number, logs: string[]): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) {
      const tail = logs.map((l) => (fs.existsSync(l) ? `--- ${l}\n${fs.readFileSync(l, 'utf8').slice(-2000)}` : '')).join('\n');
      throw new Error(`${what} did not come up within ${ms} ms\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  for (const c of children.reverse()) {
    if (c.exitCode !== null || c.pid === undefined) continue;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM'); // timeout passes it on to the daemon
    const t = setTimeout(() => c.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(t);
  }
}

/** Start the cluster; resolves once the node is idle. */
export async function startSlurm(): Promise<TestSlurm> {
  const dir = makeTempDir('hpcc-slurm-');
  fs.chmodSync(dir, 0o755);
  for (const d of ['etc', 'state', 'spool', 'run', 'log']) fs.mkdirSync(path.join(dir, d), { mode: 0o755 });
  const conf = path.join(dir, 'etc', 'slurm.conf');
  fs.writeFileSync(conf, slurmConf(dir), { mode: 0o644 });
  const children: ChildProcess[] = [];
  const logs = [path.join(dir, 'log', 'munged.out'), path.join(dir, 'log', 'slurmctld.log'), path.join(dir, 'log', 'slurmd.log')];
  try {
    if (!mungeWorks()) {
      if (!fs.existsSync('/etc/munge/munge.key') || fs.statSync('/etc/munge/munge.key').size === 0) {
        spawnSync('mungekey', ['--create', '--keyfile=/etc/munge/munge.key']);
        spawnSync('chown', ['munge:munge', '/etc/munge/munge.key']);
        fs.chmodSync('/etc/munge/munge.key', 0o400);
      }
      fs.mkdirSync('/run/munge', { recursive: true, mode: 0o755 });
      spawnSync('chown', ['munge:munge', '/run/munge']);
      children.push(daemon(['/usr/sbin/munged', '-F'], logs[0]!, 'munge'));
      await waitFor('munged', mungeWorks, 10_000, logs);
    }
    children.push(daemon(['/usr/sbin/slurmctld', '-D', '-i', '-f', conf], path.join(dir, 'log', 'slurmctld.out')));
    children.push(daemon(['/usr/sbin/slurmd', '-D', '-N', 'localhost', '-f', conf], path.join(dir, 'log', 'slurmd.out')));
    const env = { ...process.env, SLURM_CONF: conf };
    await waitFor(
      'slurmctld and slurmd (node idle)',
      () => /^idle/.test(spawnSync('sinfo', ['-h', '-N', '-o', '%T'], { env, encoding: 'utf8', timeout: 5_000 }).stdout ?? ''),
      30_000,
      logs,
    );
  } catch (e) {
    await stopAll(children);
    removeTree(dir);
    throw e;
  }
  return {
    conf,
    dir,
    async stop() {
      await stopAll(children);
      removeTree(dir);
    },
  };
}
