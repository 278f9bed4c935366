#!/usr/bin/env bash
# Builds the CAST WebAssembly module into a dist directory and prints its sizes.
#
#   wasm/build.sh DIST_DIR
#
# DIST_DIR receives cast.wasm (GOOS=js GOARCH=wasm, stripped, -trimpath; no weights embedded) and
# wasm_exec.js (the Go JavaScript support file of the toolchain that built it; the two must match).
# Prints the raw, gzip -9 and brotli sizes of cast.wasm (brotli via the brotli tool when installed,
# else Node's zlib) and fails when the gzip size exceeds CASTGO_WASM_GZIP_BUDGET bytes (default 3 MB).
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 DIST_DIR" >&2
	exit 2
fi
dist=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/toolchain.env" # the Go toolchain and GOEXPERIMENT; GOEXPERIMENT= (empty) builds the portable tier
mkdir -p "$dist"
goroot=$(go env GOROOT)

(cd "$root" && GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o "$dist/cast.wasm" ./wasm)
cp "$goroot/lib/wasm/wasm_exec.js" "$dist/wasm_exec.js"
chmod 0644 "$dist/wasm_exec.js"

raw=$(wc -c <"$dist/cast.wasm")
gz=$(gzip -9 -c "$dist/cast.wasm" | wc -c)
if command -v brotli >/dev/null 2>&1; then
	br=$(brotli -c -q 11 "$dist/cast.wasm" | wc -c)
elif command -v node >/dev/null 2>&1; then
	br=$(node -e 'const z=require("zlib");const b=require("fs").readFileSync(process.argv[1]);console.log(z.brotliCompressSync(b,{params:{[z.constants.BROTLI_PARAM_QUALITY]:11,[z.constants.BROTLI_PARAM_SIZE_HINT]:b.length}}).length)' "$dist/cast.wasm")
else
	br="n/a"
fi
mib() { awk -v b="$1" 'BEGIN { if (b == "n/a") print "n/a"; else printf "%.2f MiB", b / 1048576 }'; }
echo "cast.wasm: raw $raw bytes ($(mib "$raw")), gzip -9 $gz bytes ($(mib "$gz")), brotli $br bytes ($(mib "$br"))"
budget=${CASTGO_WASM_GZIP_BUDGET:-3000000}
if [ "$gz" -gt "$budget" ]; then
	echo "cast.wasm: gzip size $gz exceeds the budget of $budget bytes" >&2
	exit 1
fi
