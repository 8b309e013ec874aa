#!/usr/bin/env bash
# OCI conversion benchmark: oci-archive → squashfs, three ways, same codec,
# level and block size, interleaved in one run:
#
#   hpcc            hpcc build --compressor gzip --level L --block-size 128K OUT.sif oci-archive:A:bench
#                   (the whole command: layers stream from the archive through the
#                   flattener into the SIF; metadata, fsync, rename)
#   umoci+mksquashfs  tar -xf A (the archive is a tarred OCI layout; umoci needs the
#                   directory) && umoci unpack --image DIR:bench BUNDLE &&
#                   mksquashfs BUNDLE/rootfs OUT -comp gzip -Xcompression-level L -b 131072 -processors 2
#                   (what a docker→SIF builder without a streaming flattener does)
#   tar2sqfs        one-layer image: tar -xOf A blobs/sha256/LAYER | gzip -dc | tar2sqfs -j 2 …
#                   (straight from the archive, decompression included);
#                   multi-layer image: tar2sqfs -j 2 … < FLAT.tar, where FLAT.tar is umoci's
#                   flattened tree tarred once, untimed, uncompressed. tar2sqfs knows nothing
#                   of layers or whiteouts (and stops at the first tar's end marker), so it is
#                   handed the flattening and the decompression for free: a stricter target.
#
# Prints a table, the ratios against the targets (hpcc ≤ 0.5× umoci+mksquashfs,
# ≤ 1.0× tar2sqfs; wall-clock medians) with PASS/MISS, and the load average.
# Every output is checked with unsquashfs -stat and against the umoci+mksquashfs
# image with sqfsdiff -T (exit 1 when one differs). Not a test.
#
#   sudo bash bench/convert.sh
#
# Environment: RUNS=3 (interleaved, order rotated), WARMUP=1, IMAGES="1 5" (layer
# counts: bench/lib/make-oci-archives.sh), LEVEL (default hpcc's GZIP_DEFAULT_LEVEL),
# BLOCK_SIZE=131072, BUILD=1 (tsc + native first), HPCC_BENCH_DIR=/var/tmp/hpcc-bench.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
BENCH_DIR=${HPCC_BENCH_DIR:-/var/tmp/hpcc-bench}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
BLOCK_SIZE=${BLOCK_SIZE:-131072}
BUILD=${BUILD:-1}
read -r -a IMAGES <<< "${IMAGES:-1 5}"
TOOLS=(hpcc umoci+mksquashfs tar2sqfs)
T_UMOCI=0.50 T_TAR2SQFS=1.00

die() { printf 'convert: %s\n' "$*" >&2; exit 2; }
note() { printf '== %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || die "run as root (the rootfs holds root-only files; umoci unpack keeps owners)"
for t in umoci mksquashfs unsquashfs tar2sqfs sqfsdiff node gzip; do
  command -v "$t" >/dev/null || die "$t missing (bash scripts/setup-host.sh)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time)"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
if [ -z "${LEVEL:-}" ]; then
  LEVEL=$(sed -n 's/^export const GZIP_DEFAULT_LEVEL = \([0-9]\+\);.*/\1/p' "$REPO/src/formats/squashfs/codecs/gzip.ts")
  [ -n "$LEVEL" ] || die "cannot read GZIP_DEFAULT_LEVEL from src/formats/squashfs/codecs/gzip.ts; set LEVEL"
fi

OCI_DIR=$(bash "$HERE/lib/make-oci-archives.sh")
if [ "$BUILD" = 1 ]; then
  note "building hpcc (tsc + native)"
  (cd "$REPO" && npx tsc -p . && make -s -C native) >&2 || note "WARNING: the build reported errors; benchmarking what dist/ holds"
fi
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=$BENCH_DIR/results/convert-$STAMP
WORK=$BENCH_DIR/convert-work
rm -rf "$WORK"
mkdir -p "$RES" "$WORK"
trap 'rm -rf "$WORK"' EXIT
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

archive_of() { echo "$OCI_DIR/bookworm-py-$1.oci.tar"; }
# The layer digests of image $1, in order (index.json → manifest, read from the archive).
layers_of() {
  local a; a=$(archive_of "$1")
  node -e '
    const { execFileSync } = require("child_process");
    const a = process.argv[1];
    const read = (p) => JSON.parse(execFileSync("tar", ["-xOf", a, p], { maxBuffer: 1 << 26 }));
    const m = read("./blobs/sha256/" + read("./index.json").manifests[0].digest.slice(7));
    console.log(m.layers.map((l) => l.digest.slice(7)).join(" "));' "$a"
}
declare -A FLAT=() LAYER=()
for img in "${IMAGES[@]}"; do
  [ -s "$(archive_of "$img")" ] || die "no archive for IMAGES entry $img (bench/lib/make-oci-archives.sh makes 1 and 5)"
  read -r -a ls <<< "$(layers_of "$img")"
  if [ "${#ls[@]}" = 1 ]; then LAYER[$img]=${ls[0]}; else FLAT[$img]=$WORK/flat-$img.tar; fi
done

out_of() { echo "$WORK/out.$2.$1"; }  # tool image
# Sets CMD for one run of tool $1 on image $2.
command_of() {
  local tool=$1 img=$2 a out w
  a=$(archive_of "$img") out=$(out_of "$tool" "$img") w=$WORK/umoci-$img
  case "$tool" in
    hpcc)
      CMD=(node "$REPO/bin/run.js" build --force --json --compressor gzip --level "$LEVEL"
           --block-size "$((BLOCK_SIZE / 1024))K" "$out" "oci-archive:$a:bench") ;;
    umoci+mksquashfs)
      CMD=(bash -c 'set -e; mkdir "$1"; tar -C "$1" -xf "$2"; umoci unpack --image "$1:bench" "$3" > /dev/null
        mksquashfs "$3/rootfs" "$4" -noappend -comp gzip -Xcompression-level "$5" -b "$6" -processors 2 -no-progress -quiet' \
        umoci "$w/layout" "$a" "$w/bundle" "$out" "$LEVEL" "$BLOCK_SIZE") ;;
    tar2sqfs)
      if [ -n "${LAYER[$img]:-}" ]; then
        CMD=(bash -c 'set -eo pipefail; tar -xOf "$1" "./blobs/sha256/$2" | gzip -dc | tar2sqfs -c gzip -X "level=$4" -b "$5" -j 2 -f -q "$3"' \
          tar2sqfs "$a" "${LAYER[$img]}" "$out" "$LEVEL" "$BLOCK_SIZE")
      else
        CMD=(bash -c 'tar2sqfs -c gzip -X "level=$3" -b "$4" -j 2 -f -q "$2" < "$1"' tar2sqfs "${FLAT[$img]}" "$out" "$LEVEL" "$BLOCK_SIZE")
      fi ;;
  esac
}

# One run; appends "wall rss_kib user sys" to $RES/$tool.$img.tsv (tool name with '+' kept).
measure() {
  local tool=$1 img=$2 tag=$3 tf log
  tf=$RES/time.$tool.$img.$tag log=$RES/log.$tool.$img.$tag
  rm -rf "$(out_of "$tool" "$img")" "$WORK/umoci-$img"
  mkdir -p "$WORK/umoci-$img"
  sync
  command_of "$tool" "$img"
  if ! /usr/bin/time -f '%e %M %U %S' -o "$tf" "${CMD[@]}" > "$log" 2> "$log.err" < /dev/null; then
    tail -n 20 "$log" "$log.err" >&2
    die "$tool failed on image $img (round $tag)"
  fi
  case $tag in warmup | flat) ;; *) tail -1 "$tf" >> "$RES/$tool.$img.tsv" ;; esac
  printf '   %-16s %s-layer round %s: %s s\n' "$tool" "$img" "$tag" "$(tail -1 "$tf" | cut -d' ' -f1)" >&2
}

note "warming the page cache; flattened tars for tar2sqfs (untimed)"
for img in "${IMAGES[@]}"; do
  cat "$(archive_of "$img")" > /dev/null
  if [ -n "${FLAT[$img]:-}" ]; then
    measure umoci+mksquashfs "$img" flat
    tar -C "$WORK/umoci-$img/bundle/rootfs" --numeric-owner -cf "${FLAT[$img]}" .
  fi
done
for ((w = 0; w < WARMUP; w++)); do
  for img in "${IMAGES[@]}"; do for tool in "${TOOLS[@]}"; do measure "$tool" "$img" warmup; done; done
done
for ((r = 1; r <= RUNS; r++)); do
  note "round $r/$RUNS (load $(cut -d' ' -f1-3 /proc/loadavg))"
  for img in "${IMAGES[@]}"; do
    for ((i = 0; i < ${#TOOLS[@]}; i++)); do measure "${TOOLS[$(((i + r - 1) % ${#TOOLS[@]}))]}" "$img" "$r"; done
  done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- verification
note "verifying outputs"
VERIFY_FAIL=0
vlog=$RES/verify.txt
: > "$vlog"
vfail() { printf 'FAIL %s\n' "$*" | tee -a "$vlog" >&2; VERIFY_FAIL=1; }
vok() { printf 'ok   %s\n' "$*" | tee -a "$vlog" >&2; }
json_field() { node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[process.argv[2]])' "$1" "$2"; }
declare -A SIZE=()
for img in "${IMAGES[@]}"; do
  ref=$(out_of umoci+mksquashfs "$img")
  for tool in "${TOOLS[@]}"; do
    o=$(out_of "$tool" "$img")
    if [ "$tool" = hpcc ]; then
      j=$RES/log.hpcc.$img.$RUNS
      SIZE[$tool.$img]=$(json_field "$j" imageSize)
      dd if="$o" of="$o.part" iflag=skip_bytes,count_bytes skip="$(json_field "$j" partitionOffset)" count="${SIZE[$tool.$img]}" status=none
      o=$o.part
    else
      SIZE[$tool.$img]=$(stat -c %s "$o")
    fi
    st=$(unsquashfs -stat "$o" 2>&1) || { vfail "$tool $img-layer: unsquashfs -stat failed"; continue; }
    comp=$(sed -n 's/^Compression \([a-z0-9]*\).*/\1/p' <<< "$st" | head -1)
    bs=$(sed -n 's/^Block size \([0-9]*\).*/\1/p' <<< "$st" | head -1)
    if [ "$comp" = gzip ] && [ "$bs" = "$BLOCK_SIZE" ]; then vok "$tool $img-layer: unsquashfs -stat gzip, block size $bs"
    else vfail "$tool $img-layer: unsquashfs -stat says '$comp', block size '$bs'"; fi
    [ "$tool" != umoci+mksquashfs ] || continue
    # sqfsdiff's exit status is not enough (bench/squashfs-write.sh explains): judge every line.
    d=$RES/sqfsdiff.$tool.$img.txt
    set +e; sqfsdiff -T -a "$ref" -b "$o" > "$d" 2>&1; rc=$?; set -e
    tolerated='^/.* has (an extended|a basic) type$'
    # hpcc adds Apptainer's skeleton (/.singularity.d, /environment, /singularity): sqfsdiff
    # lists each as "> NAME" (only in b).
    [ "$tool" = hpcc ] && tolerated="$tolerated|^> (\.singularity\.d(/.*)?|environment|singularity)$"
    other=$(grep -v -E -e "$tolerated" -e '^\s*$' "$d" || true)
    if [ "$rc" -le 1 ] && [ -z "$other" ]; then
      vok "$tool $img-layer: sqfsdiff -T against umoci+mksquashfs: same files, bytes, owners, modes, mtimes ($(wc -l < "$d") tolerated lines)"
    else
      vfail "$tool $img-layer: sqfsdiff -T exit $rc: $(head -5 <<< "$other" | tr '\n' ' ')"
    fi
  done
done

# ---------------------------------------------------------------- report
median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }
col() { awk -v c="$3" '{print $c}' "$RES/$1.$2.tsv"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v <= t) ? "PASS" : "MISS"}'; }
{
  echo "# OCI convert benchmark, $STAMP"
  echo
  echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
  echo "- load average (1/5/15 min): start $LOAD_START, end $LOAD_END"
  echo "- versions: umoci $(umoci --version | awk '{print $3}'), $(mksquashfs -version 2>&1 | head -1 | cut -d'(' -f1 | sed 's/ *$//'), $(tar2sqfs --version 2>&1 | head -1), node $(node --version), hpcc $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+dirty')"
  echo "- settings: gzip level $LEVEL, block size $BLOCK_SIZE, $RUNS interleaved runs per tool and image (+$WARMUP warm-up), warm page cache"
  for img in "${IMAGES[@]}"; do
    echo
    echo "**$img-layer image** ($(basename "$(archive_of "$img")"), $(stat -c %s "$(archive_of "$img")") bytes)"
    echo
    echo "| tool | wall median (min–max) s | CPU user+sys s | peak RSS MB | squashfs bytes |"
    echo "|---|---|---|---|---|"
    declare -A W=() C=()
    for tool in "${TOOLS[@]}"; do
      W[$tool]=$(col "$tool" "$img" 1 | median)
      C[$tool]=$(awk '{print $3+$4}' "$RES/$tool.$img.tsv" | median)
      printf '| %s | %s (%s–%s) | %s | %.1f | %s |\n' "$tool" "${W[$tool]}" "$(col "$tool" "$img" 1 | sort -g | head -1)" \
        "$(col "$tool" "$img" 1 | sort -g | tail -1)" "${C[$tool]}" \
        "$(col "$tool" "$img" 2 | sort -g | tail -1 | awk '{print $1*1024/1e6}')" "${SIZE[$tool.$img]}"
    done
    echo
    v1=$(ratio "${W[hpcc]}" "${W[umoci+mksquashfs]}") v2=$(ratio "${W[hpcc]}" "${W[tar2sqfs]}")
    echo "| target | value | limit | result |"
    echo "|---|---|---|---|"
    echo "| wall hpcc / umoci+mksquashfs | ${v1}× | ≤ ${T_UMOCI}× | $(verdict "$v1" "$T_UMOCI") |"
    echo "| wall hpcc / tar2sqfs | ${v2}× | ≤ ${T_TAR2SQFS}× | $(verdict "$v2" "$T_TAR2SQFS") |"
    echo
    echo "CPU hpcc / umoci+mksquashfs $(ratio "${C[hpcc]}" "${C[umoci+mksquashfs]}")×, hpcc / tar2sqfs $(ratio "${C[hpcc]}" "${C[tar2sqfs]}")×;" \
      "size hpcc / mksquashfs $(ratio "${SIZE[hpcc.$img]}" "${SIZE[umoci+mksquashfs.$img]}")×"
  done
  echo
  echo "Verification:"
  echo
  sed 's/^/    /' "$vlog"
} > "$RES/summary.md"
cat "$RES/summary.md"
echo
echo "results: $RES"
[ "$VERIFY_FAIL" = 0 ] || { echo "convert: an output failed verification (see $vlog)" >&2; exit 1; }
