#!/usr/bin/env bash
# Build (once) the OCI archives of bench/convert.sh from the benchmark rootfs
# (bench/lib/make-rootfs.sh: Debian bookworm + python3), offline, with umoci:
#
#   bookworm-py-1.oci.tar   one layer: the whole rootfs (umoci insert ROOTFS /)
#   bookworm-py-5.oci.tar   five layers:
#                             1. the rootfs without /usr/share and /usr/lib/python3.11
#                             2. /usr/share
#                             3. /usr/lib/python3.11
#                             4. a whiteout of /usr/share/bug (a directory)
#                             5. a whiteout of /etc/issue.net (a file)
#
# Config: Cmd /usr/bin/python3, a PATH, linux/amd64. Each archive is the tar of
# its own OCI layout (what `skopeo copy … oci-archive:` writes), tag "bench".
# Layers are gzip-compressed by umoci. Cached in $HPCC_BENCH_DIR/oci/ and
# rebuilt when the rootfs is newer. Prints the directory holding them.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_DIR=${HPCC_BENCH_DIR:-/var/tmp/hpcc-bench}
OCI_DIR=$BENCH_DIR/oci
log() { printf 'make-oci-archives: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "must run as root (the rootfs holds root-only files)"; exit 2; }
command -v umoci >/dev/null || { log "umoci missing: bash scripts/setup-host.sh"; exit 2; }

ROOTFS=$(bash "$HERE/make-rootfs.sh")
STAMP=$BENCH_DIR/rootfs.stamp
mkdir -p "$OCI_DIR"

fresh() { [ -s "$1" ] && { [ ! -e "$STAMP" ] || [ "$1" -nt "$STAMP" ]; }; }

configure() { # layout:tag
  umoci config --image "$1" --config.cmd /usr/bin/python3 \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --author hpcc-bench --architecture amd64 --os linux
}

pack() { # layout archive
  umoci gc --layout "$1"
  tar -C "$1" -cf "$2.tmp" .
  mv "$2.tmp" "$2"
  rm -rf "$1"
}

one=$OCI_DIR/bookworm-py-1.oci.tar
if ! fresh "$one"; then
  log "building $one"
  L=$OCI_DIR/layout-1
  rm -rf "$L"
  umoci init --layout "$L"
  umoci new --image "$L:bench"
  umoci insert --image "$L:bench" "$ROOTFS" /
  configure "$L:bench"
  pack "$L" "$one"
fi

five=$OCI_DIR/bookworm-py-5.oci.tar
if ! fresh "$five"; then
  log "building $five"
  L=$OCI_DIR/layout-5 S=$OCI_DIR/stage-base
  rm -rf "$L" "$S"
  mkdir -p "$S"
  tar -C "$ROOTFS" --exclude=./usr/share --exclude=./usr/lib/python3.11 -cf - . | tar -C "$S" -xpf -
  umoci init --layout "$L"
  umoci new --image "$L:bench"
  umoci insert --image "$L:bench" "$S" /
  umoci insert --image "$L:bench" "$ROOTFS/usr/share" /usr/share
  umoci insert --image "$L:bench" "$ROOTFS/usr/lib/python3.11" /usr/lib/python3.11
  umoci insert --image "$L:bench" --whiteout /usr/share/bug
  umoci insert --image "$L:bench" --whiteout /etc/issue.net
  configure "$L:bench"
  rm -rf "$S"
  pack "$L" "$five"
fi
echo "$OCI_DIR"
