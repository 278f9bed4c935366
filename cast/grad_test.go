package cast_test

import (
	"math"
	"testing"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// TestGradientsMatchFiniteDifferences checks the training path (autodiff through the whole CAST graph,
// including the custom DotGeneral gradient and the Gather-based slicing) against central finite differences
// of the loss, for parameters in every kind of module.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	cfg := cast.Config{ImgSize: 28, PatchSize: 2, InChans: 3, EmbedDim: 8, Depth: 1, NumHeads: 2, MLPRatio: 2,
		DownRatio: 2, AdapterRatio: 0.5, AllFrames: 4, TubeletSize: 2, NumClasses: 3}
	set := weights.Set{}
	for _, s := range cfg.StateDict() {
		v := hashinit.Tensor(7, s.Name, s.Shape)
		set[s.Name] = weights.NewF32(s.Shape, v)
	}
	x := hashinit.Input(8, 2*3*4*28*28)
	b, err := simplego.New("ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	probe := []string{"clip_conv1.weight", "blocks.0.clip_attn.in_proj_weight", "blocks.0.attn.qkv.weight",
		"blocks.0.t2s_cross.t2s_kv.weight", "blocks.0.s2t_cross.s2t_q.weight", "blocks.0.cross_s_up.weight",
		"blocks.0.T_MLP_Adapter.D_fc1.weight", "blocks.0.t2s_cross.clip_time_pos", "head.weight"}
	lossOf := func(set weights.Set, withGrad bool) (float64, map[string][]float32) {
		ctx := context.New()
		if err := cast.LoadWeights(ctx, cfg, set, false); err != nil {
			t.Fatal(err)
		}
		e, err := context.NewExec(b, ctx.Reuse(), func(ctx *context.Context, x *Node) []*Node {
			logits := cast.Forward(ctx, cfg, x, nil)[0]
			w := ConvertDType(Iota(x.Graph(), logits.Shape(), -1), logits.DType())
			loss := ReduceAllSum(Mul(Sin(logits), OnePlus(w)))
			out := []*Node{loss}
			if withGrad {
				var params []*Node
				for _, name := range probe {
					params = append(params, cast.Param(ctx, x.Graph(), name))
				}
				out = append(out, Gradient(loss, params...)...)
			}
			return out
		})
		if err != nil {
			t.Fatal(err)
		}
		outs, err := e.Exec(tensors.FromFlatDataAndDimensions(x, 2, 3, 4, 28, 28))
		if err != nil {
			t.Fatal(err)
		}
		grads := map[string][]float32{}
		if withGrad {
			for i, name := range probe {
				grads[name] = tensors.MustCopyFlatData[float32](outs[i+1])
			}
		}
		return float64(tensors.ToScalar[float32](outs[0])), grads
	}
	_, grads := lossOf(set, true)
	for _, name := range probe {
		g := grads[name]
		// The element with the largest gradient: the best signal-to-noise ratio for a float32 difference.
		k := 0
		for i := range g {
			if math.Abs(float64(g[i])) > math.Abs(float64(g[k])) {
				k = i
			}
		}
		const eps = 1e-2
		perturbed := func(delta float32) float64 {
			c := weights.Set{}
			for n, t := range set {
				c[n] = t
			}
			v := append([]float32(nil), set[name].F32...)
			v[k] += delta
			c[name] = weights.NewF32(set[name].Shape, v)
			l, _ := lossOf(c, false)
			return l
		}
		numeric := (perturbed(eps) - perturbed(-eps)) / (2 * eps)
		if d := math.Abs(numeric - float64(g[k])); d > 0.05*math.Abs(numeric)+1e-3 {
			t.Errorf("%s[%d]: autodiff %.5g, finite difference %.5g", name, k, g[k], numeric)
		} else {
			t.Logf("%s[%d]: autodiff %.5g, finite difference %.5g", name, k, g[k], numeric)
		}
	}
}
