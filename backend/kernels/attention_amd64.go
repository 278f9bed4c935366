//go:build goexperiment.simd && amd64

package kernels

import (
	"math"
	"simd/archsimd"
	"unsafe"
)

func installAttnAVX2() {
	attnRow = attnRowAVX2
	attnRows = attnRowsAVX2
}

func st8(p unsafe.Pointer, off int, v f8) { v.StoreArray((*[8]float32)(unsafe.Add(p, off))) }

func attnRowAVX2(out, q, kt, vt, p []float32, hd, ldk int, scale float32) {
	_, _, _, _ = q[hd-1], kt[(hd+1)*ldk-1], vt[hd*ldk-1], p[ldk-1]
	var red [smallHDMax * 8]float32
	m := attnScoresAVX2(unsafe.Pointer(&q[0]), unsafe.Pointer(&kt[0]), unsafe.Pointer(&p[0]), hd, ldk, scale)
	inv := softmaxWeights(p[:ldk], m)
	attnPVAVX2(unsafe.Pointer(&p[0]), unsafe.Pointer(&vt[0]), hd, ldk, &red)
	out = out[:hd]
	for d := range out {
		r := (*[8]float32)(red[d*8:])
		out[d] = ((r[0] + r[1]) + (r[2] + r[3]) + ((r[4] + r[5]) + (r[6] + r[7]))) * inv
	}
}

// attnScoresAVX2 writes the row's scores into p and returns their maximum.
func attnScoresAVX2(qp, kp, pp unsafe.Pointer, hd, ldk int, scale float32) float32 {
	sc := splat(scale)
	mx := splat(float32(math.Inf(-1)))
	row := 4 * ldk
	bias := unsafe.Add(kp, hd*row)
	for off := 0; off < row; off += 32 {
		acc := bc8(qp, 0).Mul(ld8(kp, off))
		for d := 1; d < hd; d++ {
			acc = bc8(qp, 4*d).Mul(ld8(kp, d*row+off)).Add(acc)
		}
		s := acc.Mul(sc).Add(ld8(bias, off))
		st8(pp, off, s)
		mx = mx.Max(s)
	}
	var a [8]float32
	mx.StoreArray(&a)
	archsimd.ClearAVXUpperBits()
	return max(max(max(a[0], a[1]), max(a[2], a[3])), max(max(a[4], a[5]), max(a[6], a[7])))
}

// attnPVAVX2 stores in red[8d : 8d+8] the lane sums of p·vt[d], four d at a time.
func attnPVAVX2(pp, vp unsafe.Pointer, hd, ldk int, red *[smallHDMax * 8]float32) {
	row := 4 * ldk
	d := 0
	for ; d+4 <= hd; d += 4 {
		v0 := unsafe.Add(vp, d*row)
		a0, a1, a2, a3 := f8{}, f8{}, f8{}, f8{}
		for off := 0; off < row; off += 32 {
			e := ld8(pp, off)
			a0 = e.Mul(ld8(v0, off)).Add(a0)
			a1 = e.Mul(ld8(v0, row+off)).Add(a1)
			a2 = e.Mul(ld8(v0, 2*row+off)).Add(a2)
			a3 = e.Mul(ld8(v0, 3*row+off)).Add(a3)
		}
		a0.StoreArray((*[8]float32)(red[8*d:]))
		a1.StoreArray((*[8]float32)(red[8*d+8:]))
		a2.StoreArray((*[8]float32)(red[8*d+16:]))
		a3.StoreArray((*[8]float32)(red[8*d+24:]))
	}
	for ; d < hd; d++ {
		v0 := unsafe.Add(vp, d*row)
		a0 := f8{}
		for off := 0; off < row; off += 32 {
			a0 = ld8(pp, off).Mul(ld8(v0, off)).Add(a0)
		}
		a0.StoreArray((*[8]float32)(red[8*d:]))
	}
	archsimd.ClearAVXUpperBits()
}

// attnRowsAVX2 computes the scores of four query rows at a time (each K vector loaded once for four
// independent FMA chains), then each row's exp and P·V.
func attnRowsAVX2(a *Attention, b, h, i0, i1 int, kt, vt, vr, p []float32, ldk int) {
	hd := a.HeadDim
	_, _, _ = kt[(hd+1)*ldk-1], vt[hd*ldk-1], p[4*ldk+4*smallHD*8-1]
	// P·V lane sums live in p's tail (a local array would be zeroed on every call).
	red := (*[smallHDMax * 8]float32)(p[4*ldk:])
	var mx [4 * 8]float32
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
			qp[r] = unsafe.Pointer(&a.Q.at(b, i+min(r, nr-1), h)[hd-1])
			qp[r] = unsafe.Add(qp[r], -4*(hd-1))
		}
		attnScores4AVX2(&qp, unsafe.Pointer(&kt[0]), unsafe.Pointer(&p[0]), hd, ldk, a.Scale, &mx)
		var inv [4]float32
		for r := 0; r < nr; r++ {
			x := mx[8*r : 8*r+8]
			m := max(max(max(x[0], x[1]), max(x[2], x[3])), max(max(x[4], x[5]), max(x[6], x[7])))
			pr := p[r*ldk : (r+1)*ldk]
			inv[r] = softmaxWeights(pr, m)
			if a.Probs != nil {
				vscaleFlush(a.probsRow(b, h, i+r), pr[:a.Lk], inv[r])
			}
		}
		if !pvRows && nr == 4 && hd <= smallHD {
			// Four rows' P·V together: each V vector loaded once for four rows.
			red4 := (*[4 * smallHD * 8]float32)(p[4*ldk:])
			attnPV4AVX2(unsafe.Pointer(&p[0]), unsafe.Pointer(&vt[0]), hd, ldk, red4)
			for r := 0; r < 4; r++ {
				out := a.Out.at(b, i+r, h)[:hd]
				for d := range out {
					x := (*[8]float32)(red4[(r*smallHD+d)*8:])
					out[d] = ((x[0] + x[1]) + (x[2] + x[3]) + ((x[4] + x[5]) + (x[6] + x[7]))) * inv[r]
				}
			}
			continue
		}
		for r := 0; r < nr; r++ {
			pr := p[r*ldk : (r+1)*ldk]
			out := a.Out.at(b, i+r, h)[:hd]
			if pvRows {
				attnPVRowsAVX2(unsafe.Pointer(&out[0]), unsafe.Pointer(&pr[0]), vp, ldv, a.Lk, hd, inv[r])
				continue
			}
			attnPVAVX2(unsafe.Pointer(&pr[0]), unsafe.Pointer(&vt[0]), hd, ldk, red)
			for d := range out {
				x := (*[8]float32)(red[d*8:])
				out[d] = ((x[0] + x[1]) + (x[2] + x[3]) + ((x[4] + x[5]) + (x[6] + x[7]))) * inv[r]
			}
		}
	}
}

// attnPV4AVX2 stores in red[8(r·smallHD+d) : +8] the lane sums of p_r·vt[d] for the four rows r of p (rows of
// ldk), two d at a time (eight accumulators).
func attnPV4AVX2(pp, vp unsafe.Pointer, hd, ldk int, red *[4 * smallHD * 8]float32) {
	row := 4 * ldk
	p1, p2, p3 := unsafe.Add(pp, row), unsafe.Add(pp, 2*row), unsafe.Add(pp, 3*row)
	d := 0
	for ; d+2 <= hd; d += 2 {
		v0 := unsafe.Add(vp, d*row)
		v1 := unsafe.Add(v0, row)
		var a0, a1, a2, a3, b0, b1, b2, b3 f8
		for off := 0; off < row; off += 32 {
			x, y := ld8(v0, off), ld8(v1, off)
			e := ld8(pp, off)
			a0, b0 = e.Mul(x).Add(a0), e.Mul(y).Add(b0)
			e = ld8(p1, off)
			a1, b1 = e.Mul(x).Add(a1), e.Mul(y).Add(b1)
			e = ld8(p2, off)
			a2, b2 = e.Mul(x).Add(a2), e.Mul(y).Add(b2)
			e = ld8(p3, off)
			a3, b3 = e.Mul(x).Add(a3), e.Mul(y).Add(b3)
		}
		a0.StoreArray((*[8]float32)(red[8*d:]))
		b0.StoreArray((*[8]float32)(red[8*d+8:]))
		a1.StoreArray((*[8]float32)(red[8*(smallHD+d):]))
		b1.StoreArray((*[8]float32)(red[8*(smallHD+d)+8:]))
		a2.StoreArray((*[8]float32)(red[8*(2*smallHD+d):]))
		b2.StoreArray((*[8]float32)(red[8*(2*smallHD+d)+8:]))
		a3.StoreArray((*[8]float32)(red[8*(3*smallHD+d):]))
		b3.StoreArray((*[8]float32)(red[8*(3*smallHD+d)+8:]))
	}
	for ; d < hd; d++ {
		v0 := unsafe.Add(vp, d*row)
		var a0, a1, a2, a3 f8
		for off := 0; off < row; off += 32 {
			x := ld8(v0, off)
			a0 = ld8(pp, off).Mul(x).Add(a0)
			a1 = ld8(p1, off).Mul(x).Add(a1)
			a2 = ld8(p2, off).Mul(x).Add(a2)
			a3 = ld8(p3, off).Mul(x).Add(a3)
		}
		a0.StoreArray((*[8]float32)(red[8*d:]))
		a1.StoreArray((*[8]float32)(red[8*(smallHD+d):]))
		a2.StoreArray((*[8]float32)(red[8*(2*smallHD+d):]))
		a3.StoreArray((*[8]float32)(red[8*(3*smallHD+d):]))
	}
	archsimd.ClearAVXUpperBits()
}

// attnScores4AVX2 writes the scores of four query rows into p (rows of ldk) and their lane maxima into mx.
func attnScores4AVX2(q *[4]unsafe.Pointer, kp, pp unsafe.Pointer, hd, ldk int, scale float32, mx *[4 * 8]float32) {
	sc := splat(scale)
	m0 := splat(float32(math.Inf(-1)))
	m1, m2, m3 := m0, m0, m0
	q0, q1, q2, q3 := q[0], q[1], q[2], q[3]
	row := 4 * ldk
	bias := unsafe.Add(kp, hd*row)
	for off := 0; off < row; off += 32 {
		k := ld8(kp, off)
		a0 := bc8(q0, 0).Mul(k)
		a1 := bc8(q1, 0).Mul(k)
		a2 := bc8(q2, 0).Mul(k)
		a3 := bc8(q3, 0).Mul(k)
		kd := unsafe.Add(kp, off)
		for d := 4; d < 4*hd; d += 4 {
			kd = unsafe.Add(kd, row)
			k := ld8(kd, 0)
			a0 = bc8(q0, d).Mul(k).Add(a0)
			a1 = bc8(q1, d).Mul(k).Add(a1)
			a2 = bc8(q2, d).Mul(k).Add(a2)
			a3 = bc8(q3, d).Mul(k).Add(a3)
		}
		bv := ld8(bias, off)
		a0 = a0.Mul(sc).Add(bv)
		a1 = a1.Mul(sc).Add(bv)
		a2 = a2.Mul(sc).Add(bv)
		a3 = a3.Mul(sc).Add(bv)
		st8(pp, off, a0)
		st8(pp, row+off, a1)
		st8(pp, 2*row+off, a2)
		st8(pp, 3*row+off, a3)
		m0, m1, m2, m3 = m0.Max(a0), m1.Max(a1), m2.Max(a2), m3.Max(a3)
	}
	m0.StoreArray((*[8]float32)(mx[0:]))
	m1.StoreArray((*[8]float32)(mx[8:]))
	m2.StoreArray((*[8]float32)(mx[16:]))
	m3.StoreArray((*[8]float32)(mx[24:]))
	archsimd.ClearAVXUpperBits()
}

// attnPVRowsAVX2 writes out[d] = inv·Σ_{j<lk} p[j]·V[j][d] (V rows ldv bytes apart), four vectors of d at a
// time, the keys added in order.
func attnPVRowsAVX2(op, pp, vp unsafe.Pointer, ldv, lk, hd int, inv float32) {
	iv := splat(inv)
	d := 0
	for ; d+32 <= hd; d += 32 {
		a0, a1, a2, a3 := f8{}, f8{}, f8{}, f8{}
		v := unsafe.Add(vp, 4*d)
		for j, o := 0, 0; j < lk; j, o = j+1, o+ldv {
			e := bc8(pp, 4*j)
			a0 = e.Mul(ld8(v, o)).Add(a0)
			a1 = e.Mul(ld8(v, o+32)).Add(a1)
			a2 = e.Mul(ld8(v, o+64)).Add(a2)
			a3 = e.Mul(ld8(v, o+96)).Add(a3)
		}
		st8(op, 4*d, a0.Mul(iv))
		st8(op, 4*d+32, a1.Mul(iv))
		st8(op, 4*d+64, a2.Mul(iv))
		st8(op, 4*d+96, a3.Mul(iv))
	}
	for ; d+8 <= hd; d += 8 {
		a0 := f8{}
		v := unsafe.Add(vp, 4*d)
		for j, o := 0, 0; j < lk; j, o = j+1, o+ldv {
			a0 = bc8(pp, 4*j).Mul(ld8(v, o)).Add(a0)
		}
		st8(op, 4*d, a0.Mul(iv))
	}
	archsimd.ClearAVXUpperBits()
	pvRowsTail(op, pp, vp, ldv, lk, d, hd, inv)
}
