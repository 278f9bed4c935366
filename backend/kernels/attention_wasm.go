//go:build goexperiment.simd && wasm

package kernels

import (
	"math"
	"unsafe"
)

// SIMD128 version of the small-head-dim attention (attention_small.go): four query rows per score pass,
// four-lane blocks, the exp written out in its loop with hoisted constants.

// expBlock: the softmax weights are summed in float32 lanes (at most 256 values a lane) between float64
// flushes.
const expBlock = 1024

func st4(p unsafe.Pointer, off int, v f4) { v.StoreArray((*[4]float32)(unsafe.Add(p, off))) }

func attnRowsWasm(a *Attention, b, h, i0, i1 int, kt, vt, vr, p []float32, ldk int) {
	hd := a.HeadDim
	_, _, _ = kt[(hd+1)*ldk-1], vt[hd*ldk-1], p[4*ldk+smallHDMax*4-1]
	// P·V lane sums live in p's tail (a local array would be zeroed on every call).
	red := (*[smallHDMax * 4]float32)(p[4*ldk:])
	var mx [4 * 4]float32
	// Few keys: P·V row by row from V's rows (vectorised over d), the keys added in order.
	pvRows := a.fewKeys()
	var vp unsafe.Pointer
	if pvRows {
		vp = unsafe.Pointer(&vr[a.Lk*hd-1])
		vp = unsafe.Add(vp, -4*(a.Lk*hd-1))
	}
	ldv := 4 * hd
	for i := i0; i < i1; i += 4 {
		// A last group of fewer than four rows repeats its last row (computed, not written).
		nr := min(4, i1-i)
		var qp [4]unsafe.Pointer
		for r := range qp {
			qp[r] = unsafe.Add(unsafe.Pointer(&a.Q.at(b, i+min(r, nr-1), h)[hd-1]), -4*(hd-1))
		}
		attnScores4Wasm(&qp, unsafe.Pointer(&kt[0]), unsafe.Pointer(&p[0]), hd, ldk, a.Scale, &mx)
		var inv [4]float32
		for r := 0; r < nr; r++ {
			x := mx[4*r : 4*r+4]
			m := max(max(x[0], x[1]), max(x[2], x[3]))
			pr := p[r*ldk : (r+1)*ldk]
			inv[r] = softmaxWeights(pr, m)
			if a.Probs != nil {
				vscaleFlush(a.probsRow(b, h, i+r), pr[:a.Lk], inv[r])
			}
		}
		if !pvRows && nr == 4 && hd <= smallHD {
			// Four rows' P·V together: each V vector loaded once for four rows.
			red4 := (*[4 * smallHD * 4]float32)(p[4*ldk:])
			attnPV4Wasm(unsafe.Pointer(&p[0]), unsafe.Pointer(&vt[0]), hd, ldk, red4)
			for r := 0; r < 4; r++ {
				out := a.Out.at(b, i+r, h)[:hd]
				for d := range out {
					x := (*[4]float32)(red4[(r*smallHD+d)*4:])
					out[d] = ((x[0] + x[1]) + (x[2] + x[3])) * inv[r]
				}
			}
			continue
		}
		for r := 0; r < nr; r++ {
			pr := p[r*ldk : (r+1)*ldk]
			out := a.Out.at(b, i+r, h)[:hd]
			if pvRows {
				attnPVRowsWasm(unsafe.Pointer(&out[0]), unsafe.Pointer(&pr[0]), vp, ldv, a.Lk, hd, inv[r])
				continue
			}
			attnPVWasm(unsafe.Pointer(&pr[0]), unsafe.Pointer(&vt[0]), hd, ldk, red)
			for d := range out {
				x := (*[4]float32)(red[d*4:])
				out[d] = ((x[0] + x[1]) + (x[2] + x[3])) * inv[r]
			}
		}
	}
}

// attnPV4Wasm stores in red[4(r·smallHD+d) : +4] the lane sums of p_r·vt[d] for the four rows r of p (rows of
// ldk), two d at a time (eight accumulators).
func attnPV4Wasm(pp, vp unsafe.Pointer, hd, ldk int, red *[4 * smallHD * 4]float32) {
	row := 4 * ldk
	p1, p2, p3 := unsafe.Add(pp, row), unsafe.Add(pp, 2*row), unsafe.Add(pp, 3*row)
	d := 0
	for ; d+2 <= hd; d += 2 {
		v0 := unsafe.Add(vp, d*row)
		v1 := unsafe.Add(v0, row)
		var a0, a1, a2, a3, b0, b1, b2, b3 f4
		for off := 0; off < row; off += 16 {
			x, y := ld4(v0, off), ld4(v1, off)
			e := ld4(pp, off)
			a0, b0 = a0.Add(e.Mul(x)), b0.Add(e.Mul(y))
			e = ld4(p1, off)
			a1, b1 = a1.Add(e.Mul(x)), b1.Add(e.Mul(y))
			e = ld4(p2, off)
			a2, b2 = a2.Add(e.Mul(x)), b2.Add(e.Mul(y))
			e = ld4(p3, off)
			a3, b3 = a3.Add(e.Mul(x)), b3.Add(e.Mul(y))
		}
		a0.StoreArray((*[4]float32)(red[4*d:]))
		b0.StoreArray((*[4]float32)(red[4*d+4:]))
		a1.StoreArray((*[4]float32)(red[4*(smallHD+d):]))
		b1.StoreArray((*[4]float32)(red[4*(smallHD+d)+4:]))
		a2.StoreArray((*[4]float32)(red[4*(2*smallHD+d):]))
		b2.StoreArray((*[4]float32)(red[4*(2*smallHD+d)+4:]))
		a3.StoreArray((*[4]float32)(red[4*(3*smallHD+d):]))
		b3.StoreArray((*[4]float32)(red[4*(3*smallHD+d)+4:]))
	}
	for ; d < hd; d++ {
		v0 := unsafe.Add(vp, d*row)
		var a0, a1, a2, a3 f4
		for off := 0; off < row; off += 16 {
			x := ld4(v0, off)
			a0 = a0.Add(ld4(pp, off).Mul(x))
			a1 = a1.Add(ld4(p1, off).Mul(x))
			a2 = a2.Add(ld4(p2, off).Mul(x))
			a3 = a3.Add(ld4(p3, off).Mul(x))
		}
		a0.StoreArray((*[4]float32)(red[4*d:]))
		a1.StoreArray((*[4]float32)(red[4*(smallHD+d):]))
		a2.StoreArray((*[4]float32)(red[4*(2*smallHD+d):]))
		a3.StoreArray((*[4]float32)(red[4*(3*smallHD+d):]))
	}
}

// attnScores4Wasm writes the scores of four query rows into p (rows of ldk) and their lane maxima into mx.
func attnScores4Wasm(q *[4]unsafe.Pointer, kp, pp unsafe.Pointer, hd, ldk int, scale float32, mx *[4 * 4]float32) {
	sc := splat(scale)
	m0 := splat(float32(math.Inf(-1)))
	m1, m2, m3 := m0, m0, m0
	q0, q1, q2, q3 := q[0], q[1], q[2], q[3]
	row := 4 * ldk
	bias := unsafe.Add(kp, hd*row)
	for off := 0; off < row; off += 16 {
		k := ld4(kp, off)
		a0 := bc4(q0, 0).Mul(k)
		a1 := bc4(q1, 0).Mul(k)
		a2 := bc4(q2, 0).Mul(k)
		a3 := bc4(q3, 0).Mul(k)
		kd := unsafe.Add(kp, off)
		for d := 4; d < 4*hd; d += 4 {
			kd = unsafe.Add(kd, row)
			k := ld4(kd, 0)
			a0 = a0.Add(bc4(q0, d).Mul(k))
			a1 = a1.Add(bc4(q1, d).Mul(k))
			a2 = a2.Add(bc4(q2, d).Mul(k))
			a3 = a3.Add(bc4(q3, d).Mul(k))
		}
		bv := ld4(bias, off)
		a0 = a0.Mul(sc).Add(bv)
		a1 = a1.Mul(sc).Add(bv)
		a2 = a2.Mul(sc).Add(bv)
		a3 = a3.Mul(sc).Add(bv)
		st4(pp, off, a0)
		st4(pp, row+off, a1)
		st4(pp, 2*row+off, a2)
		st4(pp, 3*row+off, a3)
		m0, m1, m2, m3 = m0.Max(a0), m1.Max(a1), m2.Max(a2), m3.Max(a3)
	}
	m0.StoreArray((*[4]float32)(mx[0:]))
	m1.StoreArray((*[4]float32)(mx[4:]))
	m2.StoreArray((*[4]float32)(mx[8:]))
	m3.StoreArray((*[4]float32)(mx[12:]))
}

// attnPVWasm stores in red[4d : 4d+4] the lane sums of p·vt[d], four d at a time.
func attnPVWasm(pp, vp unsafe.Pointer, hd, ldk int, red *[smallHDMax * 4]float32) {
	row := 4 * ldk
	d := 0
	for ; d+4 <= hd; d += 4 {
		v0 := unsafe.Add(vp, d*row)
		a0, a1, a2, a3 := f4{}, f4{}, f4{}, f4{}
		for off := 0; off < row; off += 16 {
			e := ld4(pp, off)
			a0 = a0.Add(e.Mul(ld4(v0, off)))
			a1 = a1.Add(e.Mul(ld4(v0, row+off)))
			a2 = a2.Add(e.Mul(ld4(v0, 2*row+off)))
			a3 = a3.Add(e.Mul(ld4(v0, 3*row+off)))
		}
		a0.StoreArray((*[4]float32)(red[4*d:]))
		a1.StoreArray((*[4]float32)(red[4*d+4:]))
		a2.StoreArray((*[4]float32)(red[4*d+8:]))
		a3.StoreArray((*[4]float32)(red[4*d+12:]))
	}
	for ; d < hd; d++ {
		v0 := unsafe.Add(vp, d*row)
		a0 := f4{}
		for off := 0; off < row; off += 16 {
			a0 = a0.Add(ld4(pp, off).Mul(ld4(v0, off)))
		}
		a0.StoreArray((*[4]float32)(red[4*d:]))
	}
}

// attnPVRowsWasm writes out[d] = inv·Σ_{j<lk} p[j]·V[j][d] (V rows ldv bytes apart), four vectors of d at a
// time, the keys added in order.
func attnPVRowsWasm(op, pp, vp unsafe.Pointer, ldv, lk, hd int, inv float32) {
	iv := splat(inv)
	d := 0
	for ; d+16 <= hd; d += 16 {
		a0, a1, a2, a3 := f4{}, f4{}, f4{}, f4{}
		v := unsafe.Add(vp, 4*d)
		for j, o := 0, 0; j < lk; j, o = j+1, o+ldv {
			e := bc4(pp, 4*j)
			a0 = a0.Add(e.Mul(ld4(v, o)))
			a1 = a1.Add(e.Mul(ld4(v, o+16)))
			a2 = a2.Add(e.Mul(ld4(v, o+32)))
			a3 = a3.Add(e.Mul(ld4(v, o+48)))
		}
		st4(op, 4*d, a0.Mul(iv))
		st4(op, 4*d+16, a1.Mul(iv))
		st4(op, 4*d+32, a2.Mul(iv))
		st4(op, 4*d+48, a3.Mul(iv))
	}
	for ; d+4 <= hd; d += 4 {
		a0 := f4{}
		v := unsafe.Add(vp, 4*d)
		for j, o := 0, 0; j < lk; j, o = j+1, o+ldv {
			a0 = a0.Add(bc4(pp, 4*j).Mul(ld4(v, o)))
		}
		st4(op, 4*d, a0.Mul(iv))
	}
	pvRowsTail(op, pp, vp, ldv, lk, d, hd, inv)
}
