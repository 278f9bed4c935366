package cpu

import (
	"github.com/castvideo/castgo/backend/kernels"
	"github.com/castvideo/castgo/backend/plan"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// GEMM chains: a weight GEMM whose output only one later step reads, as the left operand of another weight
// GEMM (a transformer's MLP: fc1 with its GELU epilogue, then fc2 with the residual), runs in that step, with
// it, in blocks of rows, so that the hidden layer is held one block at a time (in the step's scratch) instead of
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

// gemmChains returns, for each step, the index of the GEMM step it runs chained with it (an earlier step
// whose output only this one reads, as its left operand), or -1.
func gemmChains(p *plan.Plan) []int {
	chained := make([]int, len(p.Steps))
	for i := range chained {
		chained[i] = -1
	}
	readers := map[int]int{} // storage root → number of step operands reading it
	readBy := map[int]int{}  // storage root → the last step reading it
	for j, st := range p.Steps {
		for _, in := range st.Ins {
			readers[p.Root[in.ID]]++
			readBy[p.Root[in.ID]] = j
		}
	}
	kept := map[int]bool{}
	for _, o := range p.Outputs {
		kept[p.Root[o.ID]] = true
	}
	first := make([]bool, len(p.Steps))
	for i, st1 := range p.Steps {
		g1, ok := st1.Kind.(*plan.Gemm)
		h := st1.Out.ID
		if !ok || chained[i] >= 0 || readers[h] != 1 || kept[h] || p.Root[h] != h || st1.Out.Shape.DType != dtypes.Float32 {
			continue
		}
		j := readBy[h]
		g2, ok := p.Steps[j].Kind.(*plan.Gemm)
		if !ok || j <= i || first[j] || chained[j] >= 0 || p.Root[g2.LHS.ID] != h || p.RootOff[g2.LHS.ID] != 0 ||
			g1.M != g2.M || g1.N != g2.K || chainRows(g1.N) <= 0 || g1.M <= chainRows(g1.N) {
			continue
		}
		first[i], chained[j] = true, i
	}
	return chained
}

// chainReleases returns the plan's releases with those of the operands of each chained first GEMM that
// would be released before the step that runs the chain moved to that step (it reads them there).
func chainReleases(p *plan.Plan, chained []int) [][]int {
	at := map[int]int{} // storage root → step after which it is released
	for i, rs := range p.ReleaseAfter {
		for _, r := range rs {
			at[r] = i
		}
	}
	for j, i := range chained {
		if i < 0 {
			continue
		}
		for _, in := range p.Steps[i].Ins {
			r := p.Root[in.ID]
			if s, ok := at[r]; ok && s >= i && s < j {
				at[r] = j
			}
		}
	}
	rel := make([][]int, len(p.ReleaseAfter))
	for _, rs := range p.ReleaseAfter { // in the plan's order, each root where it now goes
		for _, r := range rs {
			rel[at[r]] = append(rel[at[r]], r)
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

// lowerChain runs the GEMMs g1 (an earlier step) and g2 (step i, output out) in blocks of rows through the scratch
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
