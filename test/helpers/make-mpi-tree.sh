#!/bin/bash
# make-mpi-tree.sh TREE BINARY: a root tree holding an Open MPI program and the
# host's Open MPI runtime: the binary as /usr/local/bin/<name>, Open MPI's and
# PMIx's plugin and config directories, and every shared library the binary
# and those plugins need (ldd), at their host paths. The hybrid model's image:
# an MPI compatible with the host's PMIx (the same one here), no package
# manager, no network. Used by test/e2e/slurm.test.ts.
set -euo pipefail
tree=$1 bin=$2
mkdir -p "$tree/usr/local/bin"
cp "$bin" "$tree/usr/local/bin/$(basename "$bin")"
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
dirs=()
for d in "/usr/lib/$arch/openmpi" "/usr/lib/$arch/pmix2" "/usr/lib/$arch/hwloc" /etc/openmpi /usr/share/openmpi /usr/share/pmix /etc/pmix; do
  [ -e "$d" ] && dirs+=("$d")
done
for d in "${dirs[@]}"; do
  mkdir -p "$tree$(dirname "$d")"
  cp -a "$d" "$tree$(dirname "$d")/"
done
{
  echo "$bin"
  find "${dirs[@]}" -name '*.so*' -type f 2>/dev/null
} | xargs -d '\n' ldd 2>/dev/null |  # one ldd for all: 0.5 s instead of 13 s for ~200 plugins
  sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p' | sort -u | while IFS= read -r lib; do
  [ -e "$tree$lib" ] && continue
  mkdir -p "$tree$(dirname "$lib")"
  cp -L "$lib" "$tree$lib"
done
