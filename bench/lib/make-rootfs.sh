#!/usr/bin/env bash
# Build (once) and unpack the benchmark rootfs: Debian bookworm, variant
# "essential" + python3, docs/man/locales left out (about 145 MB, ~5,800 files).
#
#   bench/lib/make-rootfs.sh            -> prints the rootfs directory path
#
# Packages come from the Debian mirror this host's apt is configured with
# (read from apt itself at run time; no mirror host name is stored here), with
# the sources.list lines hpcc's debootstrap agent would use for the suite
# (scripts/apt-sources.mjs; needs the build: npm run build).
# The mmdebstrap tarball is cached in $HPCC_BENCH_DIR so reruns download
# nothing; delete it (or set REBUILD_ROOTFS=1) to rebuild. Must run as root
# (mmdebstrap --mode=root, and the tree holds root-owned, root-only files).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=${HPCC_BENCH_DIR:-/var/tmp/hpcc-bench}
SUITE=${ROOTFS_SUITE:-bookworm}
TARBALL=$BENCH_DIR/$SUITE-py.mmdebstrap.tar
ROOTFS=$BENCH_DIR/rootfs
STAMP=$BENCH_DIR/rootfs.stamp   # outside the tree: the packed tree is exactly the tarball
log() { printf 'make-rootfs: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "must run as root (the rootfs holds root-only files)"; exit 2
fi
mkdir -p "$BENCH_DIR"

if [ "${REBUILD_ROOTFS:-0}" = 1 ]; then rm -f "$TARBALL"; fi
if [ ! -s "$TARBALL" ]; then
  command -v mmdebstrap >/dev/null || { log "mmdebstrap missing: bash scripts/setup-host.sh"; exit 2; }
  command -v node >/dev/null || { log "node missing"; exit 2; }
  sources=$BENCH_DIR/sources.list
  # One "deb URI SUITE COMPONENT" line per index apt knows about for $SUITE (hpcc's rule).
  node "$REPO/scripts/apt-sources.mjs" "$SUITE" > "$sources"
  if [ ! -s "$sources" ]; then
    log "apt knows no $SUITE index (run apt-get update, or check /etc/apt/sources.list.d)"; exit 2
  fi
  log "building $TARBALL with mmdebstrap from apt's configured mirror ($(wc -l < "$sources") sources)"
  tmp=$TARBALL.tmp.$$
  trap 'rm -f "$tmp"' EXIT
  # essential = Priority: required only (no apt); python3 pulls its deps.
  mmdebstrap --mode=root --variant=essential --include=python3 --format=tar \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "$SUITE" "$tmp" "$sources" >&2
  mv "$tmp" "$TARBALL"
  trap - EXIT
  rm -f "$STAMP"
fi

# Unpack (again) when missing or older than the tarball.
if [ ! -d "$ROOTFS" ] || [ ! -f "$STAMP" ] || [ "$TARBALL" -nt "$STAMP" ]; then
  log "unpacking $TARBALL into $ROOTFS"
  rm -rf "$ROOTFS" "$ROOTFS.tmp"
  mkdir -p "$ROOTFS.tmp"
  tar -C "$ROOTFS.tmp" --numeric-owner --same-permissions --xattrs --xattrs-include='*' -xf "$TARBALL"
  mv "$ROOTFS.tmp" "$ROOTFS"
  touch "$STAMP"
fi
printf '%s\n' "$ROOTFS"
