//go:build goexperiment.simd && amd64

package kernels

import (
	"math"
	"simd/archsimd"
	"unsafe"
)

func init() {
	if hasAVX2FMA {
		attnRow = attnRowAVX2
	}
}

func st8(p unsafe.Pointer, off int, v f8) { v.StoreArray((*[8]float32)(unsafe.Add(p, off))) }

// expNeg8 is exp for x ≤ 0 (softmax weights): the Cephes polynomial of exp8 without the overflow half, NaN
// handling and Round: x is clamped at -87.33 (exp ≈ 1.2e-38, the smallest normal, so -Inf gives ≈1e-38 rather
// than 0), n = round(x·log2e) comes from the bits of x·log2e + 1.5·2²³ and 2ⁿ from n's bits shifted into the
// exponent field.
func expNeg8(x f8) f8 {
	x = x.Max(bc(-87.33654))
	t := x.MulAdd(bc(log2e), bc(12582912))
	n := t.Sub(bc(12582912))
	r := n.MulAdd(bc(-ln2Hi), x)
	r = n.MulAdd(bc(-ln2Lo), r)
	p := bc(expP0).MulAdd(r, bc(expP1))
	p = p.MulAdd(r, bc(expP2))
	p = p.MulAdd(r, bc(expP3))
	p = p.MulAdd(r, bc(expP4))
	p = p.MulAdd(r, bc(expP5))
	e := p.MulAdd(r.Mul(r), r.Add(bc(1)))
	s := t.AsInt32x8().ShiftAllLeft(23).Add(archsimd.BroadcastInt32x8(127 << 23)).AsFloat32x8()
	return e.Mul(s)
}

func attnRowAVX2(out, q, kt, vt, p []float32, hd, ldk int, scale float32) {
	_, _, _, _ = q[hd-1], kt[(hd+1)*ldk-1], vt[hd*ldk-1], p[ldk-1]
	var red [smallHD * 8]float32
	m := attnScoresAVX2(unsafe.Pointer(&q[0]), unsafe.Pointer(&kt[0]), unsafe.Pointer(&p[0]), hd, ldk, scale)
	if math.IsInf(float64(m), -1) {
		m = 0
	}
	var sum float64
	for j := 0; j < ldk; j += sumBlock {
		sum += attnExpAVX2(unsafe.Pointer(&p[j]), min(sumBlock, ldk-j), m)
	}
	attnPVAVX2(unsafe.Pointer(&p[0]), unsafe.Pointer(&vt[0]), hd, ldk, &red)
	inv := float32(1 / sum)
	out = out[:hd]
	for d := range out {
		r := (*[8]float32)(red[d*8:])
		out[d] = ((r[0] + r[1]) + (r[2] + r[3]) + ((r[4] + r[5]) + (r[6] + r[7]))) * inv
	}
}

// attnScoresAVX2 writes the row's scores into p and returns their maximum.
func attnScoresAVX2(qp, kp, pp unsafe.Pointer, hd, ldk int, scale float32) float32 {
	sc := bc(scale)
	mx := bc(float32(math.Inf(-1)))
	row := 4 * ldk
	bias := unsafe.Add(kp, hd*row)
	for off := 0; off < row; off += 32 {
		acc := bc8(qp, 0).Mul(ld8(kp, off))
		for d := 1; d < hd; d++ {
			acc = bc8(qp, 4*d).MulAdd(ld8(kp, d*row+off), acc)
		}
		s := acc.MulAdd(sc, ld8(bias, off))
		st8(pp, off, s)
		mx = mx.Max(s)
	}
	var a [8]float32
	mx.StoreArray(&a)
	archsimd.ClearAVXUpperBits()
	return max(max(max(a[0], a[1]), max(a[2], a[3])), max(max(a[4], a[5]), max(a[6], a[7])))
}

// attnExpAVX2 replaces the n (a multiple of 8) scores at pp by exp(s - m) and returns their sum.
func attnExpAVX2(pp unsafe.Pointer, n int, m float32) float64 {
	mv := bc(m)
	acc := f8{}
	for off := 0; off < 4*n; off += 32 {
		e := expNeg8(ld8(pp, off).Sub(mv))
		st8(pp, off, e)
		acc = acc.Add(e)
	}
	return hsum64(acc)
}

// attnPVAVX2 stores in red[8d : 8d+8] the lane sums of p·vt[d], four d at a time.
func attnPVAVX2(pp, vp unsafe.Pointer, hd, ldk int, red *[smallHD * 8]float32) {
	row := 4 * ldk
	d := 0
	for ; d+4 <= hd; d += 4 {
		v0 := unsafe.Add(vp, d*row)
		a0, a1, a2, a3 := f8{}, f8{}, f8{}, f8{}
		for off := 0; off < row; off += 32 {
			e := ld8(pp, off)
			a0 = e.MulAdd(ld8(v0, off), a0)
			a1 = e.MulAdd(ld8(v0, row+off), a1)
			a2 = e.MulAdd(ld8(v0, 2*row+off), a2)
			a3 = e.MulAdd(ld8(v0, 3*row+off), a3)
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
			a0 = ld8(pp, off).MulAdd(ld8(v0, off), a0)
		}
		a0.StoreArray((*[8]float32)(red[8*d:]))
	}
	archsimd.ClearAVXUpperBits()
}
