package backend_test

import (
	"os"
	"strings"
	"testing"

	"github.com/castvideo/castgo/backend"
	"github.com/castvideo/castgo/backend/internal/capturetest"
	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

func planOf(t *testing.T, cfg cast.Config, int8 bool) []string {
	return backend.PlanSteps(compiledForward(t, cfg, int8))
}

// compiledForward compiles cast.Forward for one clip on the castgo backend (hash-initialised weights, int8
// quantized when asked) and returns the executable.
func compiledForward(t *testing.T, cfg cast.Config, int8 bool) backends.Executable {
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
	x := tensors.FromShape(shapes.Make(dtypes.Float32, 1, cfg.InChans, cfg.AllFrames, cfg.ImgSize, cfg.ImgSize))
	if _, err := exec.Exec(x); err != nil {
		t.Fatal(err)
	}
	return cb.Last()
}

// TestPlanFusions checks that the CAST graph compiles to fused steps: no unfused DotGeneral, softmax or
// layer-norm reductions remain.
func TestPlanFusions(t *testing.T) {
	for _, int8 := range []bool{false, true} {
		steps := planOf(t, smallConfig(), int8)
		if os.Getenv("CASTGO_PLAN") != "" {
			t.Logf("int8=%v: %d steps:\n%s", int8, len(steps), strings.Join(steps, "\n"))
		}
		for _, s := range steps {
			if strings.HasPrefix(s, "DotGeneral") || strings.HasPrefix(s, "ReduceMax") || strings.HasPrefix(s, "ConvertDType") {
				t.Errorf("int8=%v: unfused step %q", int8, s)
			}
		}
	}
}
