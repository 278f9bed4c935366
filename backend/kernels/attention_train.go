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
// or p.
func SoftmaxGradRows(ds, p, dp []float32, rows, n, ld int) {
	for r := 0; r < rows; r++ {
		o := r * ld
		vsoftmaxGrad(ds[o:o+n], p[o:o+n], dp[o:o+n])
	}
}

// vsoftmaxGrad is the row kernel of SoftmaxGradRows (the architecture files replace it).
var vsoftmaxGrad = softmaxGradGeneric

func softmaxGradGeneric(ds, p, dp []float32) {
	p, dp = p[:len(ds)], dp[:len(ds)]
	var dot float64
	for i, v := range p {
		dot += float64(v) * float64(dp[i])
	}
	d := float32(dot)
	for i, v := range p {
		ds[i] = v * (dp[i] - d)
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
			softmaxRow(p[r*lk : (r+1)*lk])
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
