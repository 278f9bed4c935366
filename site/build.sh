#!/usr/bin/env bash
# Builds the castgo web page into a dist directory:
#
#   site/build.sh DIST_DIR
#
# DIST_DIR receives the static page (index.html, style.css, icon.svg, worker.js and the ES modules of the
# main thread: app.js and what it imports, copied as they are, no bundler), the WebAssembly
# module (cast.wasm + wasm_exec.js, via wasm/build.sh) and the embedded default models
# (models/default.safetensors, models/default-int8.safetensors) and the example clips (examples/, see
# site/README.md). Serve it with `go run ./tools/serve --dir DIST_DIR`.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 DIST_DIR" >&2
	exit 2
fi
dist=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/toolchain.env" # the Go toolchain and GOEXPERIMENT; GOEXPERIMENT= (empty) builds the portable tier
mkdir -p "$dist/models"
# The page's ES modules (site/README.md says what each owns).
modules=(app.js dom.js models.js pool.js frames.js results.js rank.js compare.js live.js explain.js)
for f in index.html style.css icon.svg worker.js "${modules[@]}"; do
	install -m 0644 "$root/site/$f" "$dist/$f"
done
"$root/wasm/build.sh" "$dist"
install -m 0644 "$root"/models/default*.safetensors "$dist/models/"
mkdir -p "$dist/examples"
install -m 0644 "$root"/site/examples/*.mp4 "$root"/site/examples/*.jpg "$dist/examples/"
echo "site: built into $dist"
