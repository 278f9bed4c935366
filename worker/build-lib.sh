# Shared steps of worker/build.sh and worker/shard-build.sh (sourced, from the repository root, after
# toolchain.env).

# worker_wasm PKG OUT builds the Go worker package PKG for js/wasm into OUT. Inlining is turned off everywhere
# except in the backend (kernels) and the preprocessing, whose loops are hot: that alone took the compressed
# script from 3.19 to 2.94 MB gzip for app.wasm (before the training fusions) at no measurable cost per request.
worker_wasm() {
	GOOS=js GOARCH=wasm go build -trimpath -ldflags='-s -w' -gcflags='all=-l' \
		-gcflags='github.com/castvideo/castgo/backend/...=' -gcflags='github.com/castvideo/castgo/cast/preprocess=' \
		-o "$2" "$1"
}

# worker_runtime DIST writes syumai/workers' wasm_exec.js and runtime.mjs (workers-assets-gen -mode=go) and
# our entry.mjs (one long-lived Go instance per isolate, replacing the generated worker.mjs) into DIST.
worker_runtime() {
	local gen
	gen=$(mktemp -d)
	# workers-assets-gen empties its output directory, so generate into a scratch one and copy what we use.
	go run github.com/syumai/workers/cmd/workers-assets-gen -mode=go -o "$gen/build"
	cp "$gen/build/wasm_exec.js" "$gen/build/runtime.mjs" "$1/"
	rm -rf "$gen"
	# The generated wasm_exec.js is syumai's copy of Go's; it must match the toolchain that built app.wasm.
	# Apart from the runtime-context patch (a handful of lines) the two should be identical.
	local changed
	changed=$(diff "$1/wasm_exec.js" "$(go env GOROOT)/lib/wasm/wasm_exec.js" | grep -c '^[<>]' || true)
	if [ "$changed" -gt 16 ]; then
		echo "warning: the generated wasm_exec.js differs from $(go env GOROOT)/lib/wasm/wasm_exec.js in $changed lines" \
			"beyond syumai's context patch: check that syumai/workers matches this Go toolchain" >&2
	fi
	cp worker/entry.mjs "$1/"
}

# worker_size LABEL DIST prints the script's files' sizes, raw and gzip -9, against Cloudflare's script size
# limits (compressed: 3 MiB free plan, 10 MiB paid plans — wrangler's error reads "Your Worker exceeded the size
# limit of 3 MiB"), and fails above CASTGO_WORKER_GZIP_BUDGET bytes (default 3,145,728: the free plan's 3 MiB).
worker_size() {
	local label=$1 dist=$2 raw=0 gz=0 f r g
	for f in app.wasm entry.mjs wasm_exec.js runtime.mjs; do
		r=$(wc -c <"$dist/$f")
		g=$(gzip -9 -c "$dist/$f" | wc -c)
		raw=$((raw + r))
		gz=$((gz + g))
		printf '  %-14s raw %9d B  gzip -9 %9d B\n' "$f" "$r" "$g"
	done
	mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
	echo "$label: raw $raw B ($(mib "$raw")), gzip -9 $gz B ($(mib "$gz")); Cloudflare limits (compressed): 3 MiB free, 10 MiB paid"
	local budget=${CASTGO_WORKER_GZIP_BUDGET:-3145728}
	if [ "$gz" -gt "$budget" ]; then
		echo "$label: gzip size $gz exceeds the budget of $budget bytes" >&2
		return 1
	fi
	if [ "$gz" -gt 3145728 ]; then
		echo "note: over the free plan's 3 MiB compressed script limit; deploy on a paid plan" >&2
	fi
}
