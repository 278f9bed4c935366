package kernels

import "sync"

// Training's attention kernels. The gradient graph of an attention needs its probabilities P (for dV and
// the softmax backward), so training cannot use the fused Attention; these two kernels compute, per
// (batch, head) and block of query rows, the probabilities straight from Q and K (the scores never
// materialised) and the scores' gradient straight from dO, V and P (dP never materialised).

// AttentionProbs computes P[b,h,i,j] = softmax_j(Scale·⟨Q[b,i,h,:], K[b,j,h,:]⟩) (Scale 0 means 0: uniform
// rows). Q and K are strided like Attention's operands; P is contiguous [Batch, Heads, Lq, Lk].
type AttentionProbs struct {
	Batch, Heads, Lq, Lk, HeadDim int
	Scale                         float32
	Q, K                          Strided
	P                             []float32
}

// AttentionScoresGrad computes the gradient of an attention's scores from the gradient of its output:
// dP[b,h,i,j] = ⟨dO[b,i,h,:], V[b,j,h,:]⟩ and DS = P ⊙ (dP − rowsum(dP ⊙ P)) (the softmax backward).
// dO and V are strided like Attention's operands; P and DS are contiguous [Batch, Heads, Lq, Lk]; DS may
// equal P.
type AttentionScoresGrad struct {
	Batch, Heads, Lq, Lk, HeadDim int
	DO, V                         Strided
	P, DS                         []float32
}

// SoftmaxGradRows sets ds = p ⊙ (dp − Σ dp⊙p) for each of the rows (n values each, row stride ld) of p and
// dp: the gradient of the softmax's input given p = softmax(x) and the gradient dp of p. ds may equal dp
// or p. Subnormal results are flushed to zero.
func SoftmaxGradRows(ds, p, dp []float32, rows, n, ld int) {
	for r := 0; r < rows; r++ {
		o := r * ld
		vsoftmaxGrad(ds[o:o+n], p[o:o+n], dp[o:o+n])
	}
}

// Subnormal results are flushed to zero: probabilities of far-off keys come out of exp at the bottom of the
// float32 range, and every later multiplication by a subnormal costs a microcode assist (on x86 about a
// hundred cycles: the backward of B-CAST's attention ran 4× slower on them). The change is below 1.2e-38
// absolute.
const tinyF32 = 0x1p-126 // the smallest normal float32

// vsoftmaxGrad is the row kernel of SoftmaxGradRows (the architecture files replace it).
var vsoftmaxGrad = softmaxGradGeneric

// vscaleFlush sets dst[i] = src[i]·s, or 0 where that is subnormal (the architecture files replace it).
var vscaleFlush = scaleFlushGeneric

func flush(v float32) float32 {
	if v < tinyF32 && v > -tinyF32 {
		return 0
	}
	return v
}

func scaleFlushGeneric(dst, src []float32, s float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] = flush(v * s)
	}
}

func softmaxGradGeneric(ds, p, dp []float32) {
	p, dp = p[:len(ds)], dp[:len(ds)]
	var dot float64
	for i, v := range p {
		dot += float64(v) * float64(dp[i])
	}
	d := float32(dot)
	for i, v := range p {
		ds[i] = flush(v * (dp[i] - d))
	}
}

type trainAttnScratch struct{ kp PackedB }

var trainAttnPool = sync.Pool{New: func() any { return new(trainAttnScratch) }}

// smallTrainAttn: problems whose (batch, head) units are this small (Lq·Lk·HeadDim multiply-adds) run as
// plain loops instead of packing for the GEMM.
const smallTrainAttn = 512

// rowBlocks runs f(b, h, i0, rows, packed) over blocks of query rows of every (batch, head) with the rows of
// x (strided, [Lk, HeadDim] per (b, h)) packed as the GEMM's transposed right-hand side, in parallel.
func rowBlocks(B, H, lq, lk, hd int, x Strided, f func(b, h, i0, rows int, xp *PackedB)) {
	mr := gemmMR
	br := max(mr, (16<<10)/max(lk, 1))
	br -= br % mr
	br = min(br, lq)
	work := func(lo, hi int) {
		st := trainAttnPool.Get().(*trainAttnScratch)
		defer trainAttnPool.Put(st)
		for u := lo; u < hi; u++ {
			b, h := u/H, u%H
			packB(&st.kp, x.at(b, 0, h), x.RowStride, hd, lk, true, gemmNR)
			for i0 := 0; i0 < lq; i0 += br {
				f(b, h, i0, min(br, lq-i0), &st.kp)
			}
		}
	}
	units := B * H
	if Threads() <= 1 || units*lq*lk*hd < serialFlops/2 {
		work(0, units)
		return
	}
	parallelRun(units, 1, work)
}

// dotRows sets out[i·lk+j] = Σ_d a(i)[d]·x(j)[d] for i < rows, j < lk: the plain loops of small problems.
func dotRows(out []float32, a, x Strided, b, h, i0, rows, lk, hd int) {
	for i := 0; i < rows; i++ {
		ai := a.at(b, i0+i, h)[:hd]
		for j := 0; j < lk; j++ {
			xj := x.at(b, j, h)[:hd]
			var s float32
			for d, v := range ai {
				s += v * xj[d]
			}
			out[i*lk+j] = s
		}
	}
}

// Run computes the probabilities.
func (a *AttentionProbs) Run() {
	B, H, lq, lk, hd := a.Batch, a.Heads, a.Lq, a.Lk, a.HeadDim
	if B <= 0 || H <= 0 || lq <= 0 || lk <= 0 {
		return
	}
	rows := func(b, h, i0, rows int) []float32 {
		o := ((b*H+h)*lq + i0) * lk
		return a.P[o : o+rows*lk]
	}
	finish := func(p []float32, n int) {
		if a.Scale == 0 || hd == 0 {
			clear(p)
		}
		for r := 0; r < n; r++ {
			row := p[r*lk : (r+1)*lk]
			softmaxRow(row)
			vscaleFlush(row, row, 1)
		}
	}
	if lq*lk*hd <= smallTrainAttn || hd == 0 {
		ParallelFor(B*H, max(1, 4096/(lq*lk*max(hd, 1))), func(lo, hi int) {
			for u := lo; u < hi; u++ {
				b, h := u/H, u%H
				p := rows(b, h, 0, lq)
				if hd > 0 {
					dotRows(p, a.Q, a.K, b, h, 0, lq, lk, hd)
					if a.Scale != 1 {
						for i := range p {
							p[i] *= a.Scale
						}
					}
				}
				finish(p, lq)
			}
		})
		return
	}
	ep := &Epilogue{Alpha: a.Scale}
	rowBlocks(B, H, lq, lk, hd, a.K, func(b, h, i0, n int, kp *PackedB) {
		p := rows(b, h, i0, n)
		gemm(n, a.Q.at(b, i0, h), a.Q.RowStride, kp, p, lk, ep, false)
		finish(p, n)
	})
}

// Run computes the scores' gradient.
func (a *AttentionScoresGrad) Run() {
	B, H, lq, lk, hd := a.Batch, a.Heads, a.Lq, a.Lk, a.HeadDim
	if B <= 0 || H <= 0 || lq <= 0 || lk <= 0 {
		return
	}
	// dP rows go to DS unless DS is P (then to a scratch)
	inPlace := len(a.DS) > 0 && len(a.P) > 0 && &a.DS[0] == &a.P[0]
	block := func(b, h, i0, n int, scratch []float32, fill func(out []float32)) {
		o := ((b*H+h)*lq + i0) * lk
		out := a.DS[o : o+n*lk]
		if inPlace {
			out = scratch[:n*lk]
		}
		if hd == 0 {
			clear(out)
		} else {
			fill(out)
		}
		SoftmaxGradRows(a.DS[o:o+n*lk], a.P[o:o+n*lk], out, n, lk, lk)
	}
	if lq*lk*hd <= smallTrainAttn || hd == 0 {
		ParallelFor(B*H, max(1, 4096/(lq*lk*max(hd, 1))), func(lo, hi int) {
			var scratch []float32
			if inPlace {
				scratch = make([]float32, lq*lk)
			}
			for u := lo; u < hi; u++ {
				b, h := u/H, u%H
				block(b, h, 0, lq, scratch, func(out []float32) { dotRows(out, a.DO, a.V, b, h, 0, lq, lk, hd) })
			}
		})
		return
	}
	rowBlocks(B, H, lq, lk, hd, a.V, func(b, h, i0, n int, vp *PackedB) {
		var scratch []float32
		if inPlace {
			s := getScratch(n * lk)
			defer putScratch(s)
			scratch = *s
		}
		block(b, h, i0, n, scratch, func(out []float32) {
			gemm(n, a.DO.at(b, i0, h), a.DO.RowStride, vp, out, lk, nil, false)
		})
	})
}

// Strided4 is a 4-D operand whose element (b, i, h, d) is at b·BatchStride + i·RowStride + h·HeadStride +
// d·DimStride (any layout: the backward's outputs are written element by element).
type Strided4 struct {
	Data                                          []float32
	BatchStride, RowStride, HeadStride, DimStride int
}

func (s Strided4) off(b, i, h int) int { return b*s.BatchStride + i*s.RowStride + h*s.HeadStride }

// AttentionBackward computes the gradients of an attention's operands from the gradient dO of its output
// and its probabilities P ([Batch, Heads, Lq, Lk] contiguous), per (batch, head):
//
//	dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), DQ = dS·K, DK = dSᵀ·Q, DV = Pᵀ·dO
//
// (Q and K as the scores use them, scale included). Neither dP nor dS is materialised beyond a block of
// query rows: each block's dS is used for DQ and, with P's block, accumulated into DK and DV while in cache.
// Q, K, V and DO are strided like Attention's operands; DQ ([Lq rows]), DK and DV ([Lk rows]) may have any
// layout.
type AttentionBackward struct {
	Batch, Heads, Lq, Lk, HeadDim int
	Q, K, V, DO                   Strided
	P                             []float32
	DQ, DK, DV                    Strided4
}

type bwdScratch struct {
	vp, kp, bp     PackedB
	ds, dq, at, gt []float32
}

var bwdPool = sync.Pool{New: func() any { return new(bwdScratch) }}

// Run computes DQ, DK and DV.
func (a *AttentionBackward) Run() {
	B, H, lq, lk, hd := a.Batch, a.Heads, a.Lq, a.Lk, a.HeadDim
	if B <= 0 || H <= 0 || hd <= 0 || lq < 0 || lk < 0 {
		return
	}
	if lq == 0 || lk == 0 {
		for b := 0; b < B; b++ {
			for h := 0; h < H; h++ {
				for i := 0; i < lq; i++ {
					a.DQ.set(b, i, h, make([]float32, hd))
				}
				for j := 0; j < lk; j++ {
					a.DK.set(b, j, h, make([]float32, hd))
					a.DV.set(b, j, h, make([]float32, hd))
				}
			}
		}
		return
	}
	small := lq*lk*hd <= smallTrainAttn
	direct := bwdDirectOn && hd <= bwdDirectHD
	work := func(lo, hi int) {
		st := bwdPool.Get().(*bwdScratch)
		defer bwdPool.Put(st)
		for u := lo; u < hi; u++ {
			switch {
			case small:
				a.unitSmall(st, u/H, u%H)
			case direct:
				a.unitDirect(st, u/H, u%H)
			default:
				a.unit(st, u/H, u%H)
			}
		}
	}
	units := B * H
	if Threads() <= 1 || units*lq*lk*hd < serialFlops/4 {
		work(0, units)
		return
	}
	parallelRun(units, max(1, 4096/(lq*lk*hd)), work)
}

// set writes the hd values of row i of (b, h).
func (s Strided4) set(b, i, h int, v []float32) {
	o := s.off(b, i, h)
	if s.DimStride == 1 {
		copy(s.Data[o:o+len(v)], v)
		return
	}
	for d, x := range v {
		s.Data[o+d*s.DimStride] = x
	}
}

// setT writes xt (hd rows of ld values, row d holding element d of rows 0…n-1) as rows 0…n-1 of (b, h).
func (s Strided4) setT(b, h int, xt []float32, ld, n, hd int) {
	if s.RowStride == 1 { // rows contiguous for each d: a copy per d
		o := s.off(b, 0, h)
		for d := 0; d < hd; d++ {
			copy(s.Data[o+d*s.DimStride:o+d*s.DimStride+n], xt[d*ld:d*ld+n])
		}
		return
	}
	for i := 0; i < n; i++ {
		o := s.off(b, i, h)
		for d := 0; d < hd; d++ {
			s.Data[o+d*s.DimStride] = xt[d*ld+i]
		}
	}
}

// unit computes (b, h) through the packed GEMM in blocks of query rows.
func (a *AttentionBackward) unit(st *bwdScratch, b, h int) {
	lq, lk, hd := a.Lq, a.Lk, a.HeadDim
	mr := gemmMR
	br := max(mr, (32<<10)/lk)
	br -= br % mr
	br = min(br, lq)
	packB(&st.vp, a.V.at(b, 0, h), a.V.RowStride, hd, lk, true, gemmNR)  // dP = dO·Vᵀ
	packB(&st.kp, a.K.at(b, 0, h), a.K.RowStride, lk, hd, false, gemmNR) // DQ = dS·K
	st.ds = grow(st.ds, br*lk)
	st.dq = grow(st.dq, br*hd)
	st.at = grow(st.at, hd*br)
	st.gt = grow(st.gt, 2*hd*lk) // DVᵀ, DKᵀ accumulated over the blocks
	clear(st.gt)
	dvt, dkt := st.gt[:hd*lk], st.gt[hd*lk:]
	acc := &Epilogue{Accumulate: true}
	pbase := (b*a.Heads + h) * lq * lk
	for i0 := 0; i0 < lq; i0 += br {
		n := min(br, lq-i0)
		ds, pb := st.ds[:n*lk], a.P[pbase+i0*lk:pbase+(i0+n)*lk]
		gemm(n, a.DO.at(b, i0, h), a.DO.RowStride, &st.vp, ds, lk, nil, false)
		SoftmaxGradRows(ds, pb, ds, n, lk, lk)
		gemm(n, ds, lk, &st.kp, st.dq, hd, nil, false)
		for i := 0; i < n; i++ {
			a.DQ.set(b, i0+i, h, st.dq[i*hd:(i+1)*hd])
		}
		// DVᵀ += dOᵀ·P and DKᵀ += Qᵀ·dS over this block's rows
		at := st.at[:hd*n]
		transposeRows(at, a.DO, b, i0, h, n, hd)
		packB(&st.bp, pb, lk, n, lk, false, gemmNR)
		gemm(hd, at, n, &st.bp, dvt, lk, acc, false)
		transposeRows(at, a.Q, b, i0, h, n, hd)
		packB(&st.bp, ds, lk, n, lk, false, gemmNR)
		gemm(hd, at, n, &st.bp, dkt, lk, acc, false)
	}
	a.DV.setT(b, h, dvt, lk, lk, hd)
	a.DK.setT(b, h, dkt, lk, lk, hd)
}

// transposeRows sets at[d·n+i] = x(b, i0+i, h)[d] for i < n, d < hd.
func transposeRows(at []float32, x Strided, b, i0, h, n, hd int) {
	for i := 0; i < n; i++ {
		row := x.at(b, i0+i, h)[:hd]
		for d, v := range row {
			at[d*n+i] = v
		}
	}
}

// unitSmall computes (b, h) with plain loops (tiny problems: B-CAST's 2×2 attentions).
func (a *AttentionBackward) unitSmall(st *bwdScratch, b, h int) {
	lq, lk, hd := a.Lq, a.Lk, a.HeadDim
	st.ds = grow(st.ds, lq*lk)
	st.gt = grow(st.gt, 3*max(lq, lk)*hd)
	ds := st.ds
	dotRows(ds, a.DO, a.V, b, h, 0, lq, lk, hd)
	p := a.P[(b*a.Heads+h)*lq*lk:][:lq*lk]
	SoftmaxGradRows(ds, p, ds, lq, lk, lk)
	g := st.gt[:hd]
	for i := 0; i < lq; i++ { // DQ[i] = Σ_j dS[i,j]·K[j]
		clear(g)
		for j := 0; j < lk; j++ {
			s, kj := ds[i*lk+j], a.K.at(b, j, h)[:hd]
			for d, v := range kj {
				g[d] += s * v
			}
		}
		a.DQ.set(b, i, h, g)
	}
	for j := 0; j < lk; j++ { // DK[j] = Σ_i dS[i,j]·Q[i], DV[j] = Σ_i P[i,j]·dO[i]
		gk, gv := st.gt[hd:2*hd], st.gt[2*hd:3*hd]
		clear(gk)
		clear(gv)
		for i := 0; i < lq; i++ {
			s, pij := ds[i*lk+j], p[i*lk+j]
			qi, oi := a.Q.at(b, i, h)[:hd], a.DO.at(b, i, h)[:hd]
			for d := range gk {
				gk[d] += s * qi[d]
				gv[d] += pij * oi[d]
			}
		}
		a.DK.set(b, j, h, gk)
		a.DV.set(b, j, h, gv)
	}
}

// Head dims up to bwdDirectHD take the direct path: per query row, every product vectorised over keys (K
// and V laid out transposed, hd rows of ⌈Lk/8⌉·8), no GEMM: a GEMM with K = hd or N = hd spends more on its
// tiles' stores and padding than on the multiply-adds. At hd = 8 the two cost the same (the direct path's
// stores of the DK and DV accumulators, one row at a time, are its bound); at hd = 4 the direct path takes
// 30% less CPU time (BenchmarkAttentionBackward).
var bwdDirectHD = 4

// bwdDirectOn switches the direct path (tests check both, with bwdDirectHD raised to 16).
var bwdDirectOn = true

// bwdRow does one query row of the direct backward: with prow the row of P and dsrow scratch (ldk values,
// zero past Lk), q, do and dq (hd values) the row of Q, dO and DQ, and vt, kt, dkt, dvt hd rows of ldk:
//
//	dsrow = P ⊙ (dP − Σ dP⊙P), dP[j] = Σ_d do[d]·vt[d][j];  dq[d] = Σ_j dsrow[j]·kt[d][j];
//	dkt[d] += q[d]·dsrow;  dvt[d] += do[d]·prow
var bwdRow = bwdRowGeneric

func bwdRowGeneric(dq, q, do, prow, dsrow, vt, kt, dkt, dvt []float32, hd, ldk int) {
	prow, dsrow = prow[:ldk], dsrow[:ldk]
	var dot float64
	for j := range dsrow {
		var s float32
		for d := 0; d < hd; d++ {
			s += do[d] * vt[d*ldk+j]
		}
		dsrow[j] = s
		dot += float64(s) * float64(prow[j])
	}
	vsoftmaxGradDot(dsrow, prow, dsrow, float32(dot))
	for d := 0; d < hd; d++ {
		k, dk, dv := kt[d*ldk:(d+1)*ldk], dkt[d*ldk:(d+1)*ldk], dvt[d*ldk:(d+1)*ldk]
		var s float32
		qd, od := q[d], do[d]
		for j, g := range dsrow {
			s += g * k[j]
			dk[j] += qd * g
			dv[j] += od * prow[j]
		}
		dq[d] = s
	}
}

// vsoftmaxGradDot sets ds = p ⊙ (dp − dot), subnormal results flushed.
var vsoftmaxGradDot = softmaxGradDotGeneric

func softmaxGradDotGeneric(ds, p, dp []float32, dot float32) {
	p, dp = p[:len(ds)], dp[:len(ds)]
	for i, v := range p {
		ds[i] = flush(v * (dp[i] - dot))
	}
}

// unitDirect computes (b, h) a query row at a time (see bwdRow).
func (a *AttentionBackward) unitDirect(st *bwdScratch, b, h int) {
	lq, lk, hd := a.Lq, a.Lk, a.HeadDim
	ldk := (lk + 7) &^ 7
	st.gt = grow(st.gt, 4*hd*ldk+2*ldk+3*hd)
	clear(st.gt)
	g := st.gt
	vt, kt, dkt, dvt := g[:hd*ldk], g[hd*ldk:2*hd*ldk], g[2*hd*ldk:3*hd*ldk], g[3*hd*ldk:4*hd*ldk]
	prow, dsrow := g[4*hd*ldk:4*hd*ldk+ldk], g[4*hd*ldk+ldk:4*hd*ldk+2*ldk]
	rowv := g[4*hd*ldk+2*ldk:]
	q, do, dq := rowv[:hd], rowv[hd:2*hd], rowv[2*hd:3*hd]
	for j := 0; j < lk; j++ {
		v, k := a.V.at(b, j, h)[:hd], a.K.at(b, j, h)[:hd]
		for d := 0; d < hd; d++ {
			vt[d*ldk+j] = v[d]
			kt[d*ldk+j] = k[d]
		}
	}
	pbase := (b*a.Heads + h) * lq * lk
	for i := 0; i < lq; i++ {
		copy(prow, a.P[pbase+i*lk:pbase+(i+1)*lk])
		copy(q, a.Q.at(b, i, h)[:hd])
		copy(do, a.DO.at(b, i, h)[:hd])
		bwdRow(dq, q, do, prow, dsrow, vt, kt, dkt, dvt, hd, ldk)
		a.DQ.set(b, i, h, dq)
	}
	a.DV.setT(b, h, dvt, ldk, lk, hd)
	a.DK.setT(b, h, dkt, ldk, lk, hd)
}
