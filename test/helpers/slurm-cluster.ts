/**
 * A multi-node Slurm cluster on this one machine for tests (root only).
 *
 *   host netns   bridge hc<tag>br  10.213.X.1    the "login" side: srun, salloc, mpirun, the registry
 *   netns ctl    10.213.X.254      hostname ctl     slurmctld
 *   netns nodeI  10.213.X.(10+I)   hostname nodeI   slurmd -N nodeI, a tmpfs of its own at LOCAL
 *
 * Every node shares the machine's filesystem (the "shared file system"), pid
 * namespace, cores and memory; it has its own network namespace (address,
 * ports, no route out of the subnet), hostname, /etc/hosts and node-local
 * storage: a tmpfs mounted at the same path LOCAL in the node's own mount
 * namespace, as /scratch/local is on a real cluster. Jobs see it as $TMPDIR
 * (set by a TaskProlog), and it is Slurm's TmpFS (the PMIx plugin's
 * per-step directories, which collide when nodes share one /tmp).
 * munged is private (key and socket in the state directory). Daemons run under
 * `timeout`; stop() removes every daemon, process, namespace, link and
 * directory the cluster made (test/helpers/cluster-net.ts), and start() first
 * reaps clusters whose test process died.
 * Clients need the variables in `env` (SLURM_CONF and Open MPI's interface choice).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBridge, makeNetns, pickNames, reapStale, sh, startDaemon, startInNs, STATE_MARK, STATE_PREFIX, stopState, alive, recordDir } from './cluster-net.js';
import { startRegistry, type TestRegistry } from './registry.js';
import { SLURM_TEST_SETTINGS } from './slurm.js';

export interface ClusterNode {
  name: string;
  addr: string;
  netns: string;
}

export interface TestCluster {
  dir: string;
  conf: string;
  /** 10.213.X.0/24 */
  subnet: string;
  /** the host side of the bridge: where clients and the registry live */
  loginAddr: string;
  nodes: ClusterNode[];
  /** the node-local path: a distinct tmpfs on every node, an empty directory on the login side */
  local: string;
  /** SLURM_CONF and Open MPI's settings for clients on the login side */
  env: Record<string, string>;
  /** Start (once) a registry on loginAddr, reachable from the nodes, with its access log. */
  registry(): Promise<TestRegistry>;
  stop(): Promise<void>;
}

const TTL_S = 1200;

function slurmConf(dir: string, ctlAddr: string, nodes: ClusterNode[], local: string): string {
  const hw = spawnSync('/usr/sbin/slurmd', ['-C'], { encoding: 'utf8' }).stdout ?? '';
  const topo = (hw.match(/(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=\d+/g) ?? [`CPUs=${os.cpus().length}`]).join(' ');
  const mem = Math.max(1, Math.floor((Number(/RealMemory=(\d+)/.exec(hw)?.[1] ?? 1024) * 0.9) / nodes.length));
  const nodeLines = nodes.map((n) => `NodeName=${n.name} NodeHostname=${n.name} NodeAddr=${n.addr} ${topo} RealMemory=${mem} State=UNKNOWN`).join('\n');
  return `ClusterName=hpcccluster
SlurmctldHost=ctl(${ctlAddr})
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${dir}/munge/munge.socket
MailProg=/bin/true
# slurmctld binds to what its hostname (ctl) resolves to in its private hosts
# file. Not NoInAddrAny: srun on the login side would then bind to the address
# of the machine's name (127.0.0.1), which the nodes cannot reach.
CommunicationParameters=NoCtldInAddrAny
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool/%n
SlurmctldPidFile=${dir}/run/slurmctld.daemon-pid
SlurmdPidFile=${dir}/run/slurmd-%n.daemon-pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd-%n.log
# node-local: the same path, a different tmpfs on every node
TmpFS=${local}
TaskProlog=${dir}/etc/task-prolog
${SLURM_TEST_SETTINGS}
SlurmdTimeout=60
${nodeLines}
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
`;
}

async function waitFor(what: string, ok: () => boolean, ms: number, dir: string, pids: number[]): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    const dead = pids.some((p) => !alive(p));
    if (dead || Date.now() > until) {
      const logs = fs.readdirSync(path.join(dir, 'log')).map((f) => path.join(dir, 'log', f));
      const tail = logs.map((l) => `--- ${l}\n${fs.readFileSync(l, 'utf8').slice(-1500)}`).join('\n');
      throw new Error(`${what}: ${dead ? 'a daemon exited' : `not within ${ms} ms`}\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * sh -c NO_USERNS sh ARGV: run ARGV (as root) in a new user namespace that maps every id to
 * itself (written by this shell from outside, as util-linux's --map-users needs subordinate
 * ids) and whose max_user_namespaces is 0, so that nothing below it can make one.
 */
const NO_USERNS = [
  'f=$(mktemp -u) && mkfifo "$f" || exit 1',
  // the inner sh runs before its ids are mapped, so without capabilities: it waits for the map, then
  // execs a shell that is root in the namespace (capabilities come at exec) to set the limit
  'set_limit=\'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"\'',
  `unshare --user sh -c 'read _ < "$0"; rm -f "$0"; exec sh -c "$1" "$@"' "$f" "$set_limit" "$@" &`,
  'pid=$!',
  'while [ "$(readlink /proc/$pid/ns/user)" = "$(readlink /proc/self/ns/user)" ]; do sleep 0.01; done',
  `echo '0 0 4294967295' > /proc/$pid/uid_map && echo '0 0 4294967295' > /proc/$pid/gid_map && echo > "$f"`,
  `trap 'kill $pid' TERM INT`,
  'wait $pid',
].join('\n');

/** Start a cluster of N nodes (default 3); resolves once every node is idle. */
export async function startCluster(opts: { nodes?: number; noUserns?: string[] } = {}): Promise<TestCluster> {
  await reapStale();
  const n = opts.nodes ?? 3;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), STATE_PREFIX));
  fs.writeFileSync(path.join(dir, STATE_MARK), `${process.pid}\n`);
  fs.chmodSync(dir, 0o755);
  for (const d of ['etc', 'state', 'spool', 'run', 'log', 'local']) fs.mkdirSync(path.join(dir, d), { mode: 0o755 });
  const local = path.join(dir, 'local');
  fs.chmodSync(local, 0o1777);
  let registry: TestRegistry | undefined;
  const stop = async () => {
    await registry?.stop();
    registry = undefined;
    await stopState(dir);
  };
  try {
    const names = pickNames();
    const ctlAddr = `${names.net}.254`;
    const loginAddr = `${names.net}.1`;
    const nodes: ClusterNode[] = [];
    for (let i = 1; i <= n; i++) nodes.push({ name: `node${i}`, addr: `${names.net}.${10 + i}`, netns: `hc${names.tag}-node${i}` });
    makeBridge(dir, names);
    makeNetns(dir, names, `hc${names.tag}-ctl`, `hc${names.tag}v0`, ctlAddr);
    nodes.forEach((node, i) => makeNetns(dir, names, node.netns, `hc${names.tag}v${i + 1}`, node.addr));

    const hosts = path.join(dir, 'etc', 'hosts');
    const hostLines = ['127.0.0.1 localhost', `${loginAddr} ${os.hostname()} login`, `${ctlAddr} ctl`, ...nodes.map((x) => `${x.addr} ${x.name}`)];
    fs.writeFileSync(hosts, `${hostLines.join('\n')}\n`, { mode: 0o644 });
    const conf = path.join(dir, 'etc', 'slurm.conf');
    fs.writeFileSync(conf, slurmConf(dir, ctlAddr, nodes, local), { mode: 0o644 });
    // runs as the job's user before each task; "export" lines set the task's environment
    fs.writeFileSync(path.join(dir, 'etc', 'task-prolog'), `#!/bin/sh\necho "export TMPDIR=${local}"\n`, { mode: 0o755 });

    const ms = path.join(dir, 'munge');
    fs.mkdirSync(ms, { mode: 0o755 });
    sh('mungekey', ['--create', `--keyfile=${ms}/munge.key`]);
    sh('chown', ['-R', 'munge:munge', ms]);
    fs.chmodSync(path.join(ms, 'munge.key'), 0o400);
    const daemons = [
      startDaemon(dir, 'munged', TTL_S, [
        'setpriv', '--reuid=munge', '--regid=munge', '--init-groups', '/usr/sbin/munged', '-F', `--socket=${ms}/munge.socket`, `--key-file=${ms}/munge.key`,
        `--pid-file=${ms}/munged.pid`, `--log-file=${ms}/munged.log`, `--seed-file=${ms}/munged.seed`, '--origin=127.0.0.1',
      ]),
    ];
    const mungeOk = () => spawnSync('sh', ['-c', `munge -S ${ms}/munge.socket -n </dev/null | unmunge -S ${ms}/munge.socket >/dev/null`], { timeout: 5000 }).status === 0;
    await waitFor('munged', mungeOk, 10_000, dir, daemons);

    daemons.push(startInNs(dir, 'slurmctld', TTL_S, { netns: `hc${names.tag}-ctl`, host: 'ctl', hosts }, ['/usr/sbin/slurmctld', '-D', '-i', '-f', conf]));
    for (const node of nodes) {
      const slurmd = ['/usr/sbin/slurmd', '-D', '-N', node.name, '-f', conf];
      // a node whose jobs cannot make user namespaces: slurmd in a user namespace of its own that maps
      // every id to itself, whose max_user_namespaces is 0 (the limit holds for the namespaces below it)
      const argv = opts.noUserns?.includes(node.name) ? ['sh', '-c', NO_USERNS, 'sh', ...slurmd] : slurmd;
      daemons.push(startInNs(dir, `slurmd-${node.name}`, TTL_S, { netns: node.netns, host: node.name, hosts, local }, argv));
    }
    const env = {
      SLURM_CONF: conf,
      OMPI_MCA_btl_tcp_if_include: `${names.net}.0/24`,
      OMPI_MCA_oob_tcp_if_include: `${names.net}.0/24`,
      OMPI_MCA_if_base_do_not_resolve: '1',
    };
    const idle = () => {
      const out = spawnSync('sinfo', ['-h', '-N', '-o', '%T'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 5000 }).stdout ?? '';
      return out.split('\n').filter((l) => l === 'idle').length === n;
    };
    await waitFor(`${n} slurmds idle`, idle, 60_000, dir, daemons);
    fs.writeFileSync(path.join(dir, 'env.sh'), Object.entries(env).map(([k, v]) => `export ${k}=${v}\n`).join(''), { mode: 0o644 });
    return {
      dir,
      conf,
      subnet: `${names.net}.0/24`,
      loginAddr,
      nodes,
      local,
      env,
      async registry() {
        if (!registry) {
          registry = await startRegistry('none', { addr: loginAddr, accessLog: true });
          // so that stopState() also ends it when this test process dies
          recordDir(dir, registry.dir);
          fs.writeFileSync(path.join(dir, 'run', 'registry.pid'), `${registry.pid}\n`);
        }
        return registry;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
