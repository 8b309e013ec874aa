#!/bin/bash --norc
# Run a command as an unprivileged user inside a root filesystem tree, as on a machine
# made of that tree (the release proof test, test/e2e/release.test.ts):
#
#   test/tools/release-root.sh ROOT UID GID COMMAND [ARGS...]
#
# As root: a new mount namespace whose root is ROOT (pivot_root, not chroot: the kernel
# refuses a chrooted process a new user namespace, and hpcc launches in one), with the
# host's /dev and /sys and a new /proc; /tmp is ROOT's own, kept between runs as a
# machine's is; ROOT/opt/hpcc, when present, is mounted read-only. The network namespace
# is the host's (the test registry listens on 127.0.0.1). Then the command runs with uid
# UID, gid GID, no supplementary groups, in RR_CWD (else the user's home), with an
# environment of HOME (from ROOT's passwd), USER, LOGNAME, PATH and the HPCC_* and TERM
# variables given. bash runs with --norc: Node's stdio are sockets, which make bash read
# ~/.bashrc as if started by sshd.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 ROOT UID GID COMMAND [ARGS...]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "release-root: run as root" >&2; exit 2; }
export RR_ROOT=$1 RR_UID=$2 RR_GID=$3
shift 3
exec unshare --mount --propagation private -- /bin/bash --norc --noprofile -c '
set -euo pipefail
R=$RR_ROOT
mount --bind "$R" "$R"
mount --rbind /dev "$R/dev"
mount --rbind /sys "$R/sys"
mount -t proc proc "$R/proc"
if [ -d "$R/opt/hpcc" ]; then
  mount --bind "$R/opt/hpcc" "$R/opt/hpcc"
  mount -o remount,bind,ro "$R/opt/hpcc"
fi
mkdir -p "$R/.oldroot"
cd "$R"
pivot_root . .oldroot
cd /
umount -l /.oldroot
user=$(awk -F: -v u="$RR_UID" "\$3 == u { print \$1; exit }" /etc/passwd)
home=$(awk -F: -v u="$RR_UID" "\$3 == u { print \$6; exit }" /etc/passwd)
keep=()
for v in $(compgen -e); do
  case "$v" in HPCC_*|TERM) keep+=("$v=${!v}") ;; esac
done
cd "${RR_CWD:-$home}"
exec setpriv --reuid="$RR_UID" --regid="$RR_GID" --clear-groups -- \
  env -i HOME="$home" USER="$user" LOGNAME="$user" PATH=/usr/local/bin:/usr/bin:/bin "${keep[@]}" "$@"
' release-root "$@"
