package kernels

import (
	"math"
	"sync"
)

type attnScratch struct {
	kp, vp PackedB
	scores []float32
}

var attnPool = sync.Pool{New: func() any { return new(attnScratch) }}

// attnStrip, when a tier sets it (wasm-simd128: attention_strip_wasm.go), runs an attention the direct path
// does not take and returns true, or returns false to leave it to the GEMM and flash paths.
var attnStrip func(a *Attention) bool

func (a *Attention) run() {
	B, H, lq, lk, hd := a.Batch, a.Heads, a.Lq, a.Lk, a.HeadDim
	if B <= 0 || H <= 0 || lq <= 0 || hd <= 0 {
		return
	}
	if lk <= 0 {
		for b := 0; b < B; b++ {
			for h := 0; h < H; h++ {
				for i := 0; i < lq; i++ {
					clear(a.Out.at(b, i, h)[:hd])
				}
			}
		}
		return
	}
	if a.useInt8() {
		a.runInt8()
		return
	}
	if a.useSmall() {
		a.runSmall()
		return
	}
	if attnStrip != nil && attnStrip(a) {
		return
	}
	if a.useFlash() {
		a.runFlash()
		return
	}
	mr := gemmMR
	// Score rows are padded to a multiple of 8 with -Inf (exp gives 0) so the softmax runs without scalar tails.
	lds := (lk + 7) &^ 7
	br := max(mr, (16<<10)/lds)
	br -= br % mr
	br = min(br, lq)
	nblk := (lq + br - 1) / br
	// Groups of row blocks per (batch, head): one unless there are too few (batch, head) pairs for the threads.
	t := Threads()
	groups := 1
	if B*H < 4*t && nblk > 1 {
		groups = min(nblk, (4*t+B*H-1)/(B*H))
	}
	bpg := (nblk + groups - 1) / groups
	groups = (nblk + bpg - 1) / bpg
	ep := &Epilogue{Alpha: a.Scale}
	work := func(lo, hi int) {
		st := attnPool.Get().(*attnScratch)
		defer attnPool.Put(st)
		if cap(st.scores) < br*lds {
			st.scores = make([]float32, br*lds)
		}
		scores := st.scores[:br*lds]
		negInf := float32(math.Inf(-1))
		lastBH := -1
		for u := lo; u < hi; u++ {
			bh, g := u/groups, u%groups
			b, h := bh/H, bh%H
			if bh != lastBH {
				packB(&st.kp, a.K.at(b, 0, h), a.K.RowStride, hd, lk, true, gemmNR)
				packB(&st.vp, a.V.at(b, 0, h), a.V.RowStride, lk, hd, false, gemmNR)
				lastBH = bh
			}
			for blk := g * bpg; blk < min(nblk, (g+1)*bpg); blk++ {
				i0 := blk * br
				rows := min(br, lq-i0)
				gemm(rows, a.Q.at(b, i0, h), a.Q.RowStride, &st.kp, scores, lds, ep, false)
				for r := 0; r < rows; r++ {
					row := scores[r*lds : r*lds+lds]
					if a.Scale == 0 {
						clear(row[:lk])
					}
					for j := lk; j < lds; j++ {
						row[j] = negInf
					}
					softmaxRow(row)
					if a.Probs != nil {
						vscaleFlush(a.probsRow(b, h, i0+r), row[:lk], 1)
					}
				}
				gemm(rows, scores, lds, &st.vp, a.Out.at(b, i0, h), a.Out.RowStride, nil, false)
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
