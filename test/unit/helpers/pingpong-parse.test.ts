/**
 * bench/lib/pingpong.sh reads the figures test/helpers/mpi-pingpong.c prints
 * (bench/sharens.sh and bench/cluster.sh share it): the parser against the
 * program's own format string, with the real program's output when mpicc and
 * mpirun are installed, and its refusals.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, findTool, makeTempDir, removeTree } from '../../helpers/env.js';

const LIB = path.join(REPO_ROOT, 'bench', 'lib', 'pingpong.sh');
const SRC = path.join(REPO_ROOT, 'test', 'helpers', 'mpi-pingpong.c');

function parse(output: string): { status: number | null; stdout: string } {
  const r = spawnSync('bash', ['-c', '. "$1"; pingpong_parse "$2"', 'parse', LIB, output], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout };
}

describe('bench/lib/pingpong.sh: the MPI ping-pong figures', function () {
  this.timeout(120_000);

  it('parses the lines in the format mpi-pingpong.c prints, and refuses output without both figures', () => {
    expect(fs.readFileSync(SRC, 'utf8')).to.contain('printf("pingpong %zu B: %.2f us one-way, %.1f MB/s\\n", bytes, one_way * 1e6, bytes / one_way / 1e6)');
    const out = 'warmup noise\npingpong 8 B: 1.25 us one-way, 6.4 MB/s\npingpong 1048576 B: 95.10 us one-way, 11025.9 MB/s\n';
    expect(parse(out)).to.deep.equal({ status: 0, stdout: '1.25 11025.9\n' });
    expect(parse('pingpong 8 B: 1.25 us one-way, 6.4 MB/s\n').status).to.equal(1);
    expect(parse('').status).to.equal(1);
  });

  it("pingpong_best keeps the lowest latency and highest bandwidth of the runs, and the CMA warning", () => {
    // as_user prints run N's output (file runN) on its Nth call, in the subshell pingpong_best makes
    const script = `
      die() { echo "die: $*"; exit 2; }
      dir=$2
      echo 0 > "$dir/n"
      as_user() { local n=$(($(cat "$dir/n") + 1)); echo "$n" > "$dir/n"; cat "$dir/run$n"; }
      . "$1"
      pingpong_best 3 row /usr/local/bin/mpi-pingpong 2000
      echo "$PP_BEST8 $PP_BEST1M $PP_CMA_WARN"`;
    const dir = makeTempDir('hpcc-pingpong-');
    const best = () => spawnSync('bash', ['-c', script, 'best', LIB, dir], { encoding: 'utf8' });
    try {
      const runs = [
        ['pingpong 8 B: 2.00 us one-way, 4.0 MB/s', 'pingpong 1048576 B: 100.00 us one-way, 10485.8 MB/s'],
        ['CMA not available due to different user namespaces', 'pingpong 8 B: 1.50 us one-way, 5.3 MB/s', 'pingpong 1048576 B: 90.00 us one-way, 11650.8 MB/s'],
        ['pingpong 8 B: 1.75 us one-way, 4.6 MB/s', 'pingpong 1048576 B: 120.00 us one-way, 8738.1 MB/s'],
      ];
      runs.forEach((lines, i) => fs.writeFileSync(path.join(dir, `run${i + 1}`), lines.join('\n') + '\n'));
      const r = best();
      expect(r.stdout, r.stderr).to.equal('1.50 11650.8 yes\n');
      fs.writeFileSync(path.join(dir, 'run2'), 'no figures here\n');
      const bad = best();
      expect(bad.status).to.equal(2);
      expect(bad.stdout).to.equal('die: row: no figures\n');
    } finally {
      removeTree(dir);
    }
  });

  it("reads the real program's output (mpicc, mpirun -n 2)", function () {
    if (findTool('mpicc') === null || findTool('mpirun') === null) this.skip();
    const dir = makeTempDir('hpcc-pingpong-');
    try {
      const bin = path.join(dir, 'pp');
      expect(spawnSync('mpicc', ['-O2', '-o', bin, SRC]).status).to.equal(0);
      const r = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-n', '2', bin, '100'], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).to.equal(0);
      const p = parse(r.stdout + r.stderr);
      expect(p.status).to.equal(0);
      expect(p.stdout).to.match(/^\d+\.\d\d \d+\.\d\n$/);
    } finally {
      removeTree(dir);
    }
  });
});
