package kernels

import (
	"math"
	"sync"
)

// Integer attention (Attention.Int8): the two products of an attention through the int8 GEMM's kernels, so an
// int8 model runs its attention at the integer rate too.
//
//   - Per (batch, head), K is quantized per key and V per head dimension (symmetric int8: q = round(x·127/max|x|),
//     round half to even) and packed once as the int8 GEMM's B operands: Kᵀ (hd × Lk, a scale per key) and V
//     (Lk × hd, a scale per head dimension).
//   - Per block of query rows, the rows of Q are quantized as the GEMM's A (int16 per row, quantizeA) with the
//     softmax scale folded into the row scales; S = Q·Kᵀ comes out in float32, its rows go through the same
//     softmax as the float path but are left unnormalised (p = exp(s − max s) with the same bits in every tier:
//     expSubSumExact), P is quantized per row as A again (its largest value is 1, so P keeps ≥ 13 bits at 1568
//     keys) with 1/Σ of its levels as the row scale (pRowScale), and Out = P·V is written in place.
//
// Every tier computes the same int32 sums from the same quantized operands, so tiers agree to float rounding,
// as the int8 GEMM does. The error against float attention is that of int8 K and V (7 bits per key and per
// channel); TestInt8Accuracy bounds the whole int8 model's logits.

// Int8AttnMinLk is the fewest keys that take the integer path: shorter problems (B-CAST's 8-key ones) stay on
// the direct float path, where packing would cost more than the products.
const Int8AttnMinLk = 32

// useInt8 says the attention takes the integer path.
func (a *Attention) useInt8() bool {
	return a.Int8 && a.Probs == nil && a.Lk >= Int8AttnMinLk
}

type int8AttnScratch struct {
	kp, vp PackedB   // K and V of one (batch, head), packed as int8 B operands
	q      []int16   // quantized Q or P rows of one block (+ interleaving scratch)
	rs     []float32 // their row scales
	scores []float32
	row16  []int16   // one or two quantized rows (K, V) before they are narrowed to int8
	vmax   []uint32  // max |V| per head dimension (bit patterns)
	vinv   []float32 // 127 / vmax
	vtmp   []float32 // two rows of V times vinv
}

var int8AttnPool = sync.Pool{New: func() any { return new(int8AttnScratch) }}

// grow returns s with length n, reallocating when its capacity is short.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// packKInt8 packs K of (b, h) (lk keys of hd) as an int8 B operand of hd × lk (panels of nr keys, one scale
// per key) into p, reusing its storage.
func (a *Attention) packKInt8(st *int8AttnScratch, b, h, nr int) {
	hd, lk := a.HeadDim, a.Lk
	k2 := (hd + 1) &^ 1
	np := (lk + nr - 1) / nr
	p := &st.kp
	*p = PackedB{K: hd, N: lk, nr: nr, i8: grow(p.i8, np*k2*nr), sc: grow(p.sc, np*nr)}
	clear(p.i8)
	clear(p.sc)
	st.row16 = grow(st.row16, hd)
	for j := 0; j < lk; j++ {
		row := a.K.at(b, j, h)[:hd]
		s, inv := symScale(maxAbsRow(row), 127)
		p.sc[j] = s
		if inv == 0 {
			continue
		}
		quantizeRow(st.row16, row, inv)
		putColumn(p, j, st.row16)
	}
}

// packVInt8 packs V of (b, h) (lk keys of hd) as an int8 B operand of lk × hd (panels of nr head dimensions,
// one scale per head dimension) into p, reusing its storage.
func (a *Attention) packVInt8(st *int8AttnScratch, b, h, nr int) {
	hd, lk := a.HeadDim, a.Lk
	k2 := (lk + 1) &^ 1
	np := (hd + nr - 1) / nr
	p := &st.vp
	*p = PackedB{K: lk, N: hd, nr: nr, i8: grow(p.i8, np*k2*nr), sc: grow(p.sc, np*nr)}
	if hd%nr != 0 {
		clear(p.i8[(np-1)*k2*nr:]) // the last panel's columns past hd stay zero
	}
	clear(p.sc[hd:])
	// max |V| per head dimension over the bit patterns of |v| (as integers finite < Inf < NaN, so a NaN is kept),
	// with the branch-free integer max
	mx := grow(st.vmax, hd)
	st.vmax = mx
	clear(mx)
	for j := 0; j < lk; j++ {
		maxAbsBitsInto(mx, a.V.at(b, j, h)[:hd])
	}
	inv := grow(st.vinv, hd)
	st.vinv = inv
	for d, m := range mx {
		p.sc[d], inv[d] = symScale(math.Float32frombits(m), 127)
	}
	// Two keys at a time: each row times inv and rounded half to even by the tier's vector kernels (vmul, then
	// quantizeRow with 1: the same float32 product and rounding as roundHalfEven32(v·inv)), then the two rows'
	// levels interleaved into each panel's pair row (2·nr contiguous bytes).
	t := grow(st.vtmp, 2*hd)
	st.vtmp = t
	q := grow(st.row16, 2*hd)
	st.row16 = q
	for j := 0; j < lk; j += 2 {
		vmul(t[:hd], a.V.at(b, j, h)[:hd], inv)
		quantizeRow(q[:hd], t[:hd], 1)
		if j+1 < lk {
			vmul(t[hd:], a.V.at(b, j+1, h)[:hd], inv)
			quantizeRow(q[hd:], t[hd:], 1)
		} else {
			clear(q[hd:]) // K rounded up to even: the pad key is zero
		}
		for p0 := 0; p0 < hd; p0 += nr {
			w := min(nr, hd-p0)
			pairLevels(p.i8[(p0/nr)*k2*nr+(j>>1)*2*nr:][:2*w], q[p0:p0+w], q[hd+p0:hd+p0+w])
		}
	}
}

// The two per-key passes of packVInt8, vectorised where the build has them.
var (
	maxAbsBitsInto = maxAbsBitsIntoGeneric
	pairLevels     = pairLevelsGeneric
)

// maxAbsBitsIntoGeneric sets mx[d] = max(mx[d], bits of |v[d]|): as integers finite < Inf < NaN, so a NaN is
// kept (the branch-free integer max).
func maxAbsBitsIntoGeneric(mx []uint32, v []float32) {
	mx = mx[:len(v)]
	for d, x := range v {
		mx[d] = max(mx[d], math.Float32bits(x)&^(1<<31))
	}
}

// pairLevelsGeneric interleaves two keys' int8 levels (int16 in range) into one pair row of V's panel:
// dst[2d], dst[2d+1] = q0[d], q1[d].
func pairLevelsGeneric(dst []int8, q0, q1 []int16) {
	q1 = q1[:len(q0)]
	dst = dst[:2*len(q0)]
	for d := range q0 {
		dst[2*d], dst[2*d+1] = int8(q0[d]), int8(q1[d])
	}
}

// roundHalfEven32 rounds x (|x| < 2²²) to the nearest integer, ties to even, as math.RoundToEven does: adding
// 1.5·2²³ leaves the rounded integer in the low mantissa bits.
func roundHalfEven32(x float32) int32 {
	return int32(math.Float32bits(x+0x1.8p23)) - 0x4b400000
}

// attnInt8Strip, when a tier sets it (wasm-simd128: attention_int8_wasm.go), runs the integer path its own way
// and returns true, or returns false to leave it to runInt8.
var attnInt8Strip func(a *Attention) bool

// pRowScale is the row scale of P's quantized levels q (whose sum is sum) in Out = P·V: 1/Σq, so the weights
// that meet V are exactly normalised, and the scale is an integer's reciprocal, the same in every tier whatever
// order the exps were added in (a one-ulp difference in 1/Σexp would be noticed by the next GEMM's int16
// activation levels). NaN when the row held a NaN.
func pRowScale(sum int64, nan bool) float32 {
	if nan {
		return float32(math.NaN())
	}
	return 1 / float32(sum)
}

// sumInt16 returns the sum of q (vectorised where the build has it).
var sumInt16 = sumInt16Generic

func sumInt16Generic(q []int16) int64 {
	var s int64
	for _, v := range q {
		s += int64(v)
	}
	return s
}

// runInt8 computes the attention on the integer path (useInt8).
func (a *Attention) runInt8() {
	if attnInt8Strip != nil && attnInt8Strip(a) {
		return
	}
	B, H, lq, lk, hd := a.Batch, a.Heads, a.Lq, a.Lk, a.HeadDim
	kt := curInt8()
	mr := kt.mr
	lds := (lk + 7) &^ 7 // score rows padded with -Inf so the exp pass runs without scalar tails
	br := max(mr, (16<<10)/lds)
	br -= br % mr
	br = min(br, (lq+mr-1)/mr*mr)
	nblk := (lq + br - 1) / br
	t := Threads()
	groups := 1
	if B*H < 4*t && nblk > 1 {
		groups = min(nblk, (4*t+B*H-1)/(B*H))
	}
	bpg := (nblk + groups - 1) / groups
	groups = (nblk + bpg - 1) / bpg
	k2max := max((hd+1)&^1, (lk+1)&^1)
	negInf := float32(math.Inf(-1))
	lk2 := (lk + 1) &^ 1
	qmaxP := Int8QMax(lk2)
	work := func(lo, hi int) {
		st := int8AttnPool.Get().(*int8AttnScratch)
		defer int8AttnPool.Put(st)
		st.q = grow(st.q, (br+mr)*k2max)
		st.rs = grow(st.rs, br)
		st.scores = grow(st.scores, br*lds)
		lastBH := -1
		for u := lo; u < hi; u++ {
			bh, g := u/groups, u%groups
			b, h := bh/H, bh%H
			if bh != lastBH {
				a.packKInt8(st, b, h, kt.nr)
				a.packVInt8(st, b, h, kt.nr)
				lastBH = bh
			}
			npK, npV := (lk+kt.nr-1)/kt.nr, (hd+kt.nr-1)/kt.nr
			for blk := g * bpg; blk < min(nblk, (g+1)*bpg); blk++ {
				i0 := blk * br
				rows := min(br, lq-i0)
				rs, scores := st.rs, st.scores
				// S = Scale·Q·Kᵀ
				quantizeA(kt, st.q, rs, a.Q.at(b, i0, h), a.Q.RowStride, rows, hd)
				for r := range rows {
					rs[r] *= a.Scale
				}
				int8Panels(kt, st.q, rs, rows, &st.kp, 0, npK, scores, lds, 0, nil)
				// P = exp(S − max S), unnormalised
				for r := range rows {
					row := scores[r*lds : r*lds+lds]
					for j := lk; j < lds; j++ {
						row[j] = negInf
					}
					m := vmax(row[:lk])
					if math.IsInf(float64(m), -1) {
						m = 0 // every score -Inf: P quantizes to 0s, 1/Σq is +Inf and the outputs NaN, as the reference divides 0 by 0
					}
					sum := expSubSumExact(row, m)
					// P as the GEMM's A: its largest value is exp(0) = 1, so its levels are round(p·qmax)
					// (quantizeA's, without the max pass; the wasm path's too), and l is their integer sum
					qr := st.q[r*lk2 : (r+1)*lk2]
					quantizeRow(qr[:lk], row[:lk], qmaxP)
					if lk < lk2 {
						qr[lk] = 0
					}
					rs[r] = pRowScale(sumInt16(qr[:lk]), sum != sum)
				}
				rp := (rows + mr - 1) / mr * mr
				clear(st.q[rows*lk2 : rp*lk2])
				clear(rs[rows:rp])
				if kt.ilv {
					interleaveRows(st.q[:rp*lk2], st.q[rp*lk2:(rp+mr)*lk2], mr, lk2)
				}
				// Out = P·V / l, l the sum of P's levels
				int8Panels(kt, st.q, rs, rows, &st.vp, 0, npV, a.Out.at(b, i0, h), a.Out.RowStride, 0, nil)
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
