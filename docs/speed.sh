#!/usr/bin/env bash
# Produces the README's speed table: `cast bench` on castgo (native, 2 threads), simplego, and the WASM
# module under Node (one thread), fp32 and int8, in one run. Usage: docs/speed.sh [OUT_DIR] (default dist/speed).
# Takes about 12 minutes on a 2-core machine; each line of OUT_DIR/speed.jsonl is one `cast bench --json`.
set -euo pipefail
cd "$(dirname "$0")/.."
. ./toolchain.env # the Go toolchain and GOEXPERIMENT
out=${1:-dist/speed}
mkdir -p "$out"
./build.sh cli >/dev/null
wasm/build.sh "$out/wasm" >/dev/null
cast=dist/cast
small=../shared/goldens/small/config.json
: >"$out/speed.jsonl"
bench() { "$cast" bench --json "$@" 2>/dev/null | tr -d '\n' >>"$out/speed.jsonl"; echo >>"$out/speed.jsonl"; tail -1 "$out/speed.jsonl" | cut -c1-160; }
bench --runs 20                                   # the demo model, castgo
bench --runs 20 --quantize int8
bench --runs 3 --backend simplego
bench --runs 20 --backend wasm --wasm "$out/wasm"
bench --runs 20 --backend wasm --wasm "$out/wasm" --quantize int8
bench --config "$small" --runs 2
bench --config "$small" --runs 2 --quantize int8
bench --config "$small" --runs 1 --backend wasm --wasm "$out/wasm"
bench --config "$small" --runs 1 --backend wasm --wasm "$out/wasm" --quantize int8
# The paper's model from model files (as a user runs it), so that the peak RSS is inference's own: the
# weights are the goldens' hash recipe, written by docs/filesizes as cast convert would.
go run ./docs/filesizes -write "$out/models" base-ssv2 >/dev/null
bench --model "$out/models/base-ssv2.safetensors" --runs 2
bench --model "$out/models/base-ssv2-int8.safetensors" --runs 2
bench --model "$out/models/base-ssv2-int8.safetensors" --runs 1 --profile
rm -rf "$out/models"
