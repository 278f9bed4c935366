package cpu

import (
	"fmt"
	"math"
	"slices"

	"github.com/castvideo/castgo/backend/kernels"
	"github.com/castvideo/castgo/backend/plan"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/pkg/errors"
)

// The generic implementations of the ops that training needs beyond inference: the gradient graph of
// cast.Forward (ScatterSum is Gather's gradient, Pad is Slice's), the optimizer and the metrics (ArgMinMax),
// plus a few small elementwise ones. ScatterSum of the arithmetic-progression indices that cast's slicing
// builds gets a strided-add fast path; reductions and DotGeneral get parallel fast paths.

// trainEvals holds the generic implementation of each training op (see Eval).
var trainEvals = map[backends.OpType]func(n *plan.Node, ins []any) (any, error){}

func init() {
	trainEvals[backends.OpTypeScatterSum] = evalScatterSum
	trainEvals[backends.OpTypePad] = evalPad
	trainEvals[backends.OpTypeArgMinMax] = evalArgMinMax
	trainEvals[backends.OpTypeReverse] = evalReverse
	trainEvals[backends.OpTypeIsFinite] = evalIsFinite
	trainEvals[backends.OpTypeIsNaN] = evalIsFinite
	trainEvals[backends.OpTypeLogicalXor] = evalLogicalXor
}

func evalScatterSum(n *plan.Node, ins []any) (any, error) {
	out := makeFlat(n.Shape.DType, n.Shape.Size())
	stridedCopyAny(out, ins[0], []int{n.Shape.Size()}, []int{1}, 0)
	switch d := out.(type) {
	case []float32:
		scatterAdd(n, d, ins[2].([]float32), plan.ToInts(ins[1]))
	case []float64:
		scatterAdd(n, d, ins[2].([]float64), plan.ToInts(ins[1]))
	case []int32:
		scatterAdd(n, d, ins[2].([]int32), plan.ToInts(ins[1]))
	case []int64:
		scatterAdd(n, d, ins[2].([]int64), plan.ToInts(ins[1]))
	case []int8:
		scatterAdd(n, d, ins[2].([]int8), plan.ToInts(ins[1]))
	case []uint8:
		scatterAdd(n, d, ins[2].([]uint8), plan.ToInts(ins[1]))
	default:
		return nil, errors.Errorf("castgo backend: ScatterSum of %T", out)
	}
	return out, nil
}

// scatterAdd does out[operand position] += updates[u] for every update element u.
func scatterAdd[T number](n *plan.Node, out, upd []T, idx []int) {
	p := n.Scatter
	od := n.Inputs[0].Shape.Dimensions
	id := n.Inputs[1].Shape.Dimensions
	ud := n.Inputs[2].Shape.Dimensions
	ostr, istr, ustr := plan.RowMajorStrides(od), plan.RowMajorStrides(id), plan.RowMajorStrides(ud)
	// operand axes receiving the window axes of the updates, in order
	var owa []int
	for a := range od {
		if !slices.Contains(p.InsertedWindowAxes, a) {
			owa = append(owa, a)
		}
	}
	var batchAxes []int
	for a := range ud {
		if !slices.Contains(p.UpdateWindowAxes, a) {
			batchAxes = append(batchAxes, a)
		}
	}
	// indices axis of each batch axis (the index vector axis skipped)
	idxAxis := make([]int, len(batchAxes))
	for i := range batchAxes {
		idxAxis[i] = i
		if i >= p.IndexVectorAxis {
			idxAxis[i] = i + 1
		}
	}
	nIdx := 1
	ivStride := 0
	if p.IndexVectorAxis < len(id) {
		nIdx, ivStride = id[p.IndexVectorAxis], istr[p.IndexVectorAxis]
	}
	W := p.UpdateWindowAxes
	wdims := make([]int, len(W))
	wu := make([]int, len(W)) // update strides of the window axes
	wo := make([]int, len(W)) // operand strides of the window axes
	wlim := make([]int, len(W))
	for j, a := range W {
		wdims[j], wu[j], wo[j] = ud[a], ustr[a], ostr[owa[j]]
	}
	start := make([]int, len(od))
	bi := make([]int, len(batchAxes))
	nb := 1
	for _, a := range batchAxes {
		nb *= ud[a]
	}
	wi := make([]int, len(W))
	for b := 0; b < nb; b++ {
		// position in indices and updates of this batch element
		ipos, ubase := 0, 0
		for i, a := range batchAxes {
			ipos += bi[i] * istr[idxAxis[i]]
			ubase += bi[i] * ustr[a]
		}
		clear(start)
		obase := 0
		for k := 0; k < nIdx; k++ {
			a := p.ScatterAxesToOperand[k]
			start[a] = idx[ipos+k*ivStride]
			obase += start[a] * ostr[a]
		}
		// limits of the window indices that stay inside the operand
		ok := true
		for j := range W {
			a := owa[j]
			lo := max(0, -start[a])
			wlim[j] = min(wdims[j], od[a]-start[a])
			if lo > 0 || wlim[j] <= 0 {
				ok = false // a window starting below 0 or empty: rare (never in cast's graphs); take the slow path
			}
		}
		for _, a := range p.InsertedWindowAxes {
			if start[a] < 0 || start[a] >= od[a] {
				ok = false
			}
		}
		if ok {
			addWindow(out, upd, obase, ubase, wlim, wo, wu, wdims, wi)
		} else {
			slowWindow(out, upd, start, owa, od, ostr, ubase, wdims, wu, wi)
		}
		for i := len(batchAxes) - 1; i >= 0; i-- {
			bi[i]++
			if bi[i] < ud[batchAxes[i]] {
				break
			}
			bi[i] = 0
		}
	}
}

// addWindow adds the update window (dims lim, update strides wu) at operand offset obase (strides wo).
func addWindow[T number](out, upd []T, obase, ubase int, lim, wo, wu, wdims, wi []int) {
	r := len(lim)
	if r == 0 {
		out[obase] += upd[ubase]
		return
	}
	for _, l := range lim {
		if l <= 0 {
			return
		}
	}
	clear(wi)
	last, lo, lu := lim[r-1], wo[r-1], wu[r-1]
	o, u := obase, ubase
	for {
		if lo == 1 && lu == 1 {
			dst, src := out[o:o+last], upd[u:u+last]
			for j := range dst {
				dst[j] += src[j]
			}
		} else {
			po, pu := o, u
			for j := 0; j < last; j++ {
				out[po] += upd[pu]
				po += lo
				pu += lu
			}
		}
		a := r - 2
		for ; a >= 0; a-- {
			wi[a]++
			o += wo[a]
			u += wu[a]
			if wi[a] < lim[a] {
				break
			}
			o -= wo[a] * lim[a]
			u -= wu[a] * lim[a]
			wi[a] = 0
		}
		if a < 0 {
			return
		}
	}
}

// slowWindow adds the window element by element, skipping positions outside the operand.
func slowWindow[T number](out, upd []T, start, owa, od, ostr []int, ubase int, wdims, wu, wi []int) {
	for a := range od {
		if !slices.Contains(owa, a) && (start[a] < 0 || start[a] >= od[a]) {
			return
		}
	}
	total := 1
	for _, d := range wdims {
		total *= d
	}
	clear(wi)
	for e := 0; e < total; e++ {
		o, u, in := 0, ubase, true
		for a := range od {
			if !slices.Contains(owa, a) {
				o += start[a] * ostr[a]
			}
		}
		for j, a := range owa {
			pos := start[a] + wi[j]
			if pos < 0 || pos >= od[a] {
				in = false
			}
			o += pos * ostr[a]
			u += wi[j] * wu[j]
		}
		if in {
			out[o] += upd[u]
		}
		for j := len(wi) - 1; j >= 0; j-- {
			wi[j]++
			if wi[j] < wdims[j] {
				break
			}
			wi[j] = 0
		}
	}
}

func evalPad(n *plan.Node, ins []any) (any, error) {
	switch x := ins[0].(type) {
	case []float32:
		return padT(n, x, ins[1].([]float32)[0]), nil
	case []float64:
		return padT(n, x, ins[1].([]float64)[0]), nil
	case []int32:
		return padT(n, x, ins[1].([]int32)[0]), nil
	case []int64:
		return padT(n, x, ins[1].([]int64)[0]), nil
	case []int8:
		return padT(n, x, ins[1].([]int8)[0]), nil
	case []uint8:
		return padT(n, x, ins[1].([]uint8)[0]), nil
	case []bool:
		return padT(n, x, ins[1].([]bool)[0]), nil
	}
	return nil, errors.Errorf("castgo backend: Pad of %T", ins[0])
}

func padT[T any](n *plan.Node, x []T, fill T) []T {
	p := n.Pad
	in, outD := n.Inputs[0].Shape.Dimensions, n.Shape.Dimensions
	out := make([]T, n.Shape.Size())
	var zero T
	if any(fill) != any(zero) {
		for i := range out {
			out[i] = fill
		}
	}
	if len(x) == 0 {
		return out
	}
	ostr := plan.RowMajorStrides(outD)
	r := len(in)
	if r == 0 {
		out[0] = x[0]
		return out
	}
	idx := make([]int, r)
	for _, v := range x {
		o, ok := 0, true
		for a := 0; a < r; a++ {
			pos := p.Axes[a].Start + idx[a]*(p.Axes[a].Interior+1)
			if pos < 0 || pos >= outD[a] {
				ok = false
				break
			}
			o += pos * ostr[a]
		}
		if ok {
			out[o] = v
		}
		for a := r - 1; a >= 0; a-- {
			idx[a]++
			if idx[a] < in[a] {
				break
			}
			idx[a] = 0
		}
	}
	return out
}

func evalArgMinMax(n *plan.Node, ins []any) (any, error) {
	p := n.ArgMinMax
	dims := n.Inputs[0].Shape.Dimensions
	outer, inner := 1, 1
	for _, d := range dims[:p.Axis] {
		outer *= d
	}
	for _, d := range dims[p.Axis+1:] {
		inner *= d
	}
	x := toFloat64s(ins[0])
	res := make([]int, n.Shape.Size())
	k := dims[p.Axis]
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			best, bi := x[o*k*inner+i], 0
			for j := 1; j < k; j++ {
				v := x[(o*k+j)*inner+i]
				if math.IsNaN(best) {
					break
				}
				if math.IsNaN(v) || (p.IsMin && v < best) || (!p.IsMin && v > best) {
					best, bi = v, j
				}
			}
			res[o*inner+i] = bi
		}
	}
	out := makeFlat(n.Shape.DType, len(res))
	if err := convertAny2(out, res); err != nil {
		return nil, err
	}
	return out, nil
}

func toFloat64s(x any) []float64 {
	switch v := x.(type) {
	case []float64:
		return v
	case []float32:
		d := make([]float64, len(v))
		convertT(d, v)
		return d
	case []int32:
		d := make([]float64, len(v))
		convertT(d, v)
		return d
	case []int64:
		d := make([]float64, len(v))
		convertT(d, v)
		return d
	case []int8:
		d := make([]float64, len(v))
		convertT(d, v)
		return d
	case []uint8:
		d := make([]float64, len(v))
		convertT(d, v)
		return d
	}
	panic(fmt.Sprintf("castgo backend: %T is not numeric", x))
}

func convertAny2(dst any, src0 []int) error {
	src := make([]int64, len(src0))
	for i, v := range src0 {
		src[i] = int64(v)
	}
	switch d := dst.(type) {
	case []int32:
		convertT(d, src)
	case []int64:
		convertT(d, src)
	case []int8:
		convertT(d, src)
	case []uint8:
		convertT(d, src)
	case []float32:
		convertT(d, src)
	case []float64:
		convertT(d, src)
	default:
		return errors.Errorf("castgo backend: output %T", dst)
	}
	return nil
}

func evalReverse(n *plan.Node, ins []any) (any, error) {
	dims := n.Shape.Dimensions
	st := plan.RowMajorStrides(dims)
	off := 0
	strides := slices.Clone(st)
	for _, a := range n.Axes {
		off += (dims[a] - 1) * st[a]
		strides[a] = -st[a]
	}
	out := makeFlat(n.Shape.DType, n.Shape.Size())
	stridedCopyAny(out, ins[0], dims, strides, off)
	return out, nil
}

func evalIsFinite(n *plan.Node, ins []any) (any, error) {
	x := toFloat64s(ins[0])
	out := make([]bool, len(x))
	for i, v := range x {
		if n.Op == backends.OpTypeIsNaN {
			out[i] = math.IsNaN(v)
		} else {
			out[i] = !math.IsNaN(v) && !math.IsInf(v, 0)
		}
	}
	return out, nil
}

func evalLogicalXor(n *plan.Node, ins []any) (any, error) {
	out := n.Shape.Dimensions
	a := materializeBroadcast(ins[0], n.Inputs[0].Shape.Dimensions, out, dtypes.Bool).([]bool)
	c := materializeBroadcast(ins[1], n.Inputs[1].Shape.Dimensions, out, dtypes.Bool).([]bool)
	d := make([]bool, shapes.Make(dtypes.Bool, out...).Size())
	for i := range d {
		d[i] = a[i] != c[i]
	}
	return d, nil
}

// fastReduce reduces float32 x when, after merging neighbouring axes, the input is [outer, reduced, inner]
// (the shapes of every reduction in CAST's forward and backward graphs: softmax and layer-norm rows, bias
// gradients over batch and tokens), in parallel over outer (or over inner when outer is 1).
func fastReduce(n *plan.Node, x any) (any, bool) {
	xs, ok := x.([]float32)
	if !ok || len(xs) == 0 {
		return nil, false
	}
	op := n.Op
	if op != backends.OpTypeReduceSum && op != backends.OpTypeReduceMax && op != backends.OpTypeReduceMin {
		return nil, false
	}
	dims := n.Inputs[0].Shape.Dimensions
	outer, red, inner := 1, 1, 1
	phase := 0 // 0: leading kept axes, 1: reduced axes, 2: trailing kept axes
	for a, d := range dims {
		r := slices.Contains(n.Axes, a)
		if d == 1 {
			continue
		}
		switch {
		case phase == 0 && !r:
			outer *= d
		case phase <= 1 && r:
			phase = 1
			red *= d
		case phase >= 1 && !r:
			phase = 2
			inner *= d
		default:
			return nil, false
		}
	}
	out := make([]float32, outer*inner)
	combine := func(dst, src []float32) {
		switch op {
		case backends.OpTypeReduceSum:
			kernels.Add(dst, dst, src)
		case backends.OpTypeReduceMax:
			for i, v := range src {
				if v > dst[i] {
					dst[i] = v
				}
			}
		default:
			for i, v := range src {
				if v < dst[i] {
					dst[i] = v
				}
			}
		}
	}
	if inner == 1 {
		kernels.ParallelFor(outer, max(1, 4096/red), func(lo, hi int) {
			for o := lo; o < hi; o++ {
				row := xs[o*red : (o+1)*red]
				switch op {
				case backends.OpTypeReduceSum:
					out[o] = kernels.Sum(row)
				case backends.OpTypeReduceMax:
					m := row[0]
					for _, v := range row[1:] {
						if v > m {
							m = v
						}
					}
					out[o] = m
				default:
					m := row[0]
					for _, v := range row[1:] {
						if v < m {
							m = v
						}
					}
					out[o] = m
				}
			}
		})
		return out, true
	}
	if outer > 1 {
		kernels.ParallelFor(outer, 1, func(lo, hi int) {
			for o := lo; o < hi; o++ {
				dst := out[o*inner : (o+1)*inner]
				base := o * red * inner
				copy(dst, xs[base:base+inner])
				for r := 1; r < red; r++ {
					combine(dst, xs[base+r*inner:base+(r+1)*inner])
				}
			}
		})
		return out, true
	}
	// [red, inner]: split inner across goroutines
	kernels.ParallelFor(inner, 256, func(lo, hi int) {
		dst := out[lo:hi]
		copy(dst, xs[lo:hi])
		for r := 1; r < red; r++ {
			combine(dst, xs[r*inner+lo:r*inner+hi])
		}
	})
	return out, true
}

// dotNoTranspose computes a DotGeneral as batched Gemms choosing, from the operands' layouts, between
// C = L·R and Cᵀ = Rᵀ·Lᵀ so that no large operand is transposed: the right-hand operand is packed straight
// from either of its layouts, and the output of the swapped form (small in training's dots: the
// gradients of attention's P·V and of weights) is transposed instead. Batches run in parallel.
func dotNoTranspose(n *plan.Node, l, r []float32) []float32 {
	return dotInto(n, l, r, nil, func(size int) []float32 { return make([]float32, size) }, func(any) {})
}

// dotInto is dotNoTranspose writing into out (allocated when nil), with its temporaries from alloc (each
// handed to release once used).
func dotInto(n *plan.Node, l, r, out []float32, alloc func(int) []float32, release func(any)) []float32 {
	p := n.Dot
	ls, rs := n.Inputs[0].Shape.Dimensions, n.Inputs[1].Shape.Dimensions
	lf, rf := plan.FreeAxes(len(ls), p.LhsContract, p.LhsBatch), plan.FreeAxes(len(rs), p.RhsContract, p.RhsBatch)
	prod := func(dims []int, axes []int) int {
		s := 1
		for _, a := range axes {
			s *= dims[a]
		}
		return s
	}
	cat := func(a ...[]int) []int { return slices.Concat(a...) }
	ident := func(perm []int) bool {
		for i, v := range perm {
			if v != i {
				return false
			}
		}
		return true
	}
	B, M, K, N := prod(ls, p.LhsBatch), prod(ls, lf), prod(ls, p.LhsContract), prod(rs, rf)
	lMK, lKM := ident(cat(p.LhsBatch, lf, p.LhsContract)), ident(cat(p.LhsBatch, p.LhsContract, lf))
	rKN, rNK := ident(cat(p.RhsBatch, p.RhsContract, rf)), ident(cat(p.RhsBatch, rf, p.RhsContract))
	cost := func(free bool, size int) int {
		if free {
			return 0
		}
		return size
	}
	costA := cost(lMK, B*M*K) + cost(rKN || rNK, B*K*N)
	costB := cost(rNK, B*N*K) + cost(lKM || lMK, B*M*K) + B*M*N
	swap := costB < costA
	// Gemm operands: a is [B, rows, K] row-major; bm is [B, K, cols] (or [B, cols, K] when bT)
	var a, bm []float32
	var rows, cols int
	var bT bool
	if !swap {
		rows, cols = M, N
		a = l
		if !lMK {
			a = transposeInto(alloc(len(l)), l, ls, cat(p.LhsBatch, lf, p.LhsContract))
			defer release(a)
		}
		switch {
		case rKN:
			bm = r
		case rNK:
			bm, bT = r, true
		default:
			bm = transposeInto(alloc(len(r)), r, rs, cat(p.RhsBatch, p.RhsContract, rf))
			defer release(bm)
		}
	} else {
		rows, cols = N, M
		a = r
		if !rNK {
			a = transposeInto(alloc(len(r)), r, rs, cat(p.RhsBatch, rf, p.RhsContract))
			defer release(a)
		}
		switch {
		case lKM:
			bm = l
		case lMK:
			bm, bT = l, true
		default:
			bm = transposeInto(alloc(len(l)), l, ls, cat(p.LhsBatch, p.LhsContract, lf))
			defer release(bm)
		}
	}
	if out == nil {
		out = alloc(B * M * N)
	}
	res := out
	if swap {
		res = alloc(B * M * N)
		defer release(res)
	}
	if rows*cols*K <= smallDot {
		smallDots(B, rows, K, cols, a, bm, bT, res)
	} else {
		kernels.ParallelFor(B, max(1, (1<<16)/max(1, rows*cols*K)), func(lo, hi int) {
			var pk *kernels.PackedB
			for b := lo; b < hi; b++ {
				if !bT && rows <= stridedRows {
					kernels.GemmStrided(rows, a[b*rows*K:], K, bm[b*K*cols:], cols, K, cols, res[b*rows*cols:], cols)
					continue
				}
				if bT {
					pk = kernels.PackB(pk, bm[b*K*cols:], K, K, cols, true)
				} else {
					pk = kernels.PackB(pk, bm[b*K*cols:], cols, K, cols, false)
				}
				kernels.Gemm(rows, a[b*rows*K:], K, pk, res[b*rows*cols:], cols, nil)
			}
		})
	}
	if swap {
		transposeInto(out, res, []int{B, N, M}, []int{0, 2, 1})
	}
	return out
}

// stridedRows: products with at most this many rows read a row-major right-hand side in place
// (kernels.GemmStrided) instead of packing it: each panel is read by few row tiles (training's weight
// gradients, [D, tokens]·[tokens, D']), so packing was most of their cost.
const stridedRows = 256

// smallDot: batched products of at most this many multiply-adds per batch run as plain loops (packing for
// the GEMM costs more than the product).
const smallDot = 64

// smallDots sets c[b] = a[b]·bm[b] for B products of a [rows, K] by bm [K, cols] (or [cols, K] when bT).
func smallDots(B, rows, K, cols int, a, bm []float32, bT bool, c []float32) {
	kernels.ParallelFor(B, 256, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			ab, bb, cb := a[b*rows*K:(b+1)*rows*K], bm[b*K*cols:(b+1)*K*cols], c[b*rows*cols:(b+1)*rows*cols]
			for i := 0; i < rows; i++ {
				ai := ab[i*K : (i+1)*K]
				for j := 0; j < cols; j++ {
					var s float32
					if bT {
						bj := bb[j*K : (j+1)*K]
						for k, v := range ai {
							s += v * bj[k]
						}
					} else {
						for k, v := range ai {
							s += v * bb[k*cols+j]
						}
					}
					cb[i*cols+j] = s
				}
			}
		}
	})
}

// transposeInto writes the float32 x of dims transposed by perm into dst and returns dst.
func transposeInto(dst, x []float32, dims, perm []int) []float32 {
	st := plan.RowMajorStrides(dims)
	od := make([]int, len(dims))
	os := make([]int, len(dims))
	for i, p := range perm {
		od[i], os[i] = dims[p], st[p]
	}
	if len(dst) >= 1<<15 && len(od) > 1 && od[0] > 1 {
		inner := len(dst) / od[0]
		kernels.ParallelFor(od[0], max(1, (1<<14)/max(inner, 1)), func(lo, hi int) {
			sub := append([]int{hi - lo}, od[1:]...)
			stridedCopy(dst[lo*inner:hi*inner], x, sub, os, lo*os[0])
		})
		return dst
	}
	stridedCopy(dst, x, od, os, 0)
	return dst
}
