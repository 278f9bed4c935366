#!/usr/bin/env bash
# The one entry point for building, serving and testing castgo. Run ./build.sh help.
set -euo pipefail
cd "$(dirname "$0")"
. ./toolchain.env # the Go toolchain and GOEXPERIMENT; GOEXPERIMENT= (empty) builds the portable tier
ROOT=$PWD
DIST=$ROOT/dist

usage() {
	cat <<USAGE
usage: ./build.sh COMMAND
  serve         build the WASM module and the site, serve it on 127.0.0.1:\${PORT:-8080}
  site          build the site into dist/site (no server)
  wasm          build the WASM module into dist/site
  cli           build the cast command into dist/cast
  worker        build the edge worker into dist/worker
  worker-serve  build the worker and run it in workerd on 127.0.0.1:\${PORT:-8787}
  edge-serve DIR  serve a sharded model (cast shard --out DIR) in workerd on 127.0.0.1:\${PORT:-8787}:
                the coordinator plus one stage worker per stage, the stage files from workerd's disk service
                (STAGE_TIMEOUT_MS bounds one stage request, default 120000)
  test          run every test (Go, WASM under Node, browser, workerd)
USAGE
}

# go_tests runs vet, the build checks (CGO off, js/wasm, the XLA variant) and every Go test.
go_tests() {
	echo "== gofmt, go vet"
	unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
	if [ -n "$unformatted" ]; then
		echo "gofmt would change: $unformatted" >&2
		return 1
	fi
	go vet ./...
	GOOS=js GOARCH=wasm go vet ./wasm/... ./worker/... ./cast/... ./backend/...
	GOEXPERIMENT= go vet ./backend/...
	echo "== go generate changes nothing (the generated SIMD kernels match their template)"
	backend/kernels/gen_check.sh
	echo "== build: CGO_ENABLED=0, GOOS=js GOARCH=wasm, and the XLA variant (-tags xla, cgo)"
	CGO_ENABLED=0 go build ./...
	GOOS=js GOARCH=wasm go build -o /dev/null ./wasm
	CGO_ENABLED=1 go build -tags xla -o /dev/null ./tools/cast
	echo "== go test (native, pure-Go backend)"
	go test -timeout 60m ./...
	echo "== go test (js/wasm under Node)"
	GOOS=js GOARCH=wasm go test -timeout 20m -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec" ./wasm/... ./backend/...
	echo "== portable tier (GOEXPERIMENT unset): build everything, test the backend and the parity with the goldens"
	GOEXPERIMENT= CGO_ENABLED=0 go build ./...
	GOEXPERIMENT= GOOS=js GOARCH=wasm go build -o /dev/null ./wasm
	GOEXPERIMENT= go test -timeout 30m ./backend/... ./cast
	GOEXPERIMENT= GOOS=js GOARCH=wasm go test -timeout 20m -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec" ./backend/...
}

# node_tests runs the JavaScript-side tests: the WASM API in Node, the page in Chromium, the worker in workerd.
node_tests() {
	[ -d node_modules/playwright-core ] && [ -d node_modules/miniflare ] || npm ci --no-audit --no-fund
	echo "== node --test: WASM API, web page (Chromium), edge worker (workerd)"
	local tests=(wasm/test/api.test.mjs)
	for t in site/test/*.test.mjs worker/test/*.test.mjs; do
		[ -e "$t" ] && tests+=("$t")
	done
	mkdir -p "$DIST"
	site/build.sh "$DIST/site"
	worker/build.sh "$DIST/worker"
	CASTGO_DIST=$DIST/site CASTGO_SITE_DIST=$DIST/site CASTGO_WASM_DIR=$DIST/site CASTGO_ARTIFACTS=$DIST/artifacts \
		CASTGO_WORKER_DIST=$DIST/worker \
		node --test --test-concurrency=1 "${tests[@]}"
}

cmd=${1:-help}
shift || true
case "$cmd" in
help | -h | --help) usage ;;
site) site/build.sh "$DIST/site" ;;
serve)
	site/build.sh "$DIST/site"
	exec go run ./tools/serve --dir "$DIST/site" "$@"
	;;
cli)
	mkdir -p "$DIST"
	CGO_ENABLED=0 go build -trimpath -o "$DIST/cast" ./tools/cast
	echo "built $DIST/cast"
	;;
wasm)
	wasm/build.sh "$DIST/site"
	;;
worker)
	worker/build.sh "$DIST/worker"
	;;
worker-serve)
	worker/build.sh "$DIST/worker"
	[ -x node_modules/.bin/workerd ] || npm ci --no-audit --no-fund
	echo "serving the edge worker on http://127.0.0.1:${PORT:-8787} (workerd; Ctrl-C stops)"
	exec node_modules/.bin/workerd serve "$DIST/worker/workerd.capnp" --socket-addr "http=127.0.0.1:${PORT:-8787}"
	;;
edge-serve)
	if [ $# -ne 1 ] || [ ! -f "$1/manifest.json" ]; then
		echo "usage: ./build.sh edge-serve DIR (a directory written by cast shard --out DIR)" >&2
		exit 2
	fi
	worker/shard-build.sh "$DIST/shard-worker"
	go run ./worker/cmd/shardconfig -shards "$1" -dist "$DIST/shard-worker" ${STAGE_TIMEOUT_MS:+-timeout-ms "$STAGE_TIMEOUT_MS"}
	[ -x node_modules/.bin/workerd ] || npm ci --no-audit --no-fund
	echo "serving the sharded model $1 on http://127.0.0.1:${PORT:-8787} (workerd; /healthz is 200 once every stage answers; Ctrl-C stops)"
	exec node_modules/.bin/workerd serve "$DIST/shard-worker/workerd.capnp" --socket-addr "http=127.0.0.1:${PORT:-8787}"
	;;
test)
	go_tests
	node_tests
	;;
*)
	echo "unknown command: $cmd" >&2
	usage >&2
	exit 2
	;;
esac
