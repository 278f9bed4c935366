//go:build goexperiment.simd && wasm

package kernels

import "math"

// The integer attention's wasm-simd128 path (attention_int8.go gives the method): the strip structure of
// attention_strip_wasm.go with the int8 GEMM's kernels. Per (batch, head) K and V are packed as int8 panels
// of 8; then per strip of four query rows
//
//	q  = the rows quantized (int16, interleaved), their scales times Scale
//	s  = q·Kᵀ in float32, each row's lane maxima            (int8QKWasm: every key panel in one call)
//	qp = exp(s − max s) quantized to int16 (its largest value 1), l the sum of its levels   (expQuantIlv4Wasm:
//	     straight into the interleaved tile)
//	Out = qp·V with 1/l as the row scales  (int8StripWasm, one call per 8 head dims)
//
// The same quantized operands and int32 sums as runInt8, so this path equals the other tiers to float
// rounding.

//go:noescape
func vColMaxWasm(v *float32, stride, rows int, out *[8]float32)

//go:noescape
func packVPairsWasm(dst *int8, v *float32, stride, pairs int, inv *[8]float32)

// packVInt8Wasm is packVInt8 with nr = 8 for head dims that are a multiple of 8 (else it calls it): per panel of
// 8 head dims, the column maxima in one pass (vColMaxWasm) and the quantized pairs of keys in another
// (packVPairsWasm), with the same values.
func (a *Attention) packVInt8Wasm(st *int8AttnScratch, b, h int) {
	hd, lk := a.HeadDim, a.Lk
	if hd%8 != 0 {
		a.packVInt8(st, b, h, 8)
		return
	}
	k2, np := (lk+1)&^1, hd/8
	p := &st.vp
	*p = PackedB{K: lk, N: hd, nr: 8, i8: grow(p.i8, np*k2*8), sc: grow(p.sc, np*8)}
	rs := a.V.RowStride
	base := a.V.at(b, 0, h)
	base = base[:(lk-1)*rs+hd]
	var mx, inv [8]float32
	for pn := 0; pn < np; pn++ {
		v := &base[8*pn]
		vColMaxWasm(v, 4*rs, lk, &mx)
		for d := range 8 {
			p.sc[8*pn+d], inv[d] = symScale(mx[d], 127)
		}
		panel := p.i8[pn*k2*8 : (pn+1)*k2*8]
		if lk >= 2 {
			packVPairsWasm(&panel[0], v, 4*rs, lk/2, &inv)
		}
		if lk%2 == 1 {
			last := base[(lk-1)*rs+8*pn:][:8]
			tail := panel[(lk/2)*16:][:16]
			for d := range 8 {
				tail[2*d], tail[2*d+1] = int8(roundHalfEven32(last[d]*inv[d])), 0
			}
		}
	}
}

//go:noescape
func expQuantIlv4Wasm(q *int16, s *float32, n int, m, qmax float32, sum *[4]int32)

// expQuantRow sets row r of the 4-row interleaved tile q (4·k2 values, k2 = len(s) rounded up to even) to the
// int16 levels round-half-even(expOneExact(s[j] − m)·qmax) and returns their sum.
func expQuantRow(q []int16, r, k2 int, s []float32, m, qmax float32) int64 {
	k := len(s)
	q = q[2*r : 4*k2]
	n := k &^ 3
	var sum int64
	if n > 0 {
		_ = q[8*(n/2-1)+1]
		var lanes [4]int32
		expQuantIlv4Wasm(&q[0], &s[0], n, m, qmax, &lanes)
		sum = int64(lanes[0]) + int64(lanes[1]) + int64(lanes[2]) + int64(lanes[3])
	}
	for i := n; i < k; i++ {
		l := int16(roundHalfEven32(expOneExact(s[i]-m) * qmax))
		sum += int64(l)
		q[8*(i>>1)+i&1] = l
	}
	if k < k2 {
		q[8*(k>>1)+1] = 0
	}
	return sum
}

//go:noescape
func int8QKWasm(kp, np int, a *int16, b *int8, s *float32, lds int, rs, sc, mx *float32)

var _ = func() bool {
	tierHooks = append(tierHooks, func(tier string) {
		attnInt8Strip = nil
		if tier == "wasm-simd128" {
			attnInt8Strip = attnInt8StripWasm
		}
	})
	return true
}()

// attnInt8StripWasm runs a (useInt8) on the wasm strip path and returns true, or false when the int8 tier in
// use is not the wasm one (tests switch tiers).
func attnInt8StripWasm(a *Attention) bool {
	kt := curInt8()
	if kt.name != "wasm-simd128" || kt.mr != 4 || kt.nr != 8 {
		return false
	}
	B, H, lq, lk, hd := a.Batch, a.Heads, a.Lq, a.Lk, a.HeadDim
	ldk := (lk + 7) &^ 7
	hd2, lk2 := (hd+1)&^1, (lk+1)&^1
	full := lk / 8 // key panels without padding (the padded one's zero scores must not enter the maxima)
	npV := (hd + 7) / 8
	st := int8AttnPool.Get().(*int8AttnScratch)
	defer int8AttnPool.Put(st)
	st.q = grow(st.q, 8*max(hd2, lk2))
	st.scores = grow(st.scores, 4*ldk)
	s := st.scores
	qmaxP := Int8QMax(lk2)
	negInf := float32(math.Inf(-1))
	var mx, dummy [16]float32
	var rs, rsP [4]float32
	var tile [32]float32
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			a.packKInt8(st, b, h, 8)
			a.packVInt8Wasm(st, b, h)
			kp, vp := &st.kp, &st.vp
			for i := 0; i < lq; i += 4 {
				nr := min(4, lq-i)
				// S = Scale·Q·Kᵀ
				quantizeA(kt, st.q, rs[:], a.Q.at(b, i, h), a.Q.RowStride, nr, hd)
				for r := range rs {
					rs[r] *= a.Scale
				}
				for j := range mx {
					mx[j] = negInf
				}
				if full > 0 {
					int8QKWasm(hd2/2, full, &st.q[0], &kp.i8[0], &s[0], 4*ldk, &rs[0], &kp.sc[0], &mx[0])
				}
				if full*8 < lk {
					int8QKWasm(hd2/2, 1, &st.q[0], &kp.i8[full*8*hd2], &s[full*8], 4*ldk, &rs[0], &kp.sc[full*8], &dummy[0])
				}
				// P = exp(S − max S), quantized row by row into the interleaved tile
				for r := 0; r < 4; r++ {
					if r >= nr {
						clearRowIlv4(st.q, r, lk2)
						rsP[r] = 0
						continue
					}
					row := s[r*ldk : (r+1)*ldk]
					x := mx[4*r : 4*r+4]
					m := max(max(x[0], x[1]), max(x[2], x[3]))
					for _, v := range row[full*8 : lk] {
						m = max(m, v)
					}
					if math.IsInf(float64(m), -1) {
						m = 0 // every score -Inf: P quantizes to 0s, 1/Σq is +Inf and the outputs NaN
					}
					rsP[r] = pRowScale(expQuantRow(st.q, r, lk2, row[:lk], m, qmaxP), m != m)
				}
				// Out = P·V / l
				for p := 0; p < npV; p++ {
					int8StripWasmGo(1, lk2/2, st.q, vp.i8[p*lk2*8:(p+1)*lk2*8], rsP[:], vp.sc[p*8:p*8+8], tile[:])
					w := min(8, hd-8*p)
					for r := 0; r < nr; r++ {
						copy(a.Out.at(b, i+r, h)[8*p:8*p+w], tile[8*r:8*r+w])
					}
				}
			}
		}
	}
	return true
}
