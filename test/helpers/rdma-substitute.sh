#!/bin/sh
# rdma-substitute.sh [--no-devices] DIR CMD [ARGS...]
#   (root, inside `unshare --mount --propagation private`)
# A substitute RDMA host for test/e2e/launch-rdma.test.ts, at the real paths,
# in this mount namespace only (it vanishes with the namespace; nothing is
# written to the host's /dev, /etc or /sys):
#   /dev/infiniband/{uverbs0,umad0,rdma_cm}: character devices (no driver
#     behind them) made in an overlay over the host's /dev, whose submounts
#     (pts, shm, ...) are bound back; not with --no-devices;
#   /etc/rdma/rdma.conf and /etc/libibverbs.d/hpcc-test.driver: an overlay
#     over the host's /etc;
#   /sys/class/infiniband/mlx5_test/node_type: a tmpfs over /sys/class.
# /etc/rdma and /sys/class/infiniband are mode 0777, so only a read-only
# bind keeps an unprivileged container from writing to them.
# DIR (an empty directory) gets a tmpfs for the layers. Then CMD runs.
# rdma-substitute.sh --add-devices: make the devices later (in such a namespace).
set -eu
add_devices() {
  mkdir -m 0755 /dev/infiniband
  mknod -m 0666 /dev/infiniband/uverbs0 c 231 192
  mknod -m 0666 /dev/infiniband/umad0 c 231 0
  mknod -m 0666 /dev/infiniband/rdma_cm c 10 58
}
if [ "$1" = --add-devices ]; then add_devices; exit 0; fi
devices=1
if [ "$1" = --no-devices ]; then devices=0; shift; fi
S=$1; shift
mount -t tmpfs -o mode=0755 hpcc-test-rdma "$S"
mkdir -p "$S/hostdev" "$S/devup" "$S/devwork" "$S/etcup/rdma" "$S/etcup/libibverbs.d" "$S/etcwork" "$S/class/infiniband/mlx5_test"
mount --rbind /dev "$S/hostdev"
mount -t overlay hpcc-test-dev -o "lowerdir=$S/hostdev,upperdir=$S/devup,workdir=$S/devwork" /dev
for m in pts shm mqueue hugepages; do
  if mountpoint -q "$S/hostdev/$m"; then mount --rbind "$S/hostdev/$m" "/dev/$m"; fi
done
if [ "$devices" = 1 ]; then add_devices; fi
echo '# hpcc test' > "$S/etcup/rdma/rdma.conf"
echo 'driver hpcctest' > "$S/etcup/libibverbs.d/hpcc-test.driver"
chmod 0777 "$S/etcup/rdma"
mount -t overlay hpcc-test-etc -o "lowerdir=/etc,upperdir=$S/etcup,workdir=$S/etcwork" /etc
echo '1: CA' > "$S/class/infiniband/mlx5_test/node_type"
chmod 0777 "$S/class/infiniband"
mount --bind "$S/class" /sys/class
exec "$@"
