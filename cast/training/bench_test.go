package training

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/castvideo/castgo/backend"
	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/synth"
	"github.com/gomlx/gomlx/backends"
)

// BenchmarkTrainStep times one optimizer step (forward, backward, Adam) of the demo config at batch 16, the
// batch already rendered, on castgo and on GoMLX's simplego in the same run:
//
//	go test ./cast/training -run XXX -bench TrainStep -benchtime 3x
//
// CASTGO_PROFILE=1 prints castgo's per-step profile (its top 40 steps; CASTGO_PROFILE=N: the top N, -1:
// all). cpu-s/step is the process's CPU time per step (both threads): steadier than the wall time on a
// loaded machine.
func BenchmarkTrainStep(b *testing.B) {
	for _, name := range []string{"castgo", "simplego"} {
		b.Run(name, func(b *testing.B) {
			be, desc, err := infer.NewBackend(map[string]string{"castgo": "go", "simplego": "simplego"}[name])
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("backend %s", desc)
			benchTrainStep(b, be, name == "castgo")
		})
	}
}

func benchTrainStep(b *testing.B, be backends.Backend, profile bool) {
	cfg := cast.DemoConfig()
	src := SynthSource{Seed: 1, Options: synth.Options{Frames: 16, Width: 64, Height: 64}, Size: cfg.ImgSize, T: cfg.AllFrames}
	r, err := newRun(Options{Config: cfg, Train: src, Steps: 1000, Batch: 16, LR: 1e-3, WarmUp: 10, Seed: 1, Backend: be})
	if err != nil {
		b.Fatal(err)
	}
	in, lab, err := renderBatch(src, 16, cfg, 1, 0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.trainer.TrainStep(16, in, lab); err != nil { // compiles
		b.Fatal(err)
	}
	backend.ResetProfile()
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		if _, err := r.trainer.TrainStep(16, in, lab); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/step")
	if v := os.Getenv("CASTGO_PROFILE"); profile && v != "" {
		top, err := strconv.Atoi(v)
		if err != nil || top == 1 {
			top = 40
		}
		fmt.Println(backend.ProfileReport(top))
	}
}

// BenchmarkRenderBatch times rendering and preprocessing one training batch of 16 procedural clips.
func BenchmarkRenderBatch(b *testing.B) {
	cfg := cast.DemoConfig()
	src := SynthSource{Seed: 1, Options: synth.Options{Frames: 16, Width: 64, Height: 64}, Size: cfg.ImgSize, T: cfg.AllFrames}
	for i := 0; i < b.N; i++ {
		if _, _, err := renderBatch(src, 16, cfg, 1, i*16); err != nil {
			b.Fatal(err)
		}
	}
}
