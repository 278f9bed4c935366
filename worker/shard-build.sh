#!/usr/bin/env bash
# Builds the shard worker (worker/cmd/shardworker: the stage workers and the coordinator of a sharded
# model, one wasm module for both roles) into a dist directory.
#
#   worker/shard-build.sh DIST_DIR
#
# DIST_DIR receives app.wasm (GOOS=js GOARCH=wasm, the same flags as worker/build.sh; no embedded model),
# wasm_exec.js and runtime.mjs (syumai/workers' workers-assets-gen -mode=go) and entry.mjs (one long-lived Go
# instance per isolate), then prints the sizes, raw and gzip -9, and fails above CASTGO_WORKER_GZIP_BUDGET
# bytes (default 3,145,728: the free plan's 3 MiB compressed script limit).
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 DIST_DIR" >&2
	exit 2
fi
mkdir -p "$1"
dist=$(cd "$1" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. ./toolchain.env # the Go toolchain and GOEXPERIMENT, written once

GOOS=js GOARCH=wasm go build -trimpath -ldflags='-s -w' -gcflags='all=-l' \
	-gcflags='github.com/castvideo/castgo/backend/...=' -gcflags='github.com/castvideo/castgo/cast/preprocess=' \
	-o "$dist/app.wasm" ./worker/cmd/shardworker

gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
go run github.com/syumai/workers/cmd/workers-assets-gen -mode=go -o "$gen/build"
cp "$gen/build/wasm_exec.js" "$gen/build/runtime.mjs" "$dist/"
cp worker/entry.mjs "$dist/"
chmod 0644 "$dist"/*

raw=0
gz=0
for f in app.wasm entry.mjs wasm_exec.js runtime.mjs; do
	r=$(wc -c <"$dist/$f")
	g=$(gzip -9 -c "$dist/$f" | wc -c)
	raw=$((raw + r))
	gz=$((gz + g))
done
echo "shard worker script: raw $raw B, gzip -9 $gz B ($(awk -v b="$gz" 'BEGIN { printf "%.2f MiB", b / 1048576 }')); Cloudflare limits (compressed): 3 MiB free, 10 MiB paid"
budget=${CASTGO_WORKER_GZIP_BUDGET:-3145728}
if [ "$gz" -gt "$budget" ]; then
	echo "shard worker script: gzip size $gz exceeds the budget of $budget bytes" >&2
	exit 1
fi
echo "built $dist"
