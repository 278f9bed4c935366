#!/bin/sh
# gen_check.sh: fails when the generated kernels (go generate in backend/kernels) differ from the committed
# ones, i.e. when math.tmpl or the generator changed without regenerating, or a generated file was edited.
# Usage (from anywhere): backend/kernels/gen_check.sh
set -eu
cd "$(dirname "$0")"
. ../../toolchain.env # the Go toolchain, written once
GOEXPERIMENT=simd go generate .
if ! git diff --exit-code -- . ; then
	echo "gen_check: generated kernels are stale: run 'go generate ./backend/kernels' and commit" >&2
	exit 1
fi
if [ -n "$(git status --porcelain --untracked-files=all -- .)" ]; then
	git status --porcelain --untracked-files=all -- . >&2
	echo "gen_check: go generate left untracked or uncommitted files" >&2
	exit 1
fi
