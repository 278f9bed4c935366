package training

import (
	"testing"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/synth"
)

// tinyConfig is a small CAST for fast training tests.
func tinyConfig() cast.Config {
	return cast.Config{ImgSize: 28, PatchSize: 2, InChans: 3, EmbedDim: 16, Depth: 1, NumHeads: 2, MLPRatio: 2,
		DownRatio: 2, AdapterRatio: 0.25, AllFrames: 4, TubeletSize: 2, NumClasses: len(synth.Classes)}
}

// TestShortRunDecreasesLoss trains a few steps on one repeated batch and checks that the loss goes down.
func TestShortRunDecreasesLoss(t *testing.T) {
	cfg := tinyConfig()
	b, _, err := infer.NewBackend("go") // castgo (backend/cpu/ops_train.go has the gradient ops)
	if err != nil {
		t.Fatal(err)
	}
	src := SynthSource{Seed: 1, Options: synth.Options{Frames: 8, Width: 32, Height: 32}, Size: 28, T: 4, Count: 8}
	first, err := Train(Options{Config: cfg, Train: src, Steps: 1, Batch: 8, LR: 3e-3, Seed: 1, Backend: b, Eval: src})
	if err != nil {
		t.Fatal(err)
	}
	later, err := Train(Options{Config: cfg, Train: src, Steps: 30, Batch: 8, LR: 3e-3, Seed: 1, Backend: b, Eval: src})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("eval loss after 1 step %.4f, after 30 steps %.4f (acc %.2f)", first.EvalLoss, later.EvalLoss, later.EvalAccuracy)
	if !(later.EvalLoss < first.EvalLoss*0.9) {
		t.Errorf("loss did not decrease: %.4f after 1 step, %.4f after 30", first.EvalLoss, later.EvalLoss)
	}
}
