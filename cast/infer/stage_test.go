package infer_test

import (
	"math"
	"testing"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/castvideo/castgo/internal/golden"
)

// TestStageLoadAndRunFill loads the two stages of the tiny golden (int8) the way a stage worker does
// (castgo with releasepacked: each int8 weight packed as it loads) and checks that NewStage takes the
// weights out of the set it is given, that RunFill (which keeps its input buffers between runs and hands
// the outputs over without a copy) gives the same bits as Run on the plain backend for two different
// inputs in a row, and that the first run's outputs are not changed by the second run.
func TestStageLoadAndRunFill(t *testing.T) {
	cfg := golden.Config(t, "tiny")
	f32 := weights.Set{}
	for _, s := range cfg.StateDict() {
		f32[s.Name] = weights.NewF32(s.Shape, hashinit.Tensor(1, s.Name, s.Shape))
	}
	set, err := cast.QuantizeInt8(f32, nil)
	if err != nil {
		t.Fatal(err)
	}
	stages, err := cast.SplitStages(cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	load := func(backend string, st cast.Stage) *infer.StageModel {
		t.Helper()
		b, _, err := infer.NewBackend(backend)
		if err != nil {
			t.Fatal(err)
		}
		sub := weights.Set{}
		for name, w := range set {
			if st.Owns(name) {
				sub[name] = w
			}
		}
		m, err := infer.NewStage(b, cfg, st, sub)
		if err != nil {
			t.Fatal(err)
		}
		if len(sub) != 0 {
			t.Fatalf("stage %s: %d weights left in the set after NewStage", st, len(sub))
		}
		return m
	}
	// two clips
	clip := stages[0].Inputs(cfg, 1)[0]
	n := 1
	for _, d := range clip {
		n *= d
	}
	xs := [][][]float32{{make([]float32, n)}, {make([]float32, n)}}
	for i := range n {
		xs[0][0][i] = float32(math.Sin(float64(i) * 0.01))
		xs[1][0][i] = float32(math.Cos(float64(i) * 0.013))
	}
	for si, st := range stages {
		plain, packed := load("castgo", st), load("castgo:releasepacked", st)
		var first [][]float32
		var firstCopy [][]float32
		for r, in := range xs {
			want, err := plain.Run(in, 1)
			if err != nil {
				t.Fatal(err)
			}
			got, err := packed.RunFill(1, func(i int, dst []float32) error {
				copy(dst, in[i])
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("stage %d run %d: %d outputs, want %d", si, r, len(got), len(want))
			}
			for h := range want {
				if !sameBits(got[h], want[h]) {
					t.Errorf("stage %d run %d output %d: RunFill on releasepacked differs from Run on the plain backend", si, r, h)
				}
			}
			if r == 0 {
				first = got
				for _, o := range got {
					firstCopy = append(firstCopy, append([]float32(nil), o...))
				}
			}
			xs[r] = want // the next stage's inputs
		}
		for h := range first {
			if !sameBits(first[h], firstCopy[h]) {
				t.Errorf("stage %d output %d of the first run changed during the second", si, h)
			}
		}
		plain.Close()
		packed.Close()
	}
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
