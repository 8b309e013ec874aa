#!/usr/bin/env bash
# Make hpcc's embedded default image tree (no network needed): a busybox
# root filesystem with an Apptainer-style /.singularity.d (runscript,
# labels, environment, help) taken from definitions/demo/.
# Usage: make-demo-rootfs.sh OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: make-demo-rootfs.sh OUTDIR}
bb=$(command -v busybox || true)
lddout=$( [ -n "$bb" ] && ldd "$bb" 2>&1 || true)
if [ -z "$bb" ] || ! grep -q 'not a dynamic' <<<"$lddout"; then
  echo "make-demo-rootfs: a static busybox is needed (Debian: apt-get install busybox-static)" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out"/{bin,etc,tmp,proc,sys,dev,home,root,var/tmp,.singularity.d/env,.singularity.d/libs}
chmod 1777 "$out/tmp" "$out/var/tmp"
cp "$bb" "$out/bin/busybox"
for applet in $("$out/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$out/bin/$applet"
done
cp "$here/definitions/demo/os-release" "$out/etc/os-release"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$out/etc/passwd"
printf 'root:x:0:\n' > "$out/etc/group"
sd="$out/.singularity.d"
cp "$here/definitions/demo/demo.def" "$sd/Singularity"
cp "$here/definitions/demo/runscript" "$sd/runscript"; chmod 755 "$sd/runscript"
cp "$here/definitions/demo/runscript.help" "$sd/runscript.help"
cp "$here/definitions/demo/labels.json" "$sd/labels.json"
printf '#!/bin/sh\n' > "$sd/env/01-base.sh"
printf '#!/bin/sh\nexport DEMO_GREETING="${DEMO_GREETING:-"hello from hpcc"}"\nexport PATH="/bin"\n' > "$sd/env/90-environment.sh"
printf '#!/bin/sh\n' > "$sd/env/99-base.sh"
ln -s .singularity.d/runscript "$out/singularity"
# Fixed mtimes so the demo image is reproducible.
find "$out" -exec touch -h -d @1700000000 {} +
