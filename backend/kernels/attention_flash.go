package kernels

import (
	"math"
	"sync"
)

// Flash-style attention for long sequences (FlashAttention's blocking on the CPU): per (batch, head) K is
// packed once (as Bᵀ, panels of keys) and V once per block of flashBk keys; then for each block of flashBr
// query rows, key block by key block,
//
//	S     = Scale·Q_blk·K_blkᵀ                       (GEMM, flashBr × flashBk, stays in L1/L2)
//	m'    = max(m, rowmax S);  c = exp(m − m')        (online softmax: running max m and sum l per row)
//	P     = exp(S − m');  l = c·l + rowsum P
//	O     = c·O + P·V_blk                             (GEMM with Accumulate into a flashBr × hd block)
//
// and Out = O / l at the end. No score row longer than flashBk exists, so the working set is independent of
// Lk. Every step runs on the tier's kernels (GEMM micro-kernel, exp-sum, scale), so it is SIMD wherever they are.

var (
	flashBr = 64  // query rows per block (a multiple of every tier's gemmMR)
	flashBk = 256 // keys per block (a multiple of every tier's gemmNR)
)

// flashOn switches the flash path; flashMinLk is the fewest keys that take it (benchmarks compare). Measured
// on the VideoMAE (1568²) and CLIP (197²) shapes the two paths run at the same rate within noise (both are
// bound by the GEMM micro-kernel at K = hd; see README), so the shorter rows keep the GEMM path and long ones
// take the flash path, whose working set does not grow with Lk.
var (
	flashOn    = true
	flashMinLk = 1024
)

type flashScratch struct {
	kp     PackedB
	vp     []PackedB // one per key block
	s, o   []float32 // flashBr×flashBk scores, flashBr×hd output block
	m, l   []float64
	packed int // (b·H + h) + 1 of the packed K and V, 0 for none
}

var flashPool = sync.Pool{New: func() any { return new(flashScratch) }}

// useFlash says whether Run takes the flash path.
func (a *Attention) useFlash() bool {
	return flashOn && a.Probs == nil && a.Scale != 0 && a.Lk >= flashMinLk
}

func (a *Attention) runFlash() {
	B, H, lq, lk, hd := a.Batch, a.Heads, a.Lq, a.Lk, a.HeadDim
	nq := (lq + flashBr - 1) / flashBr
	nk := (lk + flashBk - 1) / flashBk
	// Groups of query blocks per (batch, head): one unless there are too few (batch, head) pairs for the threads.
	t := Threads()
	groups := 1
	if B*H < 4*t && nq > 1 {
		groups = min(nq, (4*t+B*H-1)/(B*H))
	}
	bpg := (nq + groups - 1) / groups
	groups = (nq + bpg - 1) / bpg
	ep := &Epilogue{Alpha: a.Scale}
	acc := &Epilogue{Accumulate: true}
	work := func(lo, hi int) {
		st := flashPool.Get().(*flashScratch)
		defer flashPool.Put(st)
		if cap(st.s) < flashBr*flashBk {
			st.s = make([]float32, flashBr*flashBk)
		}
		if cap(st.o) < flashBr*hd {
			st.o = make([]float32, flashBr*hd)
		}
		if cap(st.m) < flashBr {
			st.m, st.l = make([]float64, flashBr), make([]float64, flashBr)
		}
		for len(st.vp) < nk {
			st.vp = append(st.vp, PackedB{})
		}
		st.packed = 0
		s, o := st.s[:flashBr*flashBk], st.o[:flashBr*hd]
		m, l := st.m[:flashBr], st.l[:flashBr]
		for u := lo; u < hi; u++ {
			bh, g := u/groups, u%groups
			b, h := bh/H, bh%H
			if st.packed != bh+1 {
				packB(&st.kp, a.K.at(b, 0, h), a.K.RowStride, hd, lk, true, gemmNR)
				for kb := 0; kb < nk; kb++ {
					j0 := kb * flashBk
					packB(&st.vp[kb], a.V.at(b, j0, h), a.V.RowStride, min(flashBk, lk-j0), hd, false, gemmNR)
				}
				st.packed = bh + 1
			}
			nr := st.kp.nr
			for qb := g * bpg; qb < min(nq, (g+1)*bpg); qb++ {
				i0 := qb * flashBr
				rows := min(flashBr, lq-i0)
				q := a.Q.at(b, i0, h)
				for r := 0; r < rows; r++ {
					m[r], l[r] = math.Inf(-1), 0
				}
				clear(o[:rows*hd])
				for kb := 0; kb < nk; kb++ {
					j0 := kb * flashBk
					kn := min(flashBk, lk-j0)
					p0 := j0 / nr
					kpb := PackedB{K: hd, N: kn, nr: nr, f32: st.kp.f32[p0*hd*nr : (p0+(kn+nr-1)/nr)*hd*nr]}
					gemm(rows, q, a.Q.RowStride, &kpb, s, flashBk, ep, false)
					for r := 0; r < rows; r++ {
						row := s[r*flashBk : r*flashBk+kn]
						mx := float64(vmax(row))
						mn := max(m[r], mx)
						if math.IsInf(mn, -1) {
							mn = 0 // every score so far -Inf: exp gives 0s, as the reference's softmax does
						}
						sum := vexpSubSum(row, float32(mn))
						if c := math.Exp(m[r] - mn); c != 1 {
							vmulScalar(o[r*hd:(r+1)*hd], o[r*hd:(r+1)*hd], float32(c))
							l[r] *= c
						}
						l[r] += float64(sum)
						m[r] = mn
					}
					gemm(rows, s, flashBk, &st.vp[kb], o, hd, acc, false)
				}
				for r := 0; r < rows; r++ {
					vmulScalar(a.Out.at(b, i0+r, h)[:hd], o[r*hd:(r+1)*hd], float32(1/l[r]))
				}
			}
		}
	}
	units := B * H * groups
	if t <= 1 || B*H*lq*lk*hd < serialFlops/2 {
		work(0, units)
		return
	}
	parallelRun(units, 1, work)
}
