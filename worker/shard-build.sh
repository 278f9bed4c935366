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

. worker/build-lib.sh
worker_wasm ./worker/cmd/shardworker "$dist/app.wasm"
worker_runtime "$dist"
chmod 0644 "$dist"/*
worker_size "shard worker script" "$dist"
echo "built $dist"
