#!/usr/bin/env bash
# Build the test-only reference tools (Go programs against Debian's
# golang-github-sylabs-sif-dev, fully offline) into test/.cache/bin.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${HPCC_TOOLS_BIN:-$PWD/../.cache/bin}
mkdir -p "$OUT"
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/sylabs/sif ]; then
  echo "test/tools: go or golang-github-sylabs-sif-dev missing; SIF reference checks will be skipped" >&2
  exit 0
fi
WORK=$(cd .. && pwd)/.cache/gopath
mkdir -p "$WORK/src/hpcctools" "$WORK/cache"
export GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$WORK:/usr/share/gocode" GOCACHE="$WORK/cache"
for p in */; do
  p=${p%/}
  [ -f "$p/main.go" ] || continue
  if [ "$OUT/$p" -nt "$p/main.go" ]; then continue; fi
  rm -rf "$WORK/src/hpcctools/$p"; cp -r "$p" "$WORK/src/hpcctools/$p"
  (cd "$WORK/src/hpcctools/$p" && go build -o "$OUT/$p" .)
done
