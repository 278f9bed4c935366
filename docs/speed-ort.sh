#!/usr/bin/env bash
# castgo against ONNX Runtime 1.30 (onnxruntime-node and onnxruntime-web) and PyTorch, in one run: the table of
# docs/speed-ort.md. A benchmark for a person to run, never run by CI (it refuses when CI is set).
#
# Usage: docs/speed-ort.sh [--json] [--clip] [--setup] [--rounds N] [OUT_DIR]   (default OUT_DIR dist/speed-ort)
#   --json      print the table's rows as JSON lines (OUT_DIR/ratios.jsonl) instead of Markdown
#   --clip      also time ORT and PyTorch on 8 sequences of 197 tokens (the CLIP expert's shape)
#   --setup     install, export and check only (no timing)
#   --rounds N  time everything N times (default 1), round after round, each benchmark a fresh process, and
#               report each one's median (docs/ort/median.mjs) with the spread of the per-round ratios: on a
#               shared VM one process can run 30 % slower than the next (castgo's WASM small golden measured
#               2.3 and 3.3 s/view in back-to-back processes of the same build)
#
# It installs what it needs, once: Debian's python3-torch and python3-onnx (apt-get), and onnxruntime-node and
# onnxruntime-web from docs/ort/package-lock.json into docs/ort/node_modules (ONNXRUNTIME_NODE_INSTALL=skip: the
# CPU binary ships in the package; nothing else is downloaded). It exports the ViT-B models (docs/ort/export.py:
# fp32 and its dynamic int8 twin) into OUT_DIR/models once, checks both against PyTorch in both runtimes, then
# times, one process each:
#   castgo   `cast bench --config base-ssv2` natively (2 threads), fp32 and --quantize int8; the small golden
#            in WASM under Node (one thread), as the speed targets of issue 18 name them
#   ORT      the ViT-B over 1×1568 tokens (the VideoMAE expert's shape): onnxruntime-node with
#            intraOpNumThreads=2, onnxruntime-web's WASM SIMD backend with one thread; fp32 and int8
#   PyTorch  the same ViT-B, 2 threads, fp32 (Debian's OpenBLAS, unpacked into OUT_DIR) and quantize_dynamic
#            int8 (oneDNN), with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for that command only (they slow a
#            current OpenBLAS) and OMP_WAIT_POLICY=PASSIVE (spinning OpenMP threads collapse on a busy machine)
# GFLOP/s are 2 × the multiply-accumulates of the matmuls per second, counted analytically on both sides
# (cast.Config.MACs, docs/ort/vitb.py vitb_macs). Takes about 10 minutes on an idle 2-core machine.
set -euo pipefail
py=/usr/bin/python3 # Debian's, whose dist-packages hold python3-torch (a pyenv or venv python3 on PATH does not)
cd "$(dirname "$0")/.."
. ./toolchain.env # the Go toolchain and GOEXPERIMENT, written once
if [ -n "${CI:-}" ]; then
	echo "docs/speed-ort.sh: a benchmark, not a test: it does not run in CI" >&2
	exit 2
fi
json=0 clip=0 setup=0 rounds=1 out=dist/speed-ort
while [ $# -gt 0 ]; do
	case $1 in
	--json) json=1 ;;
	--clip) clip=1 ;;
	--setup) setup=1 ;;
	--rounds)
		rounds=${2:-}
		case $rounds in '' | *[!0-9]* | 0) echo "docs/speed-ort.sh: --rounds wants a positive integer, got '${2:-}'" >&2; exit 2 ;; esac
		shift ;;
	-*) echo "docs/speed-ort.sh: unknown flag $1 (want --json, --clip, --setup, --rounds N, OUT_DIR)" >&2; exit 2 ;;
	*) out=$1 ;;
	esac
	shift
done
case $out in /*) ;; *) out=$PWD/$out ;; esac
say() { if [ $json = 0 ]; then echo "$@"; else echo "$@" >&2; fi; }

# --- install (idempotent) ---
sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
if ! [ -x $py ] || ! $py -c 'import torch, onnx, numpy' 2>/dev/null; then
	say "installing Debian's python3-torch and python3-onnx…"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-torch python3-onnx python3-numpy libgfortran5 >/dev/null
fi
# Debian's torch calls the system's libblas.so.3, the slow reference BLAS unless OpenBLAS is the alternative:
# unpack Debian's OpenBLAS (pthread build) into OUT_DIR and load it for the PyTorch runs only, leaving the
# machine's BLAS alternative alone.
openblas=$out/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread
if [ ! -f "$openblas/libblas.so.3" ]; then
	say "unpacking Debian's libopenblas0-pthread…"
	mkdir -p "$out/openblas"
	(cd "$out/openblas" && rm -f ./*.deb
	 apt-get download libopenblas0-pthread >/dev/null 2>&1 || { $sudo apt-get update -qq && apt-get download libopenblas0-pthread >/dev/null; }
	 dpkg -x libopenblas0-pthread_*.deb .)
	[ -f "$openblas/libblas.so.3" ] || { echo "docs/speed-ort.sh: unpacking libopenblas0-pthread gave no $openblas/libblas.so.3" >&2; exit 1; }
fi
if [ ! -f docs/ort/node_modules/.package-lock.json ] || [ docs/ort/package-lock.json -nt docs/ort/node_modules/.package-lock.json ]; then
	say "installing onnxruntime-node and onnxruntime-web (docs/ort/package-lock.json)…"
	(cd docs/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error >&2)
fi

# --- the ViT-B models, once ---
models=$out/models
mkdir -p "$models"
if [ ! -f "$models/vitb-int8.onnx" ] || [ docs/ort/export.py -nt "$models/vitb-int8.onnx" ] || [ docs/ort/vitb.py -nt "$models/vitb-int8.onnx" ]; then
	say "exporting the ViT-B (torch.onnx.export, then dynamic int8)…"
	$py docs/ort/export.py "$models" >&2
fi
node docs/ort/bench.mjs check --dir "$models" >&2
[ $setup = 0 ] || exit 0

# --- castgo ---
./build.sh cli >/dev/null
wasm/build.sh "$out/wasm" >/dev/null
rm -rf "$out"/*.json "$out/load.txt" "$out/rounds"
mkdir -p "$out/rounds"
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "before $(load)" >"$out/load.txt"
say "load average before: $(load)"
small=../shared/goldens/small/config.json
[ -f "$small" ] || { echo "docs/speed-ort.sh: $small is missing (the goldens beside the repository)" >&2; exit 1; }
# Each benchmark writes OUT_DIR/rounds/<key>.<round>.json; median.mjs then keeps each key's median round.
castgo() {
	local key=$1 f=$out/rounds/$1.$round.json; shift
	if ! dist/cast bench --json "$@" 2>"$out/$key.log" | tr -d '\n' >"$f"; then
		echo "docs/speed-ort.sh: cast bench $*:" >&2; cat "$out/$key.log" >&2; exit 1
	fi
	echo >>"$f"
	say "$key: $(cut -c1-150 "$f")"
}
ort() { local key=$1 f=$out/rounds/$1.$round.json; shift; node docs/ort/bench.mjs run "$@" >"$f"; say "$key: $(cut -c1-150 "$f")"; }
torch() {
	local key=$1 f=$out/rounds/$1.$round.json; shift
	(unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
	 LD_LIBRARY_PATH=$openblas OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE $py docs/ort/bench_torch.py "$@") >"$f"
	say "$key: $(cut -c1-150 "$f")"
}
for round in $(seq 1 "$rounds"); do
	[ "$rounds" = 1 ] || say "round $round of $rounds"
	castgo castgo-native-fp32 --config base-ssv2 --runs 2
	castgo castgo-native-int8 --config base-ssv2 --runs 2 --quantize int8
	castgo castgo-wasm-fp32 --config "$small" --runs 2 --backend wasm --wasm "$out/wasm"
	castgo castgo-wasm-int8 --config "$small" --runs 2 --backend wasm --wasm "$out/wasm" --quantize int8

	# --- ONNX Runtime and PyTorch on the ViT-B ---
	ort ort-node-fp32 --engine node --threads 2 --model "$models/vitb-fp32.onnx" --precision fp32 --tokens 1568 --runs 5
	ort ort-node-int8 --engine node --threads 2 --model "$models/vitb-int8.onnx" --precision int8 --tokens 1568 --runs 5
	ort ort-web-fp32 --engine web --threads 1 --model "$models/vitb-fp32.onnx" --precision fp32 --tokens 1568 --runs 2
	ort ort-web-int8 --engine web --threads 1 --model "$models/vitb-int8.onnx" --precision int8 --tokens 1568 --runs 2
	torch torch-fp32 --precision fp32 --threads 2 --tokens 1568 --runs 3
	torch torch-int8 --precision int8 --threads 2 --tokens 1568 --runs 3
	if [ $clip = 1 ]; then
		ort ort-node-fp32-clip --engine node --threads 2 --model "$models/vitb-fp32.onnx" --precision fp32 --batch 8 --tokens 197 --runs 5
		ort ort-node-int8-clip --engine node --threads 2 --model "$models/vitb-int8.onnx" --precision int8 --batch 8 --tokens 197 --runs 5
		ort ort-web-fp32-clip --engine web --threads 1 --model "$models/vitb-fp32.onnx" --precision fp32 --batch 8 --tokens 197 --runs 2
		ort ort-web-int8-clip --engine web --threads 1 --model "$models/vitb-int8.onnx" --precision int8 --batch 8 --tokens 197 --runs 2
		torch torch-fp32-clip --precision fp32 --threads 2 --batch 8 --tokens 197 --runs 3
		torch torch-int8-clip --precision int8 --threads 2 --batch 8 --tokens 197 --runs 3
	fi
done
node docs/ort/median.mjs "$out"
echo "after $(load)" >>"$out/load.txt"
say "load average after: $(load)"
say
if [ $json = 1 ]; then node docs/ort/table.mjs "$out" --json; else node docs/ort/table.mjs "$out"; fi
