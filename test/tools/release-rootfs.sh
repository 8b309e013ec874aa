#!/usr/bin/env bash
# The clean root filesystem the release proof test (test/e2e/release.test.ts) unpacks
# hpcc's release into: Debian bookworm, variant "essential" (Priority: required only:
# no Node.js, no apt, no compiler) plus squashfuse, fuse3 and libstdc++6 (the official
# Node binary needs it; every cluster node has it), as on a typical cluster
# node. Made once with mmdebstrap from the Debian mirror this host's apt is configured
# with (read from apt at run time, with the sources.list lines hpcc's debootstrap agent
# would use: scripts/apt-sources.mjs, which needs the build; no mirror host name is stored
# here) and kept as a tarball:
#
#   test/tools/release-rootfs.sh      -> prints the tarball's path
#
# Cache: $HPCC_RELEASE_ROOTFS_DIR (default /var/tmp/hpcc-release-rootfs), root-owned and
# writable by root only (else refused); REBUILD=1 makes it again. Must run as root (mmdebstrap --mode=root).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${HPCC_RELEASE_ROOTFS_DIR:-/var/tmp/hpcc-release-rootfs}
SUITE=bookworm
PACKAGES=squashfuse,fuse3,libstdc++6
TARBALL=$DIR/$SUITE-essential-squashfuse.tar
log() { printf 'release-rootfs: %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { log "must run as root (mmdebstrap --mode=root)"; exit 2; }
# The cache is trusted only when root made it: a directory (not a link) owned by root and
# writable by nobody else, holding a root-owned tarball nobody else can write (under /var/tmp
# another user could have made either first).
if [ -L "$DIR" ] || { [ -e "$DIR" ] && [ ! -d "$DIR" ]; }; then log "$DIR is not a directory: remove it"; exit 2; fi
mkdir -p "$DIR"
if [ "$(stat -c %u "$DIR")" != 0 ] || [ $(( 0$(stat -c %a "$DIR") & 022 )) != 0 ]; then
  log "$DIR is not root's alone (owner $(stat -c %U "$DIR"), mode $(stat -c %a "$DIR")): remove it"; exit 2
fi
if [ -e "$TARBALL" ] && { [ -L "$TARBALL" ] || [ "$(stat -c %u "$TARBALL")" != 0 ] || [ $(( 0$(stat -c %a "$TARBALL") & 022 )) != 0 ]; }; then
  log "$TARBALL is not root's alone: making it again"; rm -f "$TARBALL"
fi
[ "${REBUILD:-0}" = 1 ] && rm -f "$TARBALL"
if [ ! -s "$TARBALL" ]; then
  command -v mmdebstrap >/dev/null || { log "mmdebstrap missing: bash scripts/setup-host.sh"; exit 2; }
  command -v node >/dev/null || { log "node missing"; exit 2; }
  sources=$DIR/sources.list
  # One "deb URI SUITE COMPONENT" line per index apt knows about for $SUITE (hpcc's rule).
  node "$REPO/scripts/apt-sources.mjs" "$SUITE" > "$sources"
  [ -s "$sources" ] || { log "apt knows no $SUITE index (run apt-get update)"; exit 2; }
  log "building $TARBALL with mmdebstrap from apt's configured mirror"
  tmp=$TARBALL.tmp.$$
  trap 'rm -f "$tmp"' EXIT
  mmdebstrap --mode=root --variant=essential --include="$PACKAGES" --format=tar \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$SUITE" "$tmp" "$sources" >&2
  mv "$tmp" "$TARBALL"
  trap - EXIT
fi
printf '%s\n' "$TARBALL"
