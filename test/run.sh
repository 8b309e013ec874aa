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
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
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
