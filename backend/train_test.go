package backend_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/castvideo/castgo/backend"
	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/synth"
	"github.com/castvideo/castgo/cast/training"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
)

// lossAndGrads computes the training loss (sparse cross-entropy of the logits) of one batch and its gradient
// with respect to every weight of the model, on backend b.
func lossAndGrads(t *testing.T, b backends.Backend, cfg cast.Config, set weights.Set, x []float32, labels []int32) (float32, map[string][]float32) {
	t.Helper()
	ctx := context.New()
	if err := cast.LoadWeights(ctx, cfg, set, false); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(set))
	for _, s := range cfg.StateDict() {
		names = append(names, s.Name)
	}
	batch := len(labels)
	exec, err := context.NewExec(b, ctx.Reuse(), func(ctx *context.Context, x, y *graph.Node) []*graph.Node {
		logits := cast.Forward(ctx, cfg, x, nil)[0]
		loss := graph.ReduceAllMean(losses.SparseCategoricalCrossEntropyLogits([]*graph.Node{y}, []*graph.Node{logits}))
		var params []*graph.Node
		for _, name := range names {
			params = append(params, cast.Param(ctx, x.Graph(), name))
		}
		return append([]*graph.Node{loss}, graph.Gradient(loss, params...)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(tensors.FromFlatDataAndDimensions(x, batch, cfg.InChans, cfg.AllFrames, cfg.ImgSize, cfg.ImgSize),
		tensors.FromFlatDataAndDimensions(labels, batch, 1))
	if err != nil {
		t.Fatal(err)
	}
	grads := map[string][]float32{}
	for i, name := range names {
		grads[name] = tensors.MustCopyFlatData[float32](outs[i+1])
	}
	return tensors.ToScalar[float32](outs[0]), grads
}

func randomSet(cfg cast.Config, seed int) weights.Set {
	set := weights.Set{}
	for _, s := range cfg.StateDict() {
		set[s.Name] = weights.NewF32(s.Shape, hashinit.Tensor(seed, s.Name, s.Shape))
	}
	return set
}

// Bounds of the training cross-checks against simplego, relative errors: about three times the worst
// measured over the AVX2, portable and WASM SIMD128 kernel tiers (2026-12-06, AVX2 / portable / WASM:
// gradients 9.6e-7 / 1.0e-6 / 1.1e-6, weights after two Adam steps 2.9e-6 / 3.1e-6 / 6.8e-6, losses ≤ 1.1e-7).
const (
	gradTol = 3e-6 // every weight's gradient of one batch
	stepTol = 2e-5 // every weight after two optimizer steps
	lossTol = 1e-6 // the loss
)

// TestGradientsVsSimplego: the loss and every weight's gradient of one training batch agree between the
// castgo backend and GoMLX's simplego (≤ lossTol and gradTol relative).
func TestGradientsVsSimplego(t *testing.T) {
	cfg := smallConfig()
	set := randomSet(cfg, 3)
	const batch = 3
	x := hashinit.Input(5, batch*cfg.InChans*cfg.AllFrames*cfg.ImgSize*cfg.ImgSize)
	labels := []int32{0, 3, 4}
	sg, err := simplego.New("ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	cg, err := backend.New("")
	if err != nil {
		t.Fatal(err)
	}
	wantLoss, want := lossAndGrads(t, sg, cfg, set, x, labels)
	gotLoss, got := lossAndGrads(t, cg, cfg, set, x, labels)
	lossErr := relErr([]float32{gotLoss}, []float32{wantLoss})
	if lossErr > lossTol {
		t.Errorf("loss: castgo %g, simplego %g: relative error %.2g > %g", gotLoss, wantLoss, lossErr, lossTol)
	}
	worst := 0.0
	for name, w := range want {
		e := relErr(got[name], w)
		worst = max(worst, e)
		if e > gradTol {
			t.Errorf("gradient of %s: relative error %.2g > %g", name, e, gradTol)
		}
	}
	t.Logf("loss %g (simplego %g, relative error %.2g); worst gradient relative error %.2g over %d weights",
		gotLoss, wantLoss, lossErr, worst, len(want))
}

// TestTrainStepsVsSimplego runs two full optimizer steps (GoMLX's trainer: loss, autodiff, Adam with the
// cosine schedule, metrics) with cast/training on both backends and compares the loss and the updated weights.
func TestTrainStepsVsSimplego(t *testing.T) {
	cfg := smallConfig()
	cfg.NumClasses = len(synth.Classes)
	src := training.SynthSource{Seed: 1, Options: synth.Options{Frames: 8, Width: 32, Height: 32}, Size: cfg.ImgSize, T: cfg.AllFrames}
	run := func(b backends.Backend) *training.Result {
		res, err := training.Train(training.Options{Config: cfg, Train: src, Eval: src, EvalClips: 4, Steps: 2, Batch: 4,
			LR: 1e-2, WarmUp: 1, Seed: 1, Backend: b})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	sg, err := simplego.New("ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	cg, err := backend.New("")
	if err != nil {
		t.Fatal(err)
	}
	want, got := run(sg), run(cg)
	lossErr := relErr([]float32{float32(got.EvalLoss)}, []float32{float32(want.EvalLoss)})
	if lossErr > lossTol {
		t.Errorf("held-out loss after 2 steps: castgo %g, simplego %g: relative error %.2g > %g", got.EvalLoss, want.EvalLoss, lossErr, lossTol)
	}
	worst := 0.0
	for name, w := range want.Weights {
		g, wf := got.Weights[name].F32, w.F32
		if strings.HasSuffix(name, "in_proj_bias") {
			// The key bias shifts every attention logit of a query equally: softmax ignores it, its gradient is
			// zero up to rounding, and Adam's m/√v turns that rounding noise into full-size steps. Compare the
			// query and value thirds only.
			d := len(wf) / 3
			g, wf = append(slices.Clone(g[:d]), g[2*d:]...), append(slices.Clone(wf[:d]), wf[2*d:]...)
		}
		e := relErr(g, wf)
		worst = max(worst, e)
		if e > stepTol {
			t.Errorf("weight %s after 2 steps: relative error %.2g > %g", name, e, stepTol)
		}
	}
	t.Logf("held-out loss %g (simplego %g, relative error %.2g); worst weight relative error %.2g",
		got.EvalLoss, want.EvalLoss, lossErr, worst)
}
