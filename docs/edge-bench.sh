#!/usr/bin/env bash
# Measures the paper's model (base-ssv2, int8, hash-recipe weights) on the edge: sharded with `cast shard`,
# served by ./build.sh edge-serve (workerd: the coordinator and one stage worker per stage, stage files
# from workerd's disk service), classified through the coordinator, and compared with native
# `cast classify` on the same PNG frames. Not a test: it takes minutes per view on a small machine.
#
#   docs/edge-bench.sh [WORKDIR]          (default /tmp/castgo-edge-bench; reused between runs)
#
# Environment: VIEWS (default "1x1 2x3"), STAGES (default: cast shard's choice), PORT (default 8797).
# It prints, per view spec: each stage's wasm linear memory after serving (the largest over the views)
# and its CPU ms per view (X-Castgo-Ms: the stage's run, measured in the isolate), the total time, and the
# top-5 of the edge and of native `cast classify`, which must agree within 1e-3; it writes everything to
# WORKDIR/edge-bench.json and ends with a Markdown table of the figures, to paste into worker/README.md. Per
# stage it also prints the coordinator's wall time of the stage request (wall_ms) and wall − run: the hop.
set -euo pipefail
cd "$(dirname "$0")/.."
. ./toolchain.env # the Go toolchain and GOEXPERIMENT, written once
W=${1:-/tmp/castgo-edge-bench}
mkdir -p "$W"
W=$(cd "$W" && pwd)
PORT=${PORT:-8797}

[ -f "$W/base-ssv2-int8.safetensors" ] || go run ./docs/filesizes -write "$W" base-ssv2
rm -f "$W/base-ssv2.safetensors" # the float32 twin is not needed
go build -o "$W/cast" ./tools/cast
if [ ! -f "$W/shards/manifest.json" ]; then
	"$W/cast" shard --model "$W/base-ssv2-int8.safetensors" --out "$W/shards" ${STAGES:+--stages "$STAGES"}
fi
"$W/cast" shard --verify "$W/shards"
echo "== uptime: $(uptime)"
# A stage takes minutes on a loaded 2-core machine: allow 30 minutes per stage request.
PORT=$PORT STAGE_TIMEOUT_MS=${STAGE_TIMEOUT_MS:-1800000} ./build.sh edge-serve "$W/shards" >"$W/edge-serve.log" 2>&1 &
serve=$!
trap 'kill $serve 2>/dev/null || true; pkill -P $serve 2>/dev/null || true' EXIT
node docs/edge-bench.mjs "$W" "http://127.0.0.1:$PORT" ${VIEWS:-1x1 2x3}
echo "== uptime: $(uptime)"
