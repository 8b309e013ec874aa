#!/usr/bin/env bash
# Squashfs write benchmark: hpcc's writer vs `mksquashfs -processors 2` and
# `tar2sqfs -j 2` on the same Debian bookworm + python3 rootfs (~145 MB),
# same codec, level and block size. Not a test: prints a table and the
# ratios against the targets of docs/benchmarks.md, and exits 0 even when a
# target is missed (exit 1 only when an output fails verification).
#
#   sudo bash bench/squashfs-write.sh
#
# Environment:
#   RUNS=3            timed repetitions per tool (interleaved, order rotated)
#   WARMUP=1          untimed runs per tool first (page cache, node's code cache)
#   CODEC=gzip        gzip or zstd
#   LEVEL=            default: hpcc's GZIP_DEFAULT_LEVEL (read from src/) or 3 for zstd
#   BLOCK_SIZE=131072
#   TOOLS="mksquashfs tar2sqfs hpcc hpcc-cli"   (hpcc-cli = the full `hpcc build` command)
#   BUILD=1           compile hpcc first (npx tsc -p . && make -s -C native)
#   PROFILE=0         1: one extra hpcc run under `node --cpu-prof`, summarised
#   HPCC_BENCH_DIR=/var/tmp/hpcc-bench   rootfs cache, outputs and results/<UTC time>/
#
# Needs root, mmdebstrap (first run only, from apt's configured mirror),
# squashfs-tools, squashfs-tools-ng and /usr/bin/time (scripts/setup-host.sh).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
BENCH_DIR=${HPCC_BENCH_DIR:-/var/tmp/hpcc-bench}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
CODEC=${CODEC:-gzip}
BLOCK_SIZE=${BLOCK_SIZE:-131072}
read -r -a TOOLS <<< "${TOOLS:-mksquashfs tar2sqfs hpcc hpcc-cli}"
BUILD=${BUILD:-1}
PROFILE=${PROFILE:-0}
# Targets (issue 2): wall <= 1.0x tar2sqfs, size <= 1.01x mksquashfs, RSS <= 250 MB.
T_WALL=1.00 T_SIZE=1.01 T_RSS_MB=250

die() { printf 'squashfs-write: %s\n' "$*" >&2; exit 2; }
note() { printf '== %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root (the rootfs holds root-only files)"
for t in mksquashfs unsquashfs tar2sqfs sqfsdiff node; do
  command -v "$t" >/dev/null || die "$t missing (bash scripts/setup-host.sh)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time; see scripts/setup-host.sh)"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"

case "$CODEC" in
  gzip)
    if [ -z "${LEVEL:-}" ]; then
      LEVEL=$(sed -n 's/^export const GZIP_DEFAULT_LEVEL = \([0-9]\+\);.*/\1/p' "$REPO/src/formats/squashfs/codecs/gzip.ts")
      [ -n "$LEVEL" ] || die "cannot read GZIP_DEFAULT_LEVEL from src/formats/squashfs/codecs/gzip.ts; set LEVEL"
    fi ;;
  zstd) LEVEL=${LEVEL:-3} ;;
  *) die "CODEC must be gzip or zstd (the codecs whose level all three tools take)" ;;
esac

# ---------------------------------------------------------------- inputs
ROOTFS=$(bash "$HERE/lib/make-rootfs.sh")
TARFILE=$BENCH_DIR/rootfs.tar
if [ ! -s "$TARFILE" ] || [ "$BENCH_DIR/rootfs.stamp" -nt "$TARFILE" ]; then
  note "writing $TARFILE (input of tar2sqfs)"
  tar -C "$ROOTFS" --numeric-owner -cf "$TARFILE.tmp" .
  mv "$TARFILE.tmp" "$TARFILE"
fi

if [ "$BUILD" = 1 ]; then
  note "building hpcc (tsc + native)"
  if ! (cd "$REPO" && npx tsc -p . && make -s -C native) >&2; then
    note "WARNING: the build reported errors; benchmarking what dist/ holds"
  fi
fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=$BENCH_DIR/results/$STAMP
OUT=$BENCH_DIR/out
mkdir -p "$RES" "$OUT"
LOAD_START=$(uptime)

declare -A FAILED=()
ok_tool() { [ -z "${FAILED[$1]:-}" ]; }
out_of() { case "$1" in hpcc-cli) echo "$OUT/hpcc-cli.sif" ;; *) echo "$OUT/$1.sqfs" ;; esac; }

# Sets CMD (array) and STDIN for one run of tool $1 writing $2; $3 = tag.
command_of() {
  local tool=$1 out=$2 tag=$3
  STDIN=/dev/null
  case "$tool" in
    mksquashfs)
      CMD=(mksquashfs "$ROOTFS" "$out" -noappend -comp "$CODEC" -Xcompression-level "$LEVEL"
           -b "$BLOCK_SIZE" -processors 2 -no-progress -quiet) ;;
    tar2sqfs)
      CMD=(tar2sqfs -c "$CODEC" -X "level=$LEVEL" -b "$BLOCK_SIZE" -j 2 -f -q "$out")
      STDIN=$TARFILE ;;
    hpcc)
      CMD=(node "$HERE/lib/sqfs-write.mjs" --codec "$CODEC" --level "$LEVEL" --block-size "$BLOCK_SIZE"
           --stats "$RES/hpcc-stats.$tag.json" "$ROOTFS" "$out") ;;
    hpcc-cli)
      CMD=(node "$REPO/bin/run.js" build --force --json --compressor "$CODEC" --level "$LEVEL"
           --block-size "$((BLOCK_SIZE / 1024))K" "$out" "$ROOTFS") ;;
    *) die "unknown tool $tool" ;;
  esac
}

# One run of tool $1; $2 = round tag. Appends "wall rss_kib user sys size" to $RES/$1.tsv.
measure() {
  local tool=$1 tag=$2 out tf log size
  out=$(out_of "$tool")
  tf=$RES/time.$tool.$tag log=$RES/log.$tool.$tag
  rm -f "$out"
  sync
  command_of "$tool" "$out" "$tag"
  if ! /usr/bin/time -f '%e %M %U %S' -o "$tf" "${CMD[@]}" < "$STDIN" > "$log" 2> "$log.err"; then
    printf 'squashfs-write: %s failed (round %s), dropped from the benchmark:\n' "$tool" "$tag" >&2
    tail -n 20 "$log" "$log.err" "$tf" >&2
    FAILED[$tool]="round $tag: $(cat "$log" "$log.err" | grep -v '^\s*$' | tail -1 | cut -c1-300)"
    return 0
  fi
  if [ "$tool" = hpcc-cli ]; then
    size=$(node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(j.imageSize)' "$log")
  else
    size=$(stat -c %s "$out")
  fi
  [ "$tag" = warmup ] && return 0
  printf '%s %s\n' "$(tail -1 "$tf")" "$size" >> "$RES/$tool.tsv"
  printf '   %-10s round %s: %s s, %s KiB, %s bytes\n' "$tool" "$tag" "$(tail -1 "$tf" | cut -d' ' -f1)" \
    "$(tail -1 "$tf" | cut -d' ' -f2)" "$size" >&2
}

# ---------------------------------------------------------------- runs
note "warming the page cache"
tar -C "$ROOTFS" -cf - . | cat > /dev/null
cat "$TARFILE" > /dev/null
for ((w = 0; w < WARMUP; w++)); do
  for tool in "${TOOLS[@]}"; do if ok_tool "$tool"; then note "warm-up $tool"; measure "$tool" warmup; fi; done
done
n=${#TOOLS[@]}
for ((r = 1; r <= RUNS; r++)); do
  note "round $r/$RUNS ($(cut -d' ' -f1-3 /proc/loadavg))"
  for ((i = 0; i < n; i++)); do
    tool=${TOOLS[$(((i + r - 1) % n))]}
    if ok_tool "$tool"; then measure "$tool" "$r"; fi
  done
done
LOAD_END=$(uptime)
DONE=()
for tool in "${TOOLS[@]}"; do if ok_tool "$tool"; then DONE+=("$tool"); fi; done
TOOLS=("${DONE[@]}")

# ---------------------------------------------------------------- verification
# Each output must be a valid image with the requested codec and block size,
# and hold the same tree as mksquashfs's (contents, owners, modes; times too).
note "verifying outputs"
VERIFY_FAIL=0
verify_log=$RES/verify.txt
: > "$verify_log"
vfail() { printf 'FAIL %s\n' "$*" | tee -a "$verify_log" >&2; VERIFY_FAIL=1; }
vok() { printf 'ok   %s\n' "$*" | tee -a "$verify_log" >&2; }
image_of() {
  if [ "$1" = hpcc-cli ]; then
    # The squashfs partition inside the SIF, cut out with the offsets the CLI reported.
    local j=$RES/log.hpcc-cli.$RUNS off size
    off=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).partitionOffset)' "$j")
    size=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).imageSize)' "$j")
    dd if="$OUT/hpcc-cli.sif" of="$OUT/hpcc-cli.part.sqfs" iflag=skip_bytes,count_bytes skip="$off" count="$size" status=none
    echo "$OUT/hpcc-cli.part.sqfs"
  else
    out_of "$1"
  fi
}
REF=""
for tool in "${TOOLS[@]}"; do if [ "$tool" = mksquashfs ]; then REF=$(out_of mksquashfs); fi; done
for tool in "${TOOLS[@]}"; do
  img=$(image_of "$tool")
  if stat_out=$(unsquashfs -stat "$img" 2>&1); then
    comp=$(sed -n 's/^Compression \([a-z0-9]*\).*/\1/p' <<< "$stat_out" | head -1)
    bs=$(sed -n 's/^Block size \([0-9]*\).*/\1/p' <<< "$stat_out" | head -1)
    if [ "$comp" = "$CODEC" ] && [ "$bs" = "$BLOCK_SIZE" ]; then
      vok "$tool: unsquashfs -stat (compression $comp, block size $bs)"
    else
      vfail "$tool: unsquashfs -stat says compression '$comp', block size '$bs'"
    fi
  else
    vfail "$tool: unsquashfs -stat failed: $(tail -3 <<< "$stat_out")"
  fi
  [ -n "$REF" ] && [ "$tool" != mksquashfs ] || continue
  # sqfsdiff: contents, owners and permissions by default; -T adds mtimes.
  # Its exit status is not enough: it exits 1 when one image uses a basic and
  # the other an extended inode for the same entry (a representation choice,
  # e.g. mksquashfs indexes big directories), and it prints "has a different
  # link target" without changing the status. So judge every line it prints.
  diff_out=$RES/sqfsdiff.$tool.txt
  set +e
  sqfsdiff -T -a "$REF" -b "$img" > "$diff_out" 2>&1
  rc=$?
  set -e
  tolerated='^/.* has (an extended|a basic) type$'
  if [ "$tool" = hpcc-cli ]; then tolerated="$tolerated|\.singularity\.d"; fi  # hpcc build adds this skeleton
  other=$(grep -v -E -e "$tolerated" -e '^\s*$' "$diff_out" || true)
  if [ "$rc" -le 1 ] && [ -z "$other" ]; then
    extra=""
    if [ -s "$diff_out" ]; then
      extra=" ($(wc -l < "$diff_out") tolerated lines: basic/extended inode choice"
      if [ "$tool" = hpcc-cli ]; then extra="$extra, /.singularity.d skeleton"; fi
      extra="$extra)"
    fi
    vok "$tool: sqfsdiff -T against mksquashfs's image: same tree, contents, owners, modes, mtimes$extra"
  else
    vfail "$tool: sqfsdiff -T against mksquashfs's image exit $rc: $(head -5 <<< "$other" | tr '\n' ' ')"
  fi
done

# ---------------------------------------------------------------- report
median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }
col() { awk -v c="$2" '{print $c}' "$RES/$1.tsv"; }
declare -A WALL RSS SIZE CPU
{
  echo "# squashfs write benchmark, $STAMP"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
  echo "- load: start [$(sed 's/.*load average: //' <<< "$LOAD_START")], end [$(sed 's/.*load average: //' <<< "$LOAD_END")]"
  echo "- versions: $(mksquashfs -version 2>&1 | head -1 | cut -d'(' -f1 | sed 's/ *$//'), $(tar2sqfs --version 2>&1 | head -1), node $(node --version), hpcc $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+dirty')"
  echo "- input: $ROOTFS, $(du -sb "$ROOTFS" | cut -f1) bytes, $(find "$ROOTFS" | wc -l) entries; tar for tar2sqfs $(stat -c %s "$TARFILE") bytes"
  echo "- settings: $CODEC level $LEVEL, block size $BLOCK_SIZE, $RUNS interleaved runs per tool (+$WARMUP warm-up), warm page cache"
  echo
  echo "| tool | wall median (min–max) s | CPU user+sys s | peak RSS MB (max) | output bytes | output MB |"
  echo "|---|---|---|---|---|---|"
  for tool in "${TOOLS[@]}"; do
    WALL[$tool]=$(col "$tool" 1 | median)
    RSS[$tool]=$(col "$tool" 2 | sort -g | tail -1)
    CPU[$tool]=$(awk '{print $3+$4}' "$RES/$tool.tsv" | median)
    SIZE[$tool]=$(col "$tool" 5 | tail -1)
    nsizes=$(col "$tool" 5 | sort -u | wc -l)
    printf '| %s | %s (%s–%s) | %s | %.1f | %s%s | %.2f |\n' "$tool" "${WALL[$tool]}" \
      "$(col "$tool" 1 | sort -g | head -1)" "$(col "$tool" 1 | sort -g | tail -1)" "${CPU[$tool]}" \
      "$(awk -v k="${RSS[$tool]}" 'BEGIN {print k*1024/1e6}')" "${SIZE[$tool]}" \
      "$([ "$nsizes" = 1 ] || echo ' (varied)')" "$(awk -v b="${SIZE[$tool]}" 'BEGIN {print b/1e6}')"
  done
  echo
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }
  verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v <= t) ? "PASS" : "FAIL"}'; }
  have() { [ -n "${WALL[$1]:-}" ]; }
  if have hpcc; then
    echo "| target | value | limit | result |"
    echo "|---|---|---|---|"
    if have tar2sqfs; then
      v=$(ratio "${WALL[hpcc]}" "${WALL[tar2sqfs]}")
      echo "| wall hpcc / tar2sqfs | ${v}× | ≤ ${T_WALL}× | $(verdict "$v" "$T_WALL") |"
    fi
    if have mksquashfs; then
      v=$(ratio "${SIZE[hpcc]}" "${SIZE[mksquashfs]}")
      echo "| size hpcc / mksquashfs | ${v}× | ≤ ${T_SIZE}× | $(verdict "$v" "$T_SIZE") |"
    fi
    v=$(awk -v k="${RSS[hpcc]}" 'BEGIN {printf "%.1f", k*1024/1e6}')
    echo "| peak RSS hpcc | ${v} MB | ≤ ${T_RSS_MB} MB | $(verdict "$v" "$T_RSS_MB") |"
    echo
    if have tar2sqfs; then echo "- CPU time (user+sys) hpcc / tar2sqfs: $(ratio "${CPU[hpcc]}" "${CPU[tar2sqfs]}")× (less sensitive to outside load than wall time)"; fi
    if have mksquashfs; then echo "- wall hpcc / mksquashfs: $(ratio "${WALL[hpcc]}" "${WALL[mksquashfs]}")×"; fi
    if have tar2sqfs; then echo "- size hpcc / tar2sqfs: $(ratio "${SIZE[hpcc]}" "${SIZE[tar2sqfs]}")×"; fi
    if have hpcc-cli; then echo "- wall hpcc-cli / hpcc (CLI start-up, metadata, SIF, fsync): $(ratio "${WALL[hpcc-cli]}" "${WALL[hpcc]}")×"; fi
    s=$RES/hpcc-stats.$RUNS.json
    if [ -f "$s" ]; then node -e '
      const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      console.log(`- hpcc last run (in-process): wall ${s.wall_s} s, CPU user ${s.user_s} s + sys ${s.system_s} s, ` +
        `main-thread busy ${(s.main_thread_busy * 100).toFixed(0)} %, threadpool ${s.uv_threadpool_size}`);' "$s"
    fi
  fi
  echo
  for tool in "${!FAILED[@]}"; do echo "- **$tool failed** (${FAILED[$tool]}); left out"; done
  echo
  echo "Verification:"
  echo
  sed 's/^/    /' "$verify_log"
} > "$RES/summary.md"
cat "$RES/summary.md"

# ---------------------------------------------------------------- profile
if [ "$PROFILE" = 1 ]; then
  note "profiling one hpcc run (node --cpu-prof)"
  rm -rf "$RES/prof"
  /usr/bin/time -f '%e %M %U %S' -o "$RES/time.profile" \
    node --cpu-prof --cpu-prof-dir="$RES/prof" "$HERE/lib/sqfs-write.mjs" --codec "$CODEC" --level "$LEVEL" \
    --block-size "$BLOCK_SIZE" --stats "$RES/hpcc-stats.profile.json" "$ROOTFS" "$OUT/hpcc-prof.sqfs"
  node "$HERE/lib/cpuprofile-top.mjs" "$RES"/prof/*.cpuprofile | tee "$RES/profile.txt"
fi
echo
echo "results: $RES"
[ "${#FAILED[@]}" = 0 ] || { echo "squashfs-write: ${!FAILED[*]} failed (see $RES/log.*)" >&2; exit 1; }
[ "$VERIFY_FAIL" = 0 ] || { echo "squashfs-write: an output failed verification (see $verify_log)" >&2; exit 1; }
