package backend_test

import (
	"testing"

	"github.com/castvideo/castgo/backend"
	"github.com/castvideo/castgo/backend/webgpu"
	"github.com/castvideo/castgo/internal/golden"
)

// TestGPUProgramCoversPlans checks that every step of the inference plans of the tiny and small goldens
// (fp32 and int8) has a WebGPU form, so that the browser runs them entirely on the GPU.
func TestGPUProgramCoversPlans(t *testing.T) {
	for _, name := range []string{"tiny", "small"} {
		cfg := golden.Config(t, name)
		for _, int8 := range []bool{false, true} {
			exec := compiledForward(t, cfg, int8)
			p, ok := backend.PlanOf(exec)
			if !ok {
				t.Fatalf("%s int8=%v: %T is not a castgo executable", name, int8, exec)
			}
			info, err := webgpu.Describe(p)
			if err != nil {
				t.Fatalf("%s int8=%v: %v", name, int8, err)
			}
			steps := len(backend.PlanSteps(exec))
			if info.Dispatches < steps || info.Kernels < 5 || info.FLOPs <= 0 {
				t.Errorf("%s int8=%v: %+v for %d steps", name, int8, info, steps)
			}
			t.Logf("%s int8=%v: %d steps → %d dispatches, %d kernels, %d buffers (%.1f MB), %.2f GFLOP", name, int8,
				steps, info.Dispatches, info.Kernels, info.Buffers, float64(info.BufferBytes)/1e6, float64(info.FLOPs)/1e9)
		}
	}
}
