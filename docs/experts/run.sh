#!/usr/bin/env bash
# Experts vs CAST at matched parameter counts (docs/demo-model.md, "Experts vs CAST").
#
# Trains CAST (the demo config), the spatial expert alone widened to D=52 and the temporal expert alone
# widened to D=56 (docs/experts/*.json: within 2.5% of CAST's 89,408 parameters), each with every seed of
# SEEDS on the same procedural training data (--data-seed 1000), the same steps, batch and learning-rate
# schedule; then evaluates every model with `cast eval` on the same 1,000 held-out H.264 clips (`cast dataset
# --seed 9000`, decoded once to PNG frames; 1x1 view) and prints mean ± std (sample std, n-1) over the seeds of
# top-1 on the class and on its what and how halves (cast eval --factors).
#
# Usage: docs/experts/run.sh [all|train|eval|table]   (default all), from the repository root.
# Environment:
#   STEPS=200       optimizer steps per run (batch 8, lr 2e-3, 30 warm-up steps, cosine decay)
#   SEEDS="1 2 3 4 5"  training seeds
#   JOBS=2          runs trained at once (each with GOMAXPROCS=THREADS)
#   THREADS=1       GOMAXPROCS of each training process (castgo's kernels use GOMAXPROCS goroutines)
#   EVAL_JOBS=3     evaluations run at once (a model not trained yet is skipped: rerun the eval stage later)
#   OUT=/tmp/experts  checkpoints (--dir, so a killed run resumes), models, eval JSON, logs
#   CAST=$OUT/cast  the cast binary (built from this checkout when missing)
# Needs ffmpeg (cast dataset, cast eval) and jq (the table).
set -euo pipefail

STEPS=${STEPS:-200}
SEEDS=${SEEDS:-"1 2 3 4 5"}
JOBS=${JOBS:-2}
THREADS=${THREADS:-1}
OUT=${OUT:-/tmp/experts}
CAST=${CAST:-$OUT/cast}
STAGE=${1:-all}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../toolchain.env" # the Go toolchain and GOEXPERIMENT, written once
MODELS="cast spatial temporal"

mkdir -p "$OUT"
if [[ ! -x $CAST ]]; then
	(cd "$HERE/../.." && go build -o "$CAST" ./tools/cast)
fi

config() { # the --config and --experts of a model
	case $1 in
	cast) echo "--config demo" ;;
	spatial) echo "--config $HERE/spatial-wide.json --experts spatial" ;;
	temporal) echo "--config $HERE/temporal-wide.json --experts temporal" ;;
	esac
}

train_one() { # model seed
	local m=$1 s=$2 name="$1-s$2-$STEPS"
	if [[ -f $OUT/$name.safetensors ]]; then
		echo "$name: trained already"
		return
	fi
	echo "$name: training ($(date -u +%H:%M:%S))"
	# shellcheck disable=SC2046
	GOMAXPROCS=$THREADS nice -n 5 "$CAST" train $(config "$m") --seed "$s" --data-seed 1000 --eval-seed 9000 \
		--steps "$STEPS" --batch 8 --lr 2e-3 --warmup 30 --log-every 50 \
		--dir "$OUT/ckpt-$name" --out "$OUT/$name.safetensors" >"$OUT/train-$name.log" 2>&1 ||
		{ echo "$name: training failed, see $OUT/train-$name.log"; return 1; }
	echo "$name: $(tail -1 "$OUT/train-$name.log") ($(date -u +%H:%M:%S))"
}

if [[ $STAGE == all || $STAGE == train ]]; then
	export -f train_one config
	export OUT CAST STEPS THREADS HERE
	for s in $SEEDS; do for m in $MODELS; do echo "$m $s"; done; done |
		xargs -P "$JOBS" -L 1 bash -c 'train_one "$0" "$1"'
fi

eval_one() { # model seed
	local name="$1-s$2-$STEPS"
	if [[ -f $OUT/eval-$name.json ]]; then
		return
	fi
	if [[ ! -f $OUT/$name.safetensors ]]; then
		echo "$name: not trained yet, no eval"
		return
	fi
	echo "$name: eval ($(date -u +%H:%M:%S))"
	nice -n 5 "$CAST" eval --model "$OUT/$name.safetensors" --annotations "$OUT/heldout-frames/annotations.csv" \
		--videos "$OUT/heldout-frames" --views 1x1 --json >"$OUT/eval-$name.json.tmp" 2>"$OUT/eval-$name.log" ||
		{ echo "$name: eval failed, see $OUT/eval-$name.log"; return 1; }
	mv "$OUT/eval-$name.json.tmp" "$OUT/eval-$name.json"
	echo "$name: evaluated ($(date -u +%H:%M:%S))"
}

if [[ $STAGE == all || $STAGE == eval ]]; then
	if [[ ! -f $OUT/heldout/annotations.csv ]]; then
		"$CAST" dataset --seed 9000 --clips 1000 --out "$OUT/heldout"
	fi
	# Decode every clip once into a folder of PNG frames (the same RGB24 frames cast eval gets from ffmpeg for
	# the .mp4, losslessly stored) so that the nine evaluations do not run ffprobe and ffmpeg 9,000 times.
	if [[ ! -f $OUT/heldout-frames/annotations.csv ]]; then
		while read -r clip label; do
			dir="$OUT/heldout-frames/${clip%.mp4}"
			mkdir -p "$dir"
			nice -n 5 ffmpeg -v error -nostdin -y -i "$OUT/heldout/$clip" -map 0:v:0 -fps_mode passthrough \
				-pix_fmt rgb24 "$dir/%03d.png"
			echo "${clip%.mp4} $label"
		done <"$OUT/heldout/annotations.csv" >"$OUT/heldout-frames.csv.tmp"
		mv "$OUT/heldout-frames.csv.tmp" "$OUT/heldout-frames/annotations.csv"
	fi
	export -f eval_one
	export OUT CAST STEPS
	for s in $SEEDS; do for m in $MODELS; do echo "$m $s"; done; done |
		xargs -P "${EVAL_JOBS:-3}" -L 1 bash -c 'eval_one "$0" "$1"'
fi

if [[ $STAGE == all || $STAGE == table ]]; then
	echo "$STEPS steps x 8 clips, seeds $SEEDS; 1,000 held-out clips (seed 9000, 1x1 view); top-1 %, mean ± std over seeds"
	printf '%-9s %15s  %-12s  %-12s  %-12s  %s\n' model "params GMAC" overall what how "per seed: overall/what/how"
	for m in $MODELS; do
		files=()
		for s in $SEEDS; do files+=("$OUT/eval-$m-s$s-$STEPS.json"); done
		# shellcheck disable=SC2046
		params=$("$CAST" info --json $(config "$m" | sed 's/--config //; s/--experts.*//') |
			jq -r '"\(.params_total) \(.gmac_per_view * 1000 | round / 1000)"')
		jq -rs --arg m "$m" --arg p "$params" '
			def metric(h): map([(.metrics[] | select(.head == h)), (.factors[] | select(.name == h))][0].top1 * 100);
			def ms: (add / length) as $mu |
				[$mu, (if length > 1 then (map(. - $mu | . * .) | add / (length - 1) | sqrt) else 0 end)];
			def r1: . * 10 | round / 10;
			(metric("logits")) as $o | (metric("what")) as $w | (metric("how")) as $h |
			[$m, $p] + ($o | ms) + ($w | ms) + ($h | ms) +
			[[range(0; length)] | map("\($o[.] | r1)/\($w[.] | r1)/\($h[.] | r1)") | join("  ")] |
			@tsv' "${files[@]}" |
			awk -F'\t' '{printf "%-9s %15s  %5.1f ± %-4.1f  %5.1f ± %-4.1f  %5.1f ± %-4.1f  %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}'
	done
fi
