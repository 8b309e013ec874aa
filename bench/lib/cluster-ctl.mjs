// Start the test suite's 3-node Slurm cluster (test/helpers/slurm-cluster.ts,
// compiled into dist/test), run a command with the cluster's environment
// (SLURM_CONF, Open MPI's interface settings, CLUSTER_DIR, CLUSTER_LOCAL,
// CLUSTER_NODES, CLUSTER_LOGIN, CLUSTER_NODE_ADDRS; with --registry also
// REGISTRY_HOST and REGISTRY_LOG, the access log of a registry on the login
// side's address), then stop the cluster, also on SIGINT/SIGTERM.
//   node bench/lib/cluster-ctl.mjs [--nodes N] [--registry] -- COMMAND ARGS...
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const argv = process.argv.slice(2);
let nodes = 3;
let withRegistry = false;
for (;;) {
  if (argv[0] === '--nodes') { nodes = Number(argv[1]); argv.splice(0, 2); } else if (argv[0] === '--registry') { withRegistry = true; argv.shift(); } else break;
}
if (argv[0] === '--') argv.shift();
if (argv.length === 0 || !(nodes >= 1)) {
  process.stderr.write('usage: node bench/lib/cluster-ctl.mjs [--nodes N] [--registry] -- COMMAND ARGS...\n');
  process.exit(2);
}
// the test helpers set test defaults in process.env when loaded (HPCC_WARM_IDLE=0):
// the command gets the environment this program was started with
const startEnv = { ...process.env };
const { startCluster } = await import(path.join(repo, 'dist/test/helpers/slurm-cluster.js'));
process.stderr.write(`== starting a ${nodes}-node Slurm cluster in network namespaces\n`);
const cluster = await startCluster({ nodes });
const reg = withRegistry ? await cluster.registry() : undefined;
let child;
let stopping = false;
const stop = async (code) => {
  if (stopping) return;
  stopping = true;
  try { await cluster.stop(); } finally { process.exit(code); }
};
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { child?.kill('SIGTERM'); void stop(130); });
child = spawn(argv[0], argv.slice(1), {
  stdio: 'inherit',
  env: {
    ...startEnv,
    ...cluster.env,
    CLUSTER_DIR: cluster.dir,
    CLUSTER_LOCAL: cluster.local,
    CLUSTER_NODES: cluster.nodes.map((n) => n.name).join(','),
    CLUSTER_LOGIN: cluster.loginAddr,
    CLUSTER_NODE_ADDRS: cluster.nodes.map((n) => n.addr).join(','),
    ...(reg ? { REGISTRY_HOST: reg.host, REGISTRY_LOG: path.join(reg.dir, 'registry.log') } : {}),
  },
});
child.on('exit', (code, signal) => void stop(code ?? (signal ? 128 : 1)));
