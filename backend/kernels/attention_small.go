package kernels

import (
	"math"
	"sync"
	"unsafe"
)

// Direct attention for small head dims (hd ≤ smallHD): no GEMM, no packing of Q. Per (batch, head), K is
// laid out transposed once as kt (hd rows of ldk = ⌈Lk/8⌉·8 keys, then a row holding 0 for real keys and -Inf
// for the padding) and V likewise as vt (hd rows of ldk, zero padded). A query row is then
//
//	scores  s[j] = Scale·Σ_d q[d]·kt[d][j] + kt[hd][j]   (vectorised over j, hd broadcast-multiply-adds)
//	weights p[j] = exp(s[j] - max s), their sum S   (expOneExact; S in the canonical order, vsum)
//	out[d]  = Σ_j p[j]·vt[d][j] / S                      (hd dot products over j)
//
// so every vector operation works on whole 8-key blocks whatever hd is. All (batch, head, row-group) units go
// through one parallel split.

const smallHD = 16

// With few keys (fewKeys) the direct path also takes head dims up to smallHDMax (B-CAST's 8×8 problems).
const (
	smallLk    = 16
	smallHDMax = 64
)

// attnRow computes one query row (see above): out and q hold hd values, p is ldk scratch.
var attnRow = attnRowGeneric

// attnRows computes query rows [i0, i1) of (b, h); p is 4·ldk + 4·smallHD·8 scratch, vr V's rows (lk×hd) when fewKeys.
var attnRows = attnRowsGeneric

func attnRowsGeneric(a *Attention, b, h, i0, i1 int, kt, vt, vr, p []float32, ldk int) {
	hd := a.HeadDim
	for i := i0; i < i1; i++ {
		attnRow(a.Out.at(b, i, h)[:hd], a.Q.at(b, i, h)[:hd], kt, vt, p[:ldk], hd, ldk, a.Scale)
		if a.Probs != nil { // p holds the row's exp(s − max), ≈ 1.2e-38 past Lk
			vscaleFlush(a.probsRow(b, h, i), p[:a.Lk], 1/vsumGeneric(p[:ldk]))
		}
	}
}

type smallScratch struct {
	kt, vt, vr, p []float32
}

var smallPool = sync.Pool{New: func() any { return new(smallScratch) }}

// smallOn switches the direct path (benchmarks compare it with the GEMM path).
var smallOn = true

func (a *Attention) useSmall() bool {
	return smallOn && (a.HeadDim <= smallHD || a.fewKeys() && a.HeadDim <= smallHDMax)
}

// fewKeys says the direct path computes P·V row by row from V's rows, adding the keys in order (vectorised over
// the head dimension, the same order in every tier): with at most smallLk keys, or fewer than Int8AttnMinLk in
// an int8 model, whose attentions of few keys (B-CAST's) must give the same bits in every tier.
func (a *Attention) fewKeys() bool { return a.Lk <= smallLk || a.Int8 && a.Lk < Int8AttnMinLk }

// Int8FewKeys says an int8 model's attention of lk keys and head dim hd takes the direct path of few keys (the
// keys added in order, the same bits in every tier), as WebGPU's int8 programs mirror.
func Int8FewKeys(lk, hd int) bool {
	a := Attention{Lk: lk, HeadDim: hd, Int8: true}
	return !a.useInt8() && a.useSmall() && a.fewKeys()
}

// packSmall lays out K and V of (b, h) as kt and vt.
func (a *Attention) packSmall(st *smallScratch, b, h, ldk int) {
	hd, lk := a.HeadDim, a.Lk
	need := (2*hd + 1) * ldk
	if a.fewKeys() {
		need += lk * hd // V's rows, contiguous (P·V row by row; a copy, so Out may alias V)
	}
	if cap(st.kt) < need {
		st.kt = make([]float32, need)
	}
	kt := st.kt[:(hd+1)*ldk]
	vt := st.kt[(hd+1)*ldk : (2*hd+1)*ldk]
	st.vr = st.kt[(2*hd+1)*ldk : need]
	if a.fewKeys() {
		for j := 0; j < lk; j++ {
			copy(st.vr[j*hd:(j+1)*hd], a.V.at(b, j, h)[:hd])
		}
	}
	for j := 0; j < lk; j++ {
		k := a.K.at(b, j, h)[:hd]
		v := a.V.at(b, j, h)[:hd]
		for d := 0; d < hd; d++ {
			kt[d*ldk+j] = k[d]
			vt[d*ldk+j] = v[d]
		}
	}
	for d := 0; d < hd; d++ {
		clear(kt[d*ldk+lk : (d+1)*ldk])
		clear(vt[d*ldk+lk : (d+1)*ldk])
	}
	bias := kt[hd*ldk : (hd+1)*ldk]
	clear(bias[:lk])
	negInf := float32(math.Inf(-1))
	for j := lk; j < ldk; j++ {
		bias[j] = negInf
	}
	st.vt = vt
}

func (a *Attention) runSmall() {
	B, H, lq, lk, hd := a.Batch, a.Heads, a.Lq, a.Lk, a.HeadDim
	ldk := (lk + 7) &^ 7
	t := Threads()
	// Row groups per (batch, head): one unless there are too few (batch, head) pairs for the threads.
	groups := 1
	if B*H < 4*t {
		groups = min(lq, (4*t+B*H-1)/(B*H))
	}
	rpg := (lq + groups - 1) / groups
	groups = (lq + rpg - 1) / rpg
	work := func(lo, hi int) {
		st := smallPool.Get().(*smallScratch)
		defer smallPool.Put(st)
		// Four score rows, then room for four rows' P·V lane sums (≥ smallHDMax·8).
		np := 4*ldk + 4*smallHD*8
		if cap(st.p) < np {
			st.p = make([]float32, np)
		}
		p := st.p[:np]
		lastBH := -1
		for u := lo; u < hi; u++ {
			bh, g := u/groups, u%groups
			b, h := bh/H, bh%H
			if bh != lastBH {
				a.packSmall(st, b, h, ldk)
				lastBH = bh
			}
			kt := st.kt[:(hd+1)*ldk]
			attnRows(a, b, h, g*rpg, min(lq, (g+1)*rpg), kt, st.vt, st.vr, p, ldk)
		}
	}
	units := B * H * groups
	flops := B * H * lq * lk * hd
	if t <= 1 || flops < serialFlops/2 || units == 1 {
		work(0, units)
		return
	}
	// Chunks of about serialFlops/8 multiply-adds, at least one unit, at most units/(2t).
	perUnit := max(1, flops/units)
	chunk := max(1, min((serialFlops/8)/perUnit, units/(2*t)))
	parallelRun(units, chunk, work)
}

func attnRowGeneric(out, q, kt, vt, p []float32, hd, ldk int, scale float32) {
	p = p[:ldk]
	bias := kt[hd*ldk : (hd+1)*ldk]
	m := float32(math.Inf(-1))
	for j := range p {
		var s float32
		for d := 0; d < hd; d++ {
			s += float32(q[d] * kt[d*ldk+j])
		}
		s = float32(s*scale) + bias[j]
		p[j] = s
		m = max(m, s)
	}
	if math.IsInf(float64(m), -1) {
		m = 0
	}
	for j, s := range p {
		p[j] = expOneExact(s - m)
	}
	inv := 1 / vsumGeneric(p)
	for d := 0; d < hd; d++ {
		v := vt[d*ldk : (d+1)*ldk]
		var acc float32
		for j, e := range p {
			acc += float32(e * v[j])
		}
		out[d] = acc * inv
	}
}

// softmaxWeights replaces a row's scores p (m their largest, −Inf when every key is masked) by exp(p[j] − m),
// expOneExact's bits, and returns 1/Σ p[j] added in the canonical order (vsum): the vector tiers' direct-path
// softmax weights, the same bits in every tier (expSubSumExact's own sum adds its lanes in the tier's order,
// so it is not used).
func softmaxWeights(p []float32, m float32) float32 {
	if math.IsInf(float64(m), -1) {
		m = 0
	}
	expSubSumExact(p, m)
	return 1 / vsum(p)
}

// pvRowsTail writes out[d] = inv·Σ_{j<lk} p[j]·V[j][d] for d in [d0, hd) one at a time (V rows ldv bytes apart),
// the keys added in order: the head dimensions past the vector versions' last whole vector.
func pvRowsTail(op, pp, vp unsafe.Pointer, ldv, lk, d0, hd int, inv float32) {
	for d := d0; d < hd; d++ {
		var acc float32
		for j := 0; j < lk; j++ {
			acc += float32(*(*float32)(unsafe.Add(pp, 4*j)) * *(*float32)(unsafe.Add(vp, j*ldv+4*d)))
		}
		*(*float32)(unsafe.Add(op, 4*d)) = acc * inv
	}
}
