#!/usr/bin/env bash
# The clean root filesystem the release proof test (test/e2e/release.test.ts) unpacks
# hpcc's release into: Debian bookworm, variant "essential" (Priority: required only:
# no Node.js, no apt, no compiler) plus squashfuse, fuse3 and libstdc++6 (the official
# Node binary needs it; every cluster node has it), as on a typical cluster
# node. Made once with mmdebstrap from the Debian mirror this host's apt is configured
# with (read from apt at run time; no mirror host name is stored here) and kept as a
# tarball:
#
#   test/tools/release-rootfs.sh      -> prints the tarball's path
#
# Cache: $HPCC_RELEASE_ROOTFS_DIR (default /var/tmp/hpcc-release-rootfs), root-owned,
# mode 0755; REBUILD=1 makes it again. Must run as root (mmdebstrap --mode=root).
set -euo pipefail
DIR=${HPCC_RELEASE_ROOTFS_DIR:-/var/tmp/hpcc-release-rootfs}
SUITE=bookworm
PACKAGES=squashfuse,fuse3,libstdc++6
TARBALL=$DIR/$SUITE-essential-squashfuse.tar
log() { printf 'release-rootfs: %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { log "must run as root (mmdebstrap --mode=root)"; exit 2; }
mkdir -p "$DIR"
chown root:root "$DIR"
chmod 0755 "$DIR"
[ "${REBUILD:-0}" = 1 ] && rm -f "$TARBALL"
if [ ! -s "$TARBALL" ]; then
  command -v mmdebstrap >/dev/null || { log "mmdebstrap missing: bash scripts/setup-host.sh"; exit 2; }
  sources=$DIR/sources.list
  # One "deb URI SUITE COMPONENT" line per index apt knows about for $SUITE.
  apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Identifier: Packages' \
    | awk -v s="$SUITE" '$2 == s || index($2, s "-") == 1 { print "deb " $0 }' | sort -u > "$sources"
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
