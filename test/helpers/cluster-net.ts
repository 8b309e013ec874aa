/**
 * The network and process plumbing of the multi-node test cluster
 * (test/helpers/slurm-cluster.ts), root only:
 *   - a bridge in the host network namespace holding the "login" address
 *     (10.213.X.1/24, X picked free), and one network namespace per node
 *     (and one for slurmctld), each with lo and a veth to the bridge, no
 *     default route and IPv6 off: nothing leaves 10.213.X.0/24;
 *   - daemons run in the foreground under `timeout`, each in its own process
 *     group, inside a namespace (nsenter --net, then unshare --mount --uts:
 *     the node's hostname, its private /etc/hosts and, for nodes, a tmpfs of
 *     its own at the shared "node-local" path);
 *   - a ledger in the state directory of every object made, so that stopState()
 *     removes them all, also for a cluster whose test process died (reapStale()).
 * Names carry a random tag, so clusters of concurrent test runs never collide.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { removeTree } from './env.js';

/** The file that marks a directory as a cluster state directory (stopState deletes only those). */
export const STATE_MARK = '.hpcc-test-cluster';
export const STATE_PREFIX = 'hpcc-cluster-';

export interface NetNames {
  tag: string;
  bridge: string;
  /** 10.213.X */
  net: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run a command; throw with its stderr when it fails. */
export function sh(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeout ?? 20_000, env: opts.env ?? process.env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr ?? ''}${r.error?.message ?? ''}`);
  return r.stdout;
}

const ledger = (dir: string) => path.join(dir, 'run', 'ledger');
const record = (dir: string, kind: string, name: string) => fs.appendFileSync(ledger(dir), `${kind} ${name}\n`);
/** A directory outside the state directory that stopState() removes too (the registry's). */
export const recordDir = (dir: string, other: string) => record(dir, 'dir', other);

/** A tag and a 10.213.X.0/24 no interface or route of this machine uses yet. */
export function pickNames(): NetNames {
  const used = sh('ip', ['-4', '-o', 'addr', 'show']) + sh('ip', ['-4', 'route', 'show', 'table', 'all']);
  const free = [];
  for (let x = 1; x < 255; x++) if (!used.includes(`10.213.${x}.`)) free.push(x);
  if (free.length === 0) throw new Error('no free 10.213.X.0/24 for the test cluster');
  const x = free[randomBytes(1)[0]! % free.length]!;
  const tag = randomBytes(3).toString('hex');
  return { tag, bridge: `hc${tag}br`, net: `10.213.${x}` };
}

function disableIpv6(iface: string, netns?: string): void {
  const cmd = `echo 1 > /proc/sys/net/ipv6/conf/${iface}/disable_ipv6`;
  spawnSync(netns ? 'nsenter' : 'sh', netns ? [`--net=/run/netns/${netns}`, 'sh', '-c', cmd] : ['-c', cmd]);
}

/** The bridge with the login address; remembers what `ip netns add` will do to /run/netns. */
export function makeBridge(dir: string, n: NetNames): void {
  const mounted = spawnSync('mountpoint', ['-q', '/run/netns']).status === 0;
  fs.writeFileSync(path.join(dir, 'run', 'netns-before'), `dir=${fs.existsSync('/run/netns') ? 1 : 0} mnt=${mounted ? 1 : 0}\n`);
  record(dir, 'link', n.bridge);
  sh('ip', ['link', 'add', n.bridge, 'type', 'bridge']);
  disableIpv6(n.bridge);
  sh('ip', ['addr', 'add', `${n.net}.1/24`, 'dev', n.bridge]);
  sh('ip', ['link', 'set', n.bridge, 'up']);
}

/** A network namespace with lo and eth0 (a veth to the bridge) at ADDR/24, no default route. */
export function makeNetns(dir: string, n: NetNames, netns: string, veth: string, addr: string): void {
  record(dir, 'netns', netns);
  sh('ip', ['netns', 'add', netns]);
  record(dir, 'link', veth);
  sh('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  disableIpv6(veth);
  disableIpv6('eth0', netns);
  sh('ip', ['link', 'set', veth, 'master', n.bridge, 'up']);
  sh('ip', ['-n', netns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
  sh('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
}

/**
 * Start ARGV in NETNS with hostname HOST and the private hosts file (and, with
 * LOCAL, a fresh tmpfs mounted at LOCAL) in a mount namespace of its own, in
 * the background under `timeout TTL`, as the leader of a new process group.
 * nsenter, not `ip netns exec`: the latter remounts /sys, which hides
 * /sys/fs/cgroup, and slurmd then fails to start.
 */
export function startInNs(dir: string, name: string, ttl: number, ns: { netns: string; host: string; hosts: string; local?: string }, argv: string[]): number {
  const script =
    'set -e; mount --bind "$1" /etc/hosts; hostname "$2"; ' +
    'if [ -n "$3" ]; then mount -t tmpfs -o mode=1777,size=256m,nosuid,nodev hpcc-node-local "$3"; fi; shift 3; exec "$@"';
  const argvNs = ['nsenter', `--net=/run/netns/${ns.netns}`, 'unshare', '--mount', '--propagation', 'slave', '--uts', '--', 'sh', '-c', script, 'sh', ns.hosts, ns.host, ns.local ?? '', ...argv];
  return startDaemon(dir, name, ttl, argvNs);
}

/** Start ARGV in the background under `timeout TTL` in a new process group; its pid goes to run/NAME.pid. */
export function startDaemon(dir: string, name: string, ttl: number, argv: string[]): number {
  const out = fs.openSync(path.join(dir, 'log', `${name}.out`), 'a');
  const child = spawn('timeout', [String(ttl), ...argv], { detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  fs.writeFileSync(path.join(dir, 'run', `${name}.pid`), `${child.pid}\n`);
  return child.pid;
}

export const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const killGroup = (pid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(-pid, sig);
  } catch {
    /* gone */
  }
};

/** TERM the process groups of these daemons together, KILL what is left after GRACE ms. */
async function stopGroups(pids: number[], graceMs: number): Promise<void> {
  for (const p of pids) killGroup(p, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (pids.some(alive) && Date.now() < until) await sleep(50);
  for (const p of pids) killGroup(p, 'SIGKILL');
  while (pids.some(alive) && Date.now() < until + 2000) await sleep(20);
}

/** Kill (by pid) every process still in one of these network namespaces: job steps and tasks. */
async function sweepNetns(names: string[]): Promise<void> {
  for (let round = 0; round < 20; round++) {
    const pids = names.flatMap((ns) =>
      (spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '').split(/\s+/).filter(Boolean).map(Number),
    );
    if (pids.length === 0) return;
    for (const p of pids) {
      try {
        process.kill(p, round < 2 ? 'SIGTERM' : 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sleep(100);
  }
}

/**
 * Stop a cluster and remove everything its ledger lists: the daemons (slurm
 * first, munged and the registry last), every process left in its namespaces,
 * the veths, namespaces and bridge, what `ip netns add` did to /run/netns, and
 * the state directory itself. Safe to call twice, and on a half-made cluster.
 */
export async function stopState(dir: string): Promise<void> {
  if (!fs.existsSync(path.join(dir, STATE_MARK))) return;
  const run = path.join(dir, 'run');
  const pidOf = (f: string) => Number(fs.readFileSync(path.join(run, f), 'utf8').trim());
  const pidFiles = fs.existsSync(run) ? fs.readdirSync(run).filter((f) => f.endsWith('.pid') && /^(slurm|munged|registry)/.test(f)) : [];
  const slurm = pidFiles.filter((f) => f.startsWith('slurm')).map(pidOf);
  const rest = pidFiles.filter((f) => !f.startsWith('slurm')).map(pidOf);
  const lines = fs.existsSync(ledger(dir)) ? fs.readFileSync(ledger(dir), 'utf8').split('\n').filter(Boolean) : [];
  const of = (kind: string) => lines.filter((l) => l.startsWith(`${kind} `)).map((l) => l.slice(kind.length + 1));
  await stopGroups(slurm, 3000);
  await sweepNetns(of('netns'));
  await stopGroups(rest, 3000);
  for (const l of of('link').reverse()) spawnSync('ip', ['link', 'del', l]); // a veth takes its peer along
  for (const ns of of('netns')) spawnSync('ip', ['netns', 'del', ns]);
  const before = path.join(run, 'netns-before');
  if (fs.existsSync(before) && fs.existsSync('/run/netns') && fs.readdirSync('/run/netns').length === 0) {
    const b = fs.readFileSync(before, 'utf8');
    if (b.includes('mnt=0') && spawnSync('mountpoint', ['-q', '/run/netns']).status === 0) spawnSync('umount', ['/run/netns']);
    if (b.includes('dir=0') && spawnSync('mountpoint', ['-q', '/run/netns']).status !== 0) fs.rmdirSync('/run/netns');
  }
  for (const d of of('dir')) if (path.dirname(d) === os.tmpdir()) removeTree(d);
  removeTree(dir);
}

/** Stop the clusters of test processes that died without stopping theirs (their ledger says what to remove). */
export async function reapStale(): Promise<void> {
  const tmp = os.tmpdir();
  for (const e of fs.readdirSync(tmp)) {
    if (!e.startsWith(STATE_PREFIX)) continue;
    const dir = path.join(tmp, e);
    const mark = path.join(dir, STATE_MARK);
    let owner = 0;
    try {
      if (fs.lstatSync(dir).uid !== 0 || fs.lstatSync(mark).uid !== 0) continue;
      owner = Number(fs.readFileSync(mark, 'utf8').trim());
    } catch {
      continue;
    }
    if (owner > 0 && !alive(owner)) await stopState(dir);
  }
}
