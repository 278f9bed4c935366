package cast

import (
	"math"
	"math/rand/v2"
	"strings"

	"github.com/castvideo/castgo/cast/weights"
)

// InitWeights returns freshly initialised weights for training from scratch, deterministic in seed:
// PyTorch's default Linear/Conv initialisation for matrices (uniform ±1/√fan_in), truncated-normal
// (σ 0.02) embeddings, zero biases, unit LayerNorm gains, and — as in the official code — zero block-adapter
// D_fc2 and B-CAST up projections, so each adapter and B-CAST starts as a no-op around its expert.
// (σ 0.02 for the matrices too, as ViT-B pre-training uses, leaves a model with D=64 stuck at chance for
// hundreds of steps: the head sees features ~100× too small.)
func InitWeights(cfg Config, seed uint64) weights.Set {
	rng := rand.New(rand.NewPCG(seed, 0x5EED))
	set := weights.Set{}
	for _, s := range cfg.StateDict() {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		v := make([]float32, n)
		switch {
		case strings.HasSuffix(s.Name, "bias"):
			// zeros
		case len(s.Shape) == 1 && strings.HasSuffix(s.Name, "weight"):
			for i := range v {
				v[i] = 1 // LayerNorm gain
			}
		case zeroInit(s.Name):
			// zeros: adapters and B-CAST start as no-ops
		case len(s.Shape) >= 2 && strings.HasSuffix(s.Name, "weight"):
			bound := 1 / math.Sqrt(float64(n/s.Shape[0]))
			for i := range v {
				v[i] = float32((2*rng.Float64() - 1) * bound)
			}
		default:
			for i := range v {
				v[i] = float32(truncNormal(rng) * 0.02)
			}
		}
		set[s.Name] = weights.NewF32(s.Shape, v)
	}
	return set
}

// zeroInit reports the weights the official code zero-initialises: every block adapter's D_fc2 and the
// B-CAST up projections. (The head adapters' D_fc2 is also zeroed there; here it is left random so that a
// model trained from scratch gets gradients into its adapters from the first step.)
func zeroInit(name string) bool {
	if strings.HasPrefix(name, "blocks.") && strings.Contains(name, "Adapter.D_fc2") {
		return true
	}
	return strings.Contains(name, "cross_s_up") || strings.Contains(name, "cross_t_up")
}

// truncNormal draws from the standard normal truncated to [-2, 2].
func truncNormal(rng *rand.Rand) float64 {
	for {
		if x := rng.NormFloat64(); math.Abs(x) <= 2 {
			return x
		}
	}
}
