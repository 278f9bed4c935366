package cast

import (
	"slices"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// The reverse-mode gradient of DotGeneral in gomlx v0.26.0 materialises the full outer product (a
// broadcast Mul of [batch, lhs-free, rhs-free, contracted] followed by a ReduceSum), which made one training
// step of a small CAST take about a minute on the pure-Go backend. dot records the axes of each
// DotGeneral the model builds, and dotGeneralVJP computes its gradients as two DotGenerals (the textbook
// dL/dA = dL/dC·Bᵀ, dL/dB = Aᵀ·dL/dC), falling back to GoMLX's rule for DotGenerals built elsewhere.

// dotAxes are the contracting and batch axes of one DotGeneral.
type dotAxes struct{ lc, lb, rc, rb []int }

var (
	dotRegistry   sync.Map // *graph.Node (a DotGeneral built by dot) → dotAxes
	defaultDotVJP = graph.VJPRegistration[graph.NodeTypeDotGeneral]
)

func init() {
	graph.VJPRegistration[graph.NodeTypeDotGeneral] = dotGeneralVJP
}

// dot is graph.DotGeneral with an efficient gradient.
func dot(lhs *graph.Node, lc, lb []int, rhs *graph.Node, rc, rb []int) *graph.Node {
	out := graph.DotGeneral(lhs, lc, lb, rhs, rc, rb)
	if out.Type() == graph.NodeTypeDotGeneral {
		dotRegistry.Store(out, dotAxes{lc: normAxes(lc, lhs.Rank()), lb: normAxes(lb, lhs.Rank()),
			rc: normAxes(rc, rhs.Rank()), rb: normAxes(rb, rhs.Rank())})
	}
	return out
}

func normAxes(axes []int, rank int) []int {
	out := make([]int, len(axes))
	for i, a := range axes {
		if a < 0 {
			a += rank
		}
		out[i] = a
	}
	return out
}

// freeAxes lists, in ascending order, the axes of a rank-r operand that are neither contracted nor batch.
func freeAxes(rank int, contracting, batch []int) []int {
	var out []int
	for a := 0; a < rank; a++ {
		if !slices.Contains(contracting, a) && !slices.Contains(batch, a) {
			out = append(out, a)
		}
	}
	return out
}

func axisRange(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

// pairedInOrder returns, for this operand's contracting axes sorted ascending (the order in which they
// appear as free axes of the gradient product), the paired contracting axes of the other operand.
func pairedInOrder(this, other []int) []int {
	sorted := slices.Clone(this)
	slices.Sort(sorted)
	out := make([]int, len(sorted))
	for i, a := range sorted {
		out[i] = other[slices.Index(this, a)]
	}
	return out
}

// moveAxes transposes x so that its axis k lands on axis src[k].
func moveAxes(x *graph.Node, src []int) *graph.Node {
	perm := make([]int, len(src))
	identity := true
	for k, a := range src {
		perm[a] = k
		if a != k {
			identity = false
		}
	}
	if identity {
		return x
	}
	return graph.TransposeAllDims(x, perm...)
}

func dotGeneralVJP(node *graph.Node, vjps []*graph.Node, outputShape shapes.Shape) []*graph.Node {
	p, ok := dotRegistry.Load(node)
	if !ok {
		return defaultDotVJP(node, vjps, outputShape)
	}
	v := vjps[0]
	ax := p.(dotAxes)
	lhs, rhs := node.Inputs()[0], node.Inputs()[1]
	lFree, rFree := freeAxes(lhs.Rank(), ax.lc, ax.lb), freeAxes(rhs.Rank(), ax.rc, ax.rb)
	nb := len(ax.lb)
	vBatch, vL, vR := axisRange(0, nb), axisRange(nb, len(lFree)), axisRange(nb+len(lFree), len(rFree))

	// dL/dlhs: contract v's rhs-free axes with rhs's free axes → [batch, lhs-free, rhs-contracting (asc)].
	gl := graph.DotGeneral(v, vR, vBatch, rhs, rFree, ax.rb)
	gl = moveAxes(gl, slices.Concat(ax.lb, lFree, pairedInOrder(ax.rc, ax.lc)))
	// dL/drhs: contract v's lhs-free axes with lhs's free axes → [batch, rhs-free, lhs-contracting (asc)].
	gr := graph.DotGeneral(v, vL, vBatch, lhs, lFree, ax.lb)
	gr = moveAxes(gr, slices.Concat(ax.rb, rFree, pairedInOrder(ax.lc, ax.rc)))
	return []*graph.Node{gl, gr}
}
