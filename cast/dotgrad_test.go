package cast

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestDotGradMatchesGoMLX checks the fast DotGeneral gradient against GoMLX's own rule on the contraction
// patterns the model uses (linear layers, batched attention scores and outputs) plus a permuted one.
func TestDotGradMatchesGoMLX(t *testing.T) {
	b, err := simplego.New("ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name           string
		lDims, rDims   []int
		lc, lb, rc, rb []int
	}{
		{"linear", []int{2, 5, 4}, []int{3, 4}, []int{2}, nil, []int{1}, nil},
		{"scores", []int{2, 5, 3, 4}, []int{2, 6, 3, 4}, []int{3}, []int{0, 2}, []int{3}, []int{0, 2}},
		{"attend", []int{2, 3, 5, 6}, []int{2, 6, 3, 4}, []int{3}, []int{0, 1}, []int{1}, []int{0, 2}},
		{"permuted", []int{4, 2, 3}, []int{3, 5, 4}, []int{2, 0}, nil, []int{0, 2}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			grads := func(fast bool) [][]float32 {
				e := MustNewExec(b, func(l, r *Node) []*Node {
					var out *Node
					if fast {
						out = dot(l, c.lc, c.lb, r, c.rc, c.rb)
					} else {
						out = DotGeneral(l, c.lc, c.lb, r, c.rc, c.rb)
					}
					// A non-uniform upstream gradient: weight the outputs by a ramp.
					w := Iota(l.Graph(), out.Shape(), -1)
					loss := ReduceAllSum(Mul(Sin(out), ConvertDType(w, out.DType())))
					return Gradient(loss, l, r)
				})
				ln, rn := 1, 1
				for _, d := range c.lDims {
					ln *= d
				}
				for _, d := range c.rDims {
					rn *= d
				}
				lv, rv := make([]float32, ln), make([]float32, rn)
				for i := range lv {
					lv[i] = float32(math.Sin(float64(i)))
				}
				for i := range rv {
					rv[i] = float32(math.Cos(float64(i) * 0.7))
				}
				outs := e.MustExec(tensors.FromFlatDataAndDimensions(lv, c.lDims...), tensors.FromFlatDataAndDimensions(rv, c.rDims...))
				return [][]float32{tensors.MustCopyFlatData[float32](outs[0]), tensors.MustCopyFlatData[float32](outs[1])}
			}
			want, got := grads(false), grads(true)
			for k := range want {
				for i := range want[k] {
					if d := math.Abs(float64(want[k][i] - got[k][i])); d > 1e-4 {
						t.Fatalf("operand %d element %d: fast gradient %g, GoMLX %g", k, i, got[k][i], want[k][i])
					}
				}
			}
		})
	}
}
