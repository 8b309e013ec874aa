#!/usr/bin/env bash
# Definition-file build benchmark: definitions/python-science built by hpcc against the
# same steps done by hand, alternating, in one run, as the same unprivileged user:
#
#   hpcc     hpcc build --notest -F OUT.sif python-science.def
#            (mmdebstrap --mode=unshare, tar into the build namespace, %post chrooted
#            in a user+mount+PID namespace, /.singularity.d, squashfs into a SIF)
#   by hand  mmdebstrap --mode=unshare --variant=minbase --include=ca-certificates bookworm
#              ROOT.tar SOURCES   (the same sources.list lines hpcc derives from the
#              host's apt configuration: scripts/apt-sources.mjs)
#            unshare --map-auto --map-root-user: tar -x into ROOT (devices skipped, as hpcc
#              does), then, in a new mount+PID namespace, /proc, /dev, /sys and the host's
#              resolv.conf bound, chroot ROOT /bin/sh -e -c "%post" (the def file's own
#              %post, {{ }} filled with its %arguments defaults)
#            mksquashfs ROOT OUT -comp gzip -Xcompression-level L -b 131072 -processors P
#              inside the same namespace (so every owner is read)
#
# %test is skipped on both sides (--notest). Downloads: both sides fetch the same packages
# from the host's configured mirror (no proxy, no shared apt cache: hpcc takes no apt options
# for mmdebstrap, and giving the hand side a warm cache would measure a different thing). The
# runs alternate (order rotated per round) after one untimed warm-up of each side, so the
# mirror's and the network's slow phases hit both; the medians and the ratio are printed
# with the download volume of one run (apt's "Need to get" lines) for context.
#
# Peak memory: as root, each run gets a fresh memory cgroup (v2 memory.peak, else v1
# memory.max_usage_in_bytes): the whole process tree, page cache written by it included.
# /usr/bin/time's max RSS (the largest single process) is printed as well.
#
#   sudo bash bench/build.sh              (runs the builds as BENCH_USER=hpcctest)
#
# Environment: REPEAT=3, WARMUP=1, BENCH_USER (default hpcctest as root, else yourself; needs
# /etc/subuid and /etc/subgid ranges), LEVEL (default hpcc's GZIP_DEFAULT_LEVEL), BLOCK_SIZE=131072,
# HPCC_BENCH_DIR=/var/tmp/hpcc-bench-build. Target: hpcc <= 1.1x by hand (wall-clock median).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
DEF_DIR=$REPO/definitions/python-science
DEF=$DEF_DIR/python-science.def
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-1}
BLOCK_SIZE=${BLOCK_SIZE:-131072}
TARGET=1.10
die() { printf 'build-bench: %s\n' "$*" >&2; exit 2; }
note() { printf '== %s\n' "$*" >&2; }

[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer"
for t in mmdebstrap unshare mksquashfs node tar setpriv apt-get; do command -v "$t" >/dev/null || die "$t missing"; done
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time)"
[ -x "$REPO/dist/native/hpcc-launch" ] || die "build hpcc first (npm run build)"
if [ -z "${LEVEL:-}" ]; then
  LEVEL=$(sed -n 's/^export const GZIP_DEFAULT_LEVEL = \([0-9]\+\);.*/\1/p' "$REPO/src/formats/squashfs/codecs/gzip.ts")
  [ -n "$LEVEL" ] || die "cannot read GZIP_DEFAULT_LEVEL; set LEVEL"
fi
if [ "$(id -u)" = 0 ]; then BENCH_USER=${BENCH_USER:-hpcctest}; else BENCH_USER=${BENCH_USER:-$(id -un)}; fi
grep -q "^$BENCH_USER:" /etc/subuid && grep -q "^$BENCH_USER:" /etc/subgid || die "$BENCH_USER has no /etc/subuid or /etc/subgid range"
PROCS=$(nproc)

# The def file's %post, with {{ NAME }} replaced by its %arguments defaults (the def has no
# other arguments), and its Include: line.
section() { awk -v s="$1" '/^%/ {on = ($1 == s); next} /^(Bootstrap|OSVersion|Include|Stage|From|MirrorURL):/ {on = 0} on' "$DEF"; }
POST=$(section %post)
while IFS='=' read -r k v; do
  k=$(echo "$k" | tr -d ' ')
  [ -n "$k" ] && POST=${POST//"{{ $k }}"/$v}
done < <(section %arguments | sed 's/^ *//')
! grep -q '{{' <<< "$POST" || die "unfilled {{ }} in %post"
INCLUDE=$(sed -n 's/^Include: *//p' "$DEF" | tr ' ' ',')
SUITE=$(sed -n 's/^OSVersion: *//p' "$DEF")
HOST_SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ "$SUITE" = "$HOST_SUITE" ] || die "the hand side reproduces hpcc's sources only for the host's own suite ($HOST_SUITE)"

BENCH_DIR=${HPCC_BENCH_DIR:-/var/tmp/hpcc-bench-build}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=$BENCH_DIR/results/build-$STAMP
WORK=$BENCH_DIR/work-$STAMP
mkdir -p "$RES" "$WORK"
chmod 755 "$BENCH_DIR" "$BENCH_DIR/results"
chmod 777 "$WORK" "$RES"
CGROUPS=()
cleanup() {
  for c in "${CGROUPS[@]}"; do rmdir "$c" 2>/dev/null || true; done
  # trees of subordinate ids: removed from inside a namespace of the same map
  as_user unshare --map-auto --map-root-user rm -rf "$WORK" 2>/dev/null || rm -rf "$WORK"
}
as_user() {
  if [ "$(id -u)" = 0 ] && [ "$BENCH_USER" != root ]; then
    setpriv --reuid "$BENCH_USER" --regid "$BENCH_USER" --init-groups env HOME="$(getent passwd "$BENCH_USER" | cut -d: -f6)" "$@"
  else "$@"; fi
}
trap cleanup EXIT

# The same sources.list lines hpcc writes (src/build/debootstrap.ts, hostSources).
node "$REPO/scripts/apt-sources.mjs" "$SUITE" > "$WORK/sources.list"
chmod 644 "$WORK/sources.list"
[ -s "$WORK/sources.list" ] || die "no apt sources on the host"
printf '%s\n' "$POST" > "$WORK/post.sh"
chmod 644 "$WORK/post.sh"

# A memory cgroup for one run (root only); prints its path or nothing.
cg_new() {
  [ "$(id -u)" = 0 ] || return 0
  local c
  for base in /sys/fs/cgroup /sys/fs/cgroup/memory; do
    if [ -e "$base/cgroup.procs" ] && { [ -e "$base/memory.max_usage_in_bytes" ] || grep -qw memory "$base/cgroup.subtree_control" 2>/dev/null; }; then
      c=$base/hpcc-bench-build-$$-$RANDOM
      mkdir "$c" 2>/dev/null || continue
      CGROUPS+=("$c")
      echo "$c"
      return 0
    fi
  done
}
cg_peak() {
  local c=$1
  if [ -z "$c" ]; then echo NA; elif [ -e "$c/memory.peak" ]; then cat "$c/memory.peak"; else cat "$c/memory.max_usage_in_bytes"; fi
}

hand_steps() {
  # runs as BENCH_USER
  local w=$1 out=$2
  set -e
  mmdebstrap --mode=unshare --variant=minbase --quiet ${INCLUDE:+--include=$INCLUDE} "$SUITE" "$w/root.tar" "$WORK/sources.list"
  unshare --map-auto --map-root-user --mount --pid --fork --kill-child sh -e -c '
    w=$1 out=$2 level=$3 bs=$4 procs=$5 post=$6
    mkdir "$w/root"
    tar -C "$w/root" --numeric-owner --same-owner --exclude="./dev/*" -xf "$w/root.tar"
    rm "$w/root.tar"
    r=$w/root
    mount -t proc proc "$r/proc"
    mount --rbind /sys "$r/sys"
    mount --rbind /dev "$r/dev"
    touch "$r/etc/resolv.conf" 2>/dev/null || true
    mount --bind /etc/resolv.conf "$r/etc/resolv.conf"
    cp "$post" "$r/.post.sh"
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C chroot "$r" /bin/sh -e /.post.sh
    rm "$r/.post.sh"
    umount "$r/etc/resolv.conf"
    umount -l "$r/dev" "$r/sys" "$r/proc"
    mksquashfs "$r" "$out" -noappend -comp gzip -Xcompression-level "$level" -b "$bs" -processors "$procs" -no-progress -quiet
  ' sh "$w" "$out" "$LEVEL" "$BLOCK_SIZE" "$PROCS" "$WORK/post.sh"
}
export -f hand_steps
export INCLUDE SUITE WORK LEVEL BLOCK_SIZE PROCS

# One run of side $1, tag $2: appends "wall maxrss_kib cgroup_peak_bytes" to $RES/$1.tsv.
measure() {
  local side=$1 tag=$2 w=$WORK/$1-$2 tf=$RES/time.$1.$2 log=$RES/log.$1.$2 cg
  mkdir "$w"; chmod 777 "$w"
  cg=$(cg_new)
  sync
  local cmd
  case $side in
    hpcc) cmd=(node "$REPO/bin/run.js" build --notest -F -q --compressor gzip --level "$LEVEL" --block-size "$((BLOCK_SIZE / 1024))K" "$w/out.sif" "$DEF") ;;
    hand) cmd=(bash -c 'hand_steps "$1" "$2"' hand "$w" "$w/out.sqfs") ;;
  esac
  if ! (
    [ -z "$cg" ] || echo "$BASHPID" > "$cg/cgroup.procs"
    cd "$DEF_DIR"
    export HPCC_TMPDIR=$w
    as_user /usr/bin/time -f '%e %M' -o "$tf" "${cmd[@]}" > "$log" 2>&1 < /dev/null
  ); then
    tail -n 30 "$log" >&2
    die "$side failed (round $tag)"
  fi
  local size
  size=$(stat -c %s "$w"/out.* 2>/dev/null | head -1)
  case $tag in warmup) ;; *) echo "$(cat "$tf") $(cg_peak "$cg") $size" >> "$RES/$side.tsv" ;; esac
  printf '   %-5s round %-6s %7s s  max RSS %s KiB  cgroup peak %s  image %s bytes\n' "$side" "$tag" $(cat "$tf") "$(cg_peak "$cg")" "$size" >&2
  as_user unshare --map-auto --map-root-user rm -rf "$w"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
note "python-science: gzip level $LEVEL, block size $BLOCK_SIZE, $REPEAT rounds (+$WARMUP warm-up), as $BENCH_USER"
for ((i = 0; i < WARMUP; i++)); do measure hpcc warmup; measure hand warmup; done
for ((r = 1; r <= REPEAT; r++)); do
  note "round $r/$REPEAT (load $(cut -d' ' -f1-3 /proc/loadavg))"
  if ((r % 2)); then measure hpcc "$r"; measure hand "$r"; else measure hand "$r"; measure hpcc "$r"; fi
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
NEED=$(grep -h -o 'Need to get [^ ]* [kMG]*B' "$RES/log.hand.1" 2>/dev/null | head -1 | sed 's/Need to get //' || true)

median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }
col() { awk -v c="$2" '{print $c}' "$RES/$1.tsv" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "NA"}'; }
mib() { awk -v v="$1" -v d="$2" 'BEGIN {if (v == "NA") print "NA"; else printf "%.0f", v/d}'; }
HT=$(col hpcc 1) BT=$(col hand 1) HR=$(col hpcc 2) BR=$(col hand 2) HC=$(col hpcc 3) BC=$(col hand 3)
R=$(ratio "$HT" "$BT")
{
  echo "# Definition-file build benchmark, $STAMP"
  echo
  echo "- machine: $PROCS CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "- load average (1/5/15 min): start $LOAD_START, end $LOAD_END"
  echo "- versions: $(mmdebstrap --version), $(mksquashfs -version 2>&1 | head -1 | cut -d'(' -f1 | sed 's/ *$//'), unshare $(unshare --version | awk '{print $NF}'), node $(node --version), hpcc $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+dirty')"
  echo "- image: definitions/python-science (bookworm minbase + ca-certificates, %post apt-get install python3-minimal python3-numpy python3-scipy); %post downloads per run: ${NEED:-see logs} (plus the minbase packages mmdebstrap fetches)"
  echo "- settings: gzip level $LEVEL, block size $BLOCK_SIZE, mksquashfs -processors $PROCS, $REPEAT alternating rounds (+$WARMUP warm-up each), as $BENCH_USER"
  echo
  echo "| | wall (median, s) | max RSS of one process (median, MiB) | cgroup peak, whole tree (median, MiB) |"
  echo "|---|---|---|---|"
  echo "| hpcc build | $HT | $(mib "$HR" 1024) | $(mib "$HC" 1048576) |"
  echo "| by hand (mmdebstrap, unshare + chroot, mksquashfs) | $BT | $(mib "$BR" 1024) | $(mib "$BC" 1048576) |"
  echo
  echo "hpcc / by hand, wall: **${R}x** (target <= ${TARGET}x: $(awk -v v="$R" -v t="$TARGET" 'BEGIN {print (v != "NA" && v <= t) ? "PASS" : "MISS"}'))"
  echo
  echo "Raw rows (wall s, max RSS KiB, cgroup peak bytes, output bytes):"
  echo
  echo '```'
  for s in hpcc hand; do sed "s/^/$s /" "$RES/$s.tsv"; done
  echo '```'
} | tee "$RES/report.md"
