package training

import (
	"os"
	"testing"
	"time"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/synth"
)

func probeCfg() cast.Config {
	return cast.Config{ImgSize: 56, PatchSize: 4, InChans: 3, EmbedDim: 64, Depth: 3, NumHeads: 4, MLPRatio: 4,
		DownRatio: 2, AdapterRatio: 0.25, AllFrames: 4, TubeletSize: 2, NumClasses: len(synth.Classes)}
}

func TestProbeForward(t *testing.T) {
	cfg := probeCfg()
	b, _, _ := infer.NewBackend("go")
	m, err := infer.New(b, cfg, cast.InitWeights(cfg, 1))
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 8*m.ClipLen())
	m.Run(x, 8)
	st := time.Now()
	m.Run(x, 8)
	t.Logf("forward B=8: %v", time.Since(st))
}

func TestProbeSpeed(t *testing.T) {
	cfg := probeCfg()
	b, _, _ := infer.NewBackend("go")
	src := SynthSource{Seed: 1, Options: synth.Options{Frames: 16, Width: 64, Height: 64}, Size: 56, T: 4}
	r, err := Train(Options{Config: cfg, Train: src, Steps: 11, Batch: 8, LR: 1e-3, Seed: 1, Backend: b, Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r.Duration)
}
