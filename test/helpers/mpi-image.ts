/**
 * MPI test images: a program compiled with the host's mpicc, packed with the
 * host's Open MPI runtime (make-mpi-tree.sh: the binary at /usr/local/bin/BIN,
 * Open MPI's and PMIx's plugins and config, every library they need) into a
 * SIF readable by the test user; and the check of test/fixtures/mpi/mpi-check.c's
 * output. Used by the one-node, multi-node and wrapper Slurm tests.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, runHpcc } from './env.js';

/** Compile SOURCE into DIR/BIN, make the tree and pack DIR/SIFNAME (mode 0644); returns the SIF's path. */
export function makeMpiSif(dir: string, source: string, bin: string, sifName = 'mpi.sif'): string {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mpicc', ['-O2', '-o', path.join(dir, bin), source]);
  const tree = path.join(dir, 'tree');
  execFileSync('bash', [path.join(REPO_ROOT, 'test/helpers/make-mpi-tree.sh'), tree, path.join(dir, bin)]);
  const sif = path.join(dir, sifName);
  const b = runHpcc(['build', sif, tree]);
  expect(b.status, b.stderr).to.equal(0);
  fs.chmodSync(sif, 0o644);
  return sif;
}

/** mpi-check's output: every rank's ring, sum, max and bcast right, its hosts line, PERNODE ranks on each of NODES. */
export function expectMpiCheck(out: string, ranks: number, perNode: number, nodes: readonly string[]): void {
  const rankLines = out.split('\n').filter((l) => l.startsWith('rank '));
  expect(rankLines, out).to.have.length(ranks);
  const sum = (ranks * (ranks - 1)) / 2;
  const hostOf: string[] = [];
  for (const l of rankLines) {
    const m = /^rank (\d+) of (\d+) on (\S+): ring ok, sum (\d+), max (\d+), bcast ok$/.exec(l);
    expect(m, l).to.not.equal(null);
    expect([Number(m![2]), Number(m![4]), Number(m![5])], l).to.deep.equal([ranks, sum, ranks - 1]);
    hostOf[Number(m![1])] = m![3]!;
  }
  const hostsLine = out.split('\n').find((l) => l.startsWith('hosts:'));
  expect(hostsLine, out).to.equal(`hosts: ${hostOf.join(' ')}`);
  expect(out, out).to.contain('all checks passed');
  for (const n of nodes) expect(hostOf.filter((h) => h === n), `ranks on ${n}: ${out}`).to.have.length(perNode);
}
