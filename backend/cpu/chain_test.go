package cpu_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/castvideo/castgo/backend"
	"github.com/castvideo/castgo/backend/cpu"
	"github.com/castvideo/castgo/backend/internal/capturetest"
	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/castvideo/castgo/internal/golden"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// forwardRuns compiles cast.Forward of cfg (hash-initialised weights, int8 when asked) on a new castgo
// backend and runs it on each clip of xs, returning the logits of each run (read after all runs) and the
// executable.
func forwardRuns(t *testing.T, cfg cast.Config, int8 bool, xs ...*tensors.Tensor) ([][]float32, backends.Executable) {
	t.Helper()
	be, err := backend.New("")
	if err != nil {
		t.Fatal(err)
	}
	cb := &capturetest.Backend{Backend: be}
	set := weights.Set{}
	for _, s := range cfg.StateDict() {
		set[s.Name] = weights.NewF32(s.Shape, hashinit.Tensor(3, s.Name, s.Shape))
	}
	if int8 {
		if set, err = cast.QuantizeInt8(set, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.New()
	if err := cast.LoadWeights(ctx, cfg, set, false); err != nil {
		t.Fatal(err)
	}
	exec, err := context.NewExec(cb, ctx.Reuse(), func(ctx *context.Context, x *graph.Node) []*graph.Node {
		return cast.Forward(ctx, cfg, x, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	var outs []*tensors.Tensor
	for _, x := range xs {
		xc, err := x.LocalClone()
		if err != nil {
			t.Fatal(err)
		}
		res, err := exec.Exec(xc)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, res...)
	}
	var flat [][]float32
	for _, o := range outs {
		flat = append(flat, tensors.MustCopyFlatData[float32](o))
	}
	return flat, cb.Last()
}

func randClip(cfg cast.Config, seed uint64) *tensors.Tensor {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := tensors.FromShape(shapes.Make(dtypes.Float32, 1, cfg.InChans, cfg.AllFrames, cfg.ImgSize, cfg.ImgSize))
	tensors.MutableFlatData(x, func(f []float32) {
		for i := range f {
			f[i] = float32(rng.NormFloat64())
		}
	})
	return x
}

// TestGemmChainsSameBits checks that running the MLPs of the small golden (fp32 and int8) as GEMM chains in
// blocks of 48 and 96 rows gives the same bits as the unchained GEMMs, that chains were found (one per
// block's MLP at least), that no two intermediates alive at once share arena memory, that the arena is no larger with them (in the small model the hidden layer is not
// the peak), and that the outputs of a run do not change when
// the program runs again (they do not live in the arena).
func TestGemmChainsSameBits(t *testing.T) {
	cfg := golden.Config(t, "small")
	x1, x2 := randClip(cfg, 1), randClip(cfg, 2)
	for _, int8 := range []bool{false, true} {
		restore := cpu.SetChainRows(0)
		want, exec := forwardRuns(t, cfg, int8, x1, x2)
		p, _ := backend.PlanOf(exec)
		if n := cpu.Chains(p); n != 0 {
			t.Fatalf("int8=%v: %d chains with chains off", int8, n)
		}
		if err := cpu.CheckArena(p); err != nil {
			t.Errorf("int8=%v: %v", int8, err)
		}
		plainArena, err := cpu.ArenaBytes(p)
		if err != nil {
			t.Fatal(err)
		}
		restore()
		if len(want) != 2 || len(want[0]) == 0 || slicesEqualBits(want[0], want[1]) {
			t.Fatalf("int8=%v: outputs of two clips %d/%d values, equal %v", int8, len(want), len(want[0]), len(want) == 2 && slicesEqualBits(want[0], want[1]))
		}
		for _, rows := range []int{48, 96} {
			restore := cpu.SetChainRows(rows)
			got, exec := forwardRuns(t, cfg, int8, x1, x2)
			p, _ := backend.PlanOf(exec)
			chains := cpu.Chains(p)
			if err := cpu.CheckArena(p); err != nil {
				t.Errorf("int8=%v rows=%d: %v", int8, rows, err)
			}
			arena, err := cpu.ArenaBytes(p)
			restore()
			if err != nil {
				t.Fatal(err)
			}
			if chains < cfg.Depth {
				t.Errorf("int8=%v rows=%d: %d chains, want ≥ %d (one per block's MLP)", int8, rows, chains, cfg.Depth)
			}
			if arena > plainArena {
				t.Errorf("int8=%v rows=%d: arena %d bytes with chains, %d without", int8, rows, arena, plainArena)
			}
			for i := range want {
				if !slicesEqualBits(got[i], want[i]) {
					t.Errorf("int8=%v rows=%d: output %d differs from the unchained run", int8, rows, i)
				}
			}
			t.Logf("int8=%v rows=%d: %d chains, arena %.2f → %.2f MiB", int8, rows, chains, float64(plainArena)/(1<<20), float64(arena)/(1<<20))
		}
	}
}

func slicesEqualBits(a, b []float32) bool {
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
