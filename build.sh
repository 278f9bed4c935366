#!/usr/bin/env bash
# The one entry point for building, serving and testing castgo. Run ./build.sh help.
set -euo pipefail
cd "$(dirname "$0")"
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
  test          run every test (Go, WASM under Node, browser, workerd)
USAGE
}

cmd=${1:-help}
shift || true
case "$cmd" in
help | -h | --help) usage ;;
*)
	echo "unknown command: $cmd" >&2
	usage >&2
	exit 2
	;;
esac
