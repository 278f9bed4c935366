//go:build goexperiment.simd && wasm

package kernels

import (
	"math"
	"sync"
	"unsafe"
)

// Strip attention, the wasm-simd128 tier's path for head dims the direct path (attention_small.go) does not
// take: per (batch, head) K is packed once as Bᵀ (panels of 8 keys, hd×8 each) and V once as B (panels of 8
// head dims, Lk×8 each); then for each strip of four query rows
//
//	s     = Scale·Q_strip·Kᵀ, and each row's lane maxima   (stripQKWasm: every key panel in one assembly call)
//	p     = exp(s − max s), their sum l                   (attnExpWasm)
//	o     = p·V                                           (stripPVWasm: every head-dim panel in one call)
//	Out   = o / l
//
// The four score rows (4·⌈Lk/8⌉·8 floats: 25 KB for 1568 keys) stay in L1 from their scores to P·V, so no
// online softmax is needed; the packed K and V are read from L2 once per strip. Both micro-kernels are the
// 4×8 tile of gemm_f32_wasm.s (8 f32x4 accumulators in v128 locals) looping over all panels inside the call,
// so no Go call, tile copy or epilogue is paid per 4×8 tile as through the GEMM driver.

//go:noescape
func stripQKWasm(k, np int, a0, a1, a2, a3, b, s *float32, lds int, sc, mx *float32)

//go:noescape
func stripPVWasm(k, np int, a0, a1, a2, a3, b, o *float32, ldo int)

// stripOn switches the strip path (benchmarks compare it with the GEMM and flash paths).
var stripOn = true

var _ = func() bool {
	tierHooks = append(tierHooks, func(tier string) {
		attnStrip = nil
		if tier == "wasm-simd128" {
			attnStrip = attnStripWasm
		}
	})
	return true
}()

type stripScratch struct {
	kp, vp PackedB
	s, o   []float32
}

var stripPool = sync.Pool{New: func() any { return new(stripScratch) }}

// attnStripWasm runs a (lk ≥ 1) on the strip path and returns true, or returns false when stripOn is off.
func attnStripWasm(a *Attention) bool {
	if !stripOn {
		return false
	}
	B, H, lq, lk, hd := a.Batch, a.Heads, a.Lq, a.Lk, a.HeadDim
	ldk := (lk + 7) &^ 7
	hdp := (hd + 7) &^ 7
	full := lk / 8 // key panels without padding (the padded one's zero scores must not enter the maxima)
	st := stripPool.Get().(*stripScratch)
	defer stripPool.Put(st)
	if cap(st.s) < 4*ldk {
		st.s = make([]float32, 4*ldk)
	}
	if cap(st.o) < 4*hdp {
		st.o = make([]float32, 4*hdp)
	}
	s, o := st.s[:4*ldk], st.o[:4*hdp]
	scale := a.Scale
	negInf := float32(math.Inf(-1))
	var mx, dummy [16]float32
	var q, pr [4]*float32
	var inv [4]float32
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			packB(&st.kp, a.K.at(b, 0, h), a.K.RowStride, hd, lk, true, 8)
			packB(&st.vp, a.V.at(b, 0, h), a.V.RowStride, lk, hd, false, 8)
			kp, vp := st.kp.f32, st.vp.f32
			for i := 0; i < lq; i += 4 {
				// A last strip of fewer than four rows repeats its last row (computed, not written).
				nr := min(4, lq-i)
				for r := range q {
					q[r] = unsafe.SliceData(a.Q.at(b, i+min(r, nr-1), h)[:hd])
					pr[r] = &s[min(r, nr-1)*ldk]
				}
				for j := range mx {
					mx[j] = negInf
				}
				if full > 0 {
					stripQKWasm(hd, full, q[0], q[1], q[2], q[3], &kp[0], &s[0], 4*ldk, &scale, &mx[0])
				}
				if full*8 < lk {
					stripQKWasm(hd, 1, q[0], q[1], q[2], q[3], &kp[full*8*hd], &s[full*8], 4*ldk, &scale, &dummy[0])
				}
				for r := 0; r < nr; r++ {
					row := s[r*ldk : (r+1)*ldk]
					x := mx[4*r : 4*r+4]
					m := max(max(x[0], x[1]), max(x[2], x[3]))
					for _, v := range row[full*8 : lk] {
						m = max(m, v)
					}
					if math.IsInf(float64(m), -1) {
						m = 0 // every score -Inf: exp gives 0s, as the reference's softmax does
					}
					for j := lk; j < ldk; j++ {
						row[j] = negInf
					}
					var sum float64
					for j := 0; j < ldk; j += expBlock {
						sum += attnExpWasm(unsafe.Pointer(&row[j]), min(expBlock, ldk-j), m)
					}
					inv[r] = float32(1 / sum)
					if a.Probs != nil {
						vscaleFlush(a.probsRow(b, h, i+r), row[:lk], inv[r])
					}
				}
				stripPVWasm(lk, hdp/8, pr[0], pr[1], pr[2], pr[3], &vp[0], &o[0], 4*hdp)
				for r := 0; r < nr; r++ {
					vmulScalar(a.Out.at(b, i+r, h)[:hd], o[r*hdp:r*hdp+hd], inv[r])
				}
			}
		}
	}
	return true
}
