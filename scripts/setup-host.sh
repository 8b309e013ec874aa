#!/usr/bin/env bash
# Prepare a Debian 12 host for hpcc's tests and benchmarks (run as root).
# Installs the real tools the tests check hpcc against, creates the
# unprivileged test user and makes /dev/fuse usable as udev would.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "setup-host.sh: must run as root (skipping host setup)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
PKGS=(squashfs-tools squashfs-tools-ng squashfuse fuse3 attr util-linux
      golang-go golang-github-sylabs-sif-dev busybox-static hyperfine
      zstd xz-utils liblz4-tool ca-certificates libcap2-bin acl
      time mmdebstrap  # bench/squashfs-write.sh: /usr/bin/time, the rootfs
      libdeflate-dev  # native/deflate: the gzip engine addon (falls back to Node zlib without it)
      fuse-overlayfs  # launcher: overlay fallback when the kernel refuses overlayfs in a user namespace
      charliecloud  # bench/startup.sh: ch-run, the start-up baseline
      strace  # test/e2e/launch-memo.test.ts: every host path a launch reads is a memo fact
      slurmctld slurmd slurm-client munge  # test/e2e/slurm.test.ts: a one-node Slurm cluster
      openmpi-bin libopenmpi-dev  # test/e2e/slurm.test.ts: an Open MPI program's ranks in hpcc containers
      iproute2 procps  # test/e2e/slurm-cluster.test.ts: the 3-node cluster in network namespaces (ip), pgrep
      uidmap  # src/build/: newuidmap/newgidmap for subordinate-id builds (test/e2e/build-userns.test.ts)
      docker-registry skopeo umoci apache2-utils openssl  # OCI registry tests (issue 4)
      man-db groff-base zsh)  # test/integration/command-docs.test.ts (man -l), completion.test.ts (zsh)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-host: installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -q
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi
# No udev on this machine kind: /dev/fuse is 0600 root, which blocks every
# unprivileged FUSE mount. Debian with udev makes it 0666; do the same.
if [ -c /dev/fuse ]; then chmod 0666 /dev/fuse; fi
# The unprivileged user that runs containers and FUSE mounts in tests.
TEST_USER=${HPCC_TEST_USER:-hpcctest}
if ! id -u "$TEST_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$TEST_USER"
fi
# A second unprivileged user: "another user" of the cache-trust tests (test/e2e/cache-trust.test.ts).
OTHER_USER=${HPCC_TEST_USER2:-hpcctest2}
if ! id -u "$OTHER_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$OTHER_USER"
fi
# Definition-file builds (test/e2e/build-userns.test.ts): the test user has subordinate id
# ranges (Debian's useradd adds them; added here where it did not), and a third user has none,
# for the single-id mode.
for f in /etc/subuid /etc/subgid; do [ -e "$f" ] || install -m 644 /dev/null "$f"; done
if ! grep -q "^$TEST_USER:" /etc/subuid || ! grep -q "^$TEST_USER:" /etc/subgid; then
  next=$(cat /etc/subuid /etc/subgid | awk -F: 'BEGIN { m = 100000 } NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print m }')
  usermod --add-subuids "$next-$((next + 65535))" --add-subgids "$next-$((next + 65535))" "$TEST_USER"
fi
NOSUBID_USER=${HPCC_TEST_USER3:-hpcctest3}
if ! id -u "$NOSUBID_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$NOSUBID_USER"
fi
nosubid_uid=$(id -u "$NOSUBID_USER")
sed -i -e "/^$NOSUBID_USER:/d" -e "/^$nosubid_uid:/d" /etc/subuid /etc/subgid
