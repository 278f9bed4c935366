package plan

import (
	"errors"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// graph builds nodes the way the backend's builder does (ids in creation order).
type graph struct{ nodes, params []*Node }

func (g *graph) add(op backends.OpType, dims []int, ins ...*Node) *Node {
	n := &Node{ID: len(g.nodes), Op: op, Shape: shapes.Make(dtypes.Float32, dims...), Inputs: ins}
	g.nodes = append(g.nodes, n)
	return n
}

func (g *graph) param(name string, dims ...int) *Node {
	n := g.add(backends.OpTypeParameter, dims)
	n.Param, n.Name = len(g.params), name
	g.params = append(g.params, n)
	return n
}

func noFold(*Node, []any) (any, error) { return nil, errors.New("no constants in this graph") }

// TestGemmEpilogueStep checks that x·W + bias followed by exp(−·) plans as two typed steps: a Gemm with the
// bias in its epilogue (read through the broadcast's root) and one Elementwise loop of two instructions,
// the GEMM's output released after the loop reads it and the output kept.
func TestGemmEpilogueStep(t *testing.T) {
	g := &graph{}
	x, w, b := g.param("x", 4, 8), g.param("var:w", 8, 16), g.param("var:b", 16)
	d := g.add(backends.OpTypeDotGeneral, []int{4, 16}, x, w)
	d.Dot = &DotParams{LhsContract: []int{1}, RhsContract: []int{0}}
	bb := g.add(backends.OpTypeBroadcastInDim, []int{4, 16}, b)
	bb.Axes = []int{1}
	y := g.add(backends.OpTypeAdd, []int{4, 16}, d, bb)
	out := g.add(backends.OpTypeExp, []int{4, 16}, g.add(backends.OpTypeNeg, []int{4, 16}, y))
	p, err := Compile(g.nodes, g.params, []*Node{out}, noFold)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 2 {
		t.Fatalf("%d steps, want 2: %v", len(p.Steps), p.Steps)
	}
	gemm, ok := p.Steps[0].Kind.(*Gemm)
	if !ok || p.Steps[0].Out != y || gemm.M != 4 || gemm.K != 8 || gemm.N != 16 || gemm.LHS != x || gemm.W != w ||
		gemm.Bias != b || gemm.Transposed || gemm.Act != ActNone || gemm.Residual != nil {
		t.Errorf("step 0: %s %+v", p.Steps[0].Label, p.Steps[0].Kind)
	}
	ew, ok := p.Steps[1].Kind.(*Elementwise)
	if !ok || p.Steps[1].Out != out || len(ew.Instrs) != 2 || len(ew.Leaves) != 1 || ew.Leaves[0].Root != y ||
		!ew.Leaves[0].Contiguous || ew.Instrs[0].Op != backends.OpTypeNeg || ew.Instrs[1].Op != backends.OpTypeExp {
		t.Errorf("step 1: %s %+v", p.Steps[1].Label, p.Steps[1].Kind)
	}
	if len(p.ReleaseAfter) != 2 || len(p.ReleaseAfter[0]) != 0 || len(p.ReleaseAfter[1]) != 1 || p.ReleaseAfter[1][0] != y.ID {
		t.Errorf("releases %v, want y (#%d) after step 1 only", p.ReleaseAfter, y.ID)
	}
}

// TestViewsNeedNoStep checks that a transpose read by an elementwise op becomes strides of the loop's
// leaf (no copy step), and that a transpose that is itself an output gets a strided Copy step.
func TestViewsNeedNoStep(t *testing.T) {
	g := &graph{}
	x := g.param("x", 2, 3)
	tr := g.add(backends.OpTypeTranspose, []int{3, 2}, x)
	tr.Axes = []int{1, 0}
	e := g.add(backends.OpTypeExp, []int{3, 2}, tr)
	p, err := Compile(g.nodes, g.params, []*Node{e}, noFold)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 1 {
		t.Fatalf("%d steps, want 1", len(p.Steps))
	}
	ew := p.Steps[0].Kind.(*Elementwise)
	if l := ew.Leaves[0]; l.Root != x || l.Contiguous || l.Strides[0] != 1 || l.Strides[1] != 3 {
		t.Errorf("leaf %+v, want x read with strides [1 3]", l)
	}
	p, err = Compile(g.nodes, g.params, []*Node{tr}, noFold)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 1 {
		t.Fatalf("%d steps, want 1", len(p.Steps))
	}
	if c, ok := p.Steps[0].Kind.(*Copy); !ok || c.Src.Root != x || c.Src.Strides[0] != 1 || c.Src.Strides[1] != 3 {
		t.Errorf("step %s %+v, want a strided copy of x", p.Steps[0].Label, p.Steps[0].Kind)
	}
}
