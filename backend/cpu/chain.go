package cpu

import (
	"slices"

	"github.com/castvideo/castgo/backend/kernels"
	"github.com/castvideo/castgo/backend/plan"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// GEMM chains: a weight GEMM whose output only the next step reads, as the left operand of another weight
// GEMM (a transformer's MLP: fc1 with its GELU epilogue, then fc2 with the residual), runs with the next one
// in blocks of rows, so that the hidden layer is held one block at a time (in the step's scratch) instead of
// whole: for CAST-base, 336 × 3072 floats (4 MiB) instead of 1576 × 3072 (18.5 MiB) per view. Each output
// row's arithmetic is unchanged (the GEMMs quantize and accumulate per row), so the results are the same
// bits; the block is a multiple of every micro-kernel's row count.

// chainBlockValues bounds a chain's block of hidden values (4 MiB of float32).
const chainBlockValues = 1 << 20

// chainRowMultiple is the granularity of a block's rows: a multiple of the micro-kernels' row counts.
const chainRowMultiple = 48

// chainRows returns the rows of a chain's block for a hidden layer of n values per row (0: chains off).
var chainRows = func(n int) int {
	r := chainBlockValues / max(n, 1)
	return max(chainRowMultiple, r-r%chainRowMultiple)
}

// gemmChains returns, for each step, the index of the GEMM step it runs chained with it (the step before
// it), or -1.
func gemmChains(p *plan.Plan) []int {
	chained := make([]int, len(p.Steps))
	for i := range chained {
		chained[i] = -1
	}
	readers := map[int]int{} // storage root → number of step operands reading it
	for _, st := range p.Steps {
		for _, in := range st.Ins {
			readers[p.Root[in.ID]]++
		}
	}
	kept := map[int]bool{}
	for _, o := range p.Outputs {
		kept[p.Root[o.ID]] = true
	}
	for i := 0; i+1 < len(p.Steps); i++ {
		st1, st2 := p.Steps[i], p.Steps[i+1]
		g1, ok1 := st1.Kind.(*plan.Gemm)
		g2, ok2 := st2.Kind.(*plan.Gemm)
		if !ok1 || !ok2 || chained[i] >= 0 {
			continue
		}
		h := st1.Out.ID
		if st1.Out.Shape.DType != dtypes.Float32 || p.Root[h] != h || kept[h] || readers[h] != 1 ||
			p.Root[g2.LHS.ID] != h || p.RootOff[g2.LHS.ID] != 0 || g1.M != g2.M || g1.N != g2.K ||
			chainRows(g1.N) <= 0 || g1.M <= chainRows(g1.N) {
			continue
		}
		chained[i+1] = i
	}
	return chained
}

// chainReleases returns the plan's releases with those after each chained first GEMM moved to the step
// that runs the chain (the first GEMM's operands are read there).
func chainReleases(p *plan.Plan, chained []int) [][]int {
	rel := make([][]int, len(p.ReleaseAfter))
	for i, rs := range p.ReleaseAfter {
		rel[i] = slices.Clone(rs)
	}
	for j, i := range chained {
		if i >= 0 {
			rel[j] = append(rel[i], rel[j]...)
			rel[i] = nil
		}
	}
	return rel
}

// gemmOperands are the operands of one weight GEMM, read from an execution.
type gemmOperands struct {
	pk  *kernels.PackedB
	lhs []float32
	ep  kernels.Epilogue
}

// gemmOf reads g's operands in e: its packed weight (packing it on first use) and epilogue; not the left
// operand (a chain's second GEMM reads the first one's block instead).
func gemmOf(e *env, g *plan.Gemm, release bool) gemmOperands {
	var scaleBuf *Buffer
	if g.Scale != nil {
		scaleBuf = e.inputs[g.Scale.Param]
	}
	o := gemmOperands{pk: e.ex.packs.packed(e.inputs[g.W.Param], scaleBuf, g.Transposed, g.K, g.N, release)}
	o.ep = kernels.Epilogue{Act: activations[g.Act], PostScale: g.PostScale}
	if g.Bias != nil {
		o.ep.Bias = e.f32(g.Bias)[g.BiasOff : g.BiasOff+g.N]
	}
	if g.Residual != nil {
		o.ep.Residual, o.ep.LdRes = e.f32(g.Residual), g.N
	}
	return o
}

// rows returns the operands of rows [lo, hi): the left operand's and the residual's rows.
func (o gemmOperands) rows(lo, hi, k, n int) gemmOperands {
	r := o
	if o.lhs != nil {
		r.lhs = o.lhs[lo*k : hi*k]
	}
	if o.ep.Residual != nil {
		r.ep.Residual = o.ep.Residual[lo*n : hi*n]
	}
	return r
}

// lowerChain runs the GEMMs g1 (step i-1) and g2 (step i, output out) in blocks of rows through the scratch
// of step i.
func lowerChain(i int, g1, g2 *plan.Gemm, out *plan.Node, release1, release2 bool) stepFunc {
	m, k1, n1, n2 := g1.M, g1.K, g1.N, g2.N
	rows := chainRows(n1)
	return func(e *env) any {
		a, b := gemmOf(e, g1, release1), gemmOf(e, g2, release2)
		a.lhs = e.f32(g1.LHS)
		dst := e.allocF32(out)
		hidden := e.scratch(i, rows*n1)
		for lo := 0; lo < m; lo += rows {
			hi := min(m, lo+rows)
			ar, br := a.rows(lo, hi, k1, n1), b.rows(lo, hi, n1, n2)
			kernels.Gemm(hi-lo, ar.lhs, k1, a.pk, hidden, n1, &ar.ep)
			kernels.Gemm(hi-lo, hidden, n1, b.pk, dst[lo*n2:hi*n2], n2, &br.ep)
		}
		return dst
	}
}
