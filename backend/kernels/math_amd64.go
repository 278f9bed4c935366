//go:build goexperiment.simd && amd64

package kernels

import (
	"math"
	"simd/archsimd"
)

// AVX2 versions of the elementwise kernels: the same algorithms as math_generic.go, eight lanes at a time,
// with the scalar versions for the tails. Vector constants are made inside the functions (a package-level
// vector would execute AVX2 at init on CPUs without it).

// Every function clears the upper YMM halves (VZEROUPPER) before scalar code runs: on Intel cores SSE code
// after dirty AVX state pays a transition penalty (softmax rows were 50× slower without it).
func initMathAVX2() {
	vexp = vexpAVX2
	verf = verfAVX2
	vlogistic = vlogisticAVX2
	vtanh = vtanhAVX2
	vgelu = vgeluAVX2
	vquickgelu = vquickgeluAVX2
	vadd = vaddAVX2
	vsub = vsubAVX2
	vmul = vmulAVX2
	vdiv = vdivAVX2
	vaddScalar = vaddScalarAVX2
	vmulScalar = vmulScalarAVX2
	vsum = vsumAVX2
	vmax = vmaxAVX2
	vexpSubSum = vexpSubSumAVX2
	vmeanVar = vmeanVarAVX2
	vnormAffine = vnormAffineAVX2
}

func bc(x float32) f8 { return archsimd.BroadcastFloat32x8(x) }

func exp8(x0 f8) f8 {
	x := x0.Max(bc(expLo)).Min(bc(expHi))
	n := x.Mul(bc(log2e)).Round()
	r := n.MulAdd(bc(-ln2Hi), x)
	r = n.MulAdd(bc(-ln2Lo), r)
	p := bc(expP0).MulAdd(r, bc(expP1))
	p = p.MulAdd(r, bc(expP2))
	p = p.MulAdd(r, bc(expP3))
	p = p.MulAdd(r, bc(expP4))
	p = p.MulAdd(r, bc(expP5))
	e := p.MulAdd(r.Mul(r), r.Add(bc(1)))
	ni := n.ConvertToInt32()
	n1 := ni.ShiftAllRight(1)
	n2 := ni.Sub(n1)
	b127 := archsimd.BroadcastInt32x8(127)
	s1 := n1.Add(b127).ShiftAllLeft(23).AsFloat32x8()
	s2 := n2.Add(b127).ShiftAllLeft(23).AsFloat32x8()
	// NaN in, NaN out (Max/Min would have turned it into a bound).
	return e.Mul(s1).Mul(s2).IfElse(x0.Equal(x0), x0)
}

func withSignOf(y, x f8) f8 {
	sign := archsimd.BroadcastUint32x8(0x80000000)
	return y.ToBits().Or(x.ToBits().And(sign)).BitsToFloat32()
}

func erf8(x f8) f8 {
	ax := x.Abs()
	one := bc(1)
	t := one.Div(ax.MulAdd(bc(erfP), one))
	p := bc(erfA5).MulAdd(t, bc(erfA4))
	p = p.MulAdd(t, bc(erfA3))
	p = p.MulAdd(t, bc(erfA2))
	p = p.MulAdd(t, bc(erfA1))
	e := exp8(ax.Mul(ax).Neg())
	y := one.Sub(p.Mul(t).Mul(e))
	return withSignOf(y, x)
}

func tanh8(x f8) f8 {
	ax := x.Abs()
	z := x.Mul(x)
	p := bc(tanhT0).MulAdd(z, bc(tanhT1))
	p = p.MulAdd(z, bc(tanhT2))
	p = p.MulAdd(z, bc(tanhT3))
	p = p.MulAdd(z, bc(tanhT4))
	small := x.Mul(z).MulAdd(p, x)
	one := bc(1)
	big := one.Sub(bc(2).Div(exp8(ax.Add(ax)).Add(one)))
	big = withSignOf(big, x)
	return small.IfElse(ax.Less(bc(0.625)), big)
}

func logistic8(x f8) f8 { one := bc(1); return one.Div(one.Add(exp8(x.Neg()))) }

func gelu8(x f8) f8 {
	h := x.Mul(bc(0.5))
	return h.MulAdd(erf8(x.Mul(bc(sqrtHalf))), h)
}

func quickgelu8(x f8) f8 { return x.Div(bc(1).Add(exp8(x.Mul(bc(-1.702))))) }

func ld(s []float32, i int) f8    { return archsimd.LoadFloat32x8Array((*[8]float32)(s[i : i+8])) }
func st(v f8, s []float32, i int) { v.StoreArray((*[8]float32)(s[i : i+8])) }

func vexpAVX2(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		st(exp8(ld(src, i)), dst, i)
	}
	archsimd.ClearAVXUpperBits()
	vexpGeneric(dst[i:], src[i:])
}

func verfAVX2(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		st(erf8(ld(src, i)), dst, i)
	}
	archsimd.ClearAVXUpperBits()
	verfGeneric(dst[i:], src[i:])
}

func vtanhAVX2(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		st(tanh8(ld(src, i)), dst, i)
	}
	archsimd.ClearAVXUpperBits()
	vtanhGeneric(dst[i:], src[i:])
}

func vlogisticAVX2(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		st(logistic8(ld(src, i)), dst, i)
	}
	archsimd.ClearAVXUpperBits()
	vlogisticGeneric(dst[i:], src[i:])
}

func vgeluAVX2(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		st(gelu8(ld(src, i)), dst, i)
	}
	archsimd.ClearAVXUpperBits()
	vgeluGeneric(dst[i:], src[i:])
}

func vquickgeluAVX2(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		st(quickgelu8(ld(src, i)), dst, i)
	}
	archsimd.ClearAVXUpperBits()
	vquickgeluGeneric(dst[i:], src[i:])
}

func vaddAVX2(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		st(ld(a, i).Add(ld(b, i)), dst, i)
	}
	archsimd.ClearAVXUpperBits()
	vaddGeneric(dst[i:], a[i:], b[i:])
}

func vsubAVX2(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		st(ld(a, i).Sub(ld(b, i)), dst, i)
	}
	archsimd.ClearAVXUpperBits()
	vsubGeneric(dst[i:], a[i:], b[i:])
}

func vmulAVX2(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		st(ld(a, i).Mul(ld(b, i)), dst, i)
	}
	archsimd.ClearAVXUpperBits()
	vmulGeneric(dst[i:], a[i:], b[i:])
}

func vdivAVX2(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		st(ld(a, i).Div(ld(b, i)), dst, i)
	}
	archsimd.ClearAVXUpperBits()
	vdivGeneric(dst[i:], a[i:], b[i:])
}

func vaddScalarAVX2(dst, a []float32, s float32) {
	a = a[:len(dst)]
	v := bc(s)
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		st(ld(a, i).Add(v), dst, i)
	}
	archsimd.ClearAVXUpperBits()
	vaddScalarGeneric(dst[i:], a[i:], s)
}

func vmulScalarAVX2(dst, a []float32, s float32) {
	a = a[:len(dst)]
	v := bc(s)
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		st(ld(a, i).Mul(v), dst, i)
	}
	archsimd.ClearAVXUpperBits()
	vmulScalarGeneric(dst[i:], a[i:], s)
}

// hsum64 sums the lanes in float64; it clears the upper YMM halves first, so it must be the last vector
// operation of its caller.
func hsum64(v f8) float64 {
	var a [8]float32
	v.StoreArray(&a)
	archsimd.ClearAVXUpperBits()
	return (float64(a[0]) + float64(a[1]) + float64(a[2]) + float64(a[3])) +
		(float64(a[4]) + float64(a[5]) + float64(a[6]) + float64(a[7]))
}

// sumBlock: float32 lanes are flushed into a float64 total every sumBlock elements, which keeps sums of
// thousands of values within ~1e-7 relative. Each block is its own function that ends with VZEROUPPER, so
// that the callers' scalar float64 work never runs with dirty upper YMM state.
const sumBlock = 128

func sumBlockAVX2(x []float32) float64 {
	acc := f8{}
	for i := 0; i+8 <= len(x); i += 8 {
		acc = acc.Add(ld(x, i))
	}
	return hsum64(acc)
}

func expSubBlockAVX2(x []float32, m float32) float64 {
	mv := bc(m)
	acc := f8{}
	for i := 0; i+8 <= len(x); i += 8 {
		e := exp8(ld(x, i).Sub(mv))
		st(e, x, i)
		acc = acc.Add(e)
	}
	return hsum64(acc)
}

func sqDevBlockAVX2(x []float32, mean float32) float64 {
	mv := bc(mean)
	acc := f8{}
	for i := 0; i+8 <= len(x); i += 8 {
		d := ld(x, i).Sub(mv)
		acc = d.MulAdd(d, acc)
	}
	return hsum64(acc)
}

func vsumAVX2(x []float32) float32 {
	n8 := len(x) &^ 7
	var total float64
	for i := 0; i < n8; i += sumBlock {
		total += sumBlockAVX2(x[i:min(n8, i+sumBlock)])
	}
	for _, v := range x[n8:] {
		total += float64(v)
	}
	return float32(total)
}

func vmaxAVX2(x []float32) float32 {
	m := float32(math.Inf(-1))
	n8 := len(x) &^ 7
	if n8 > 0 {
		m = maxBlockAVX2(x[:n8])
	}
	for _, v := range x[n8:] {
		m = max(m, v)
	}
	return m
}

func maxBlockAVX2(x []float32) float32 {
	acc := ld(x, 0)
	for i := 8; i+8 <= len(x); i += 8 {
		acc = acc.Max(ld(x, i))
	}
	var a [8]float32
	acc.StoreArray(&a)
	archsimd.ClearAVXUpperBits()
	return max(max(max(a[0], a[1]), max(a[2], a[3])), max(max(a[4], a[5]), max(a[6], a[7])))
}

func vexpSubSumAVX2(x []float32, m float32) float32 {
	n8 := len(x) &^ 7
	var total float64
	for i := 0; i < n8; i += sumBlock {
		total += expSubBlockAVX2(x[i:min(n8, i+sumBlock)], m)
	}
	if n8 < len(x) {
		// The tail through one padded vector: exp(-Inf - m) = 0 adds nothing.
		var pad [8]float32
		for j := range pad {
			pad[j] = float32(math.Inf(-1))
		}
		copy(pad[:], x[n8:])
		total += expSubBlockAVX2(pad[:], m)
		copy(x[n8:], pad[:])
	}
	return float32(total)
}

func vmeanVarAVX2(x []float32) (mean, variance float32) {
	n := float64(len(x))
	mean = float32(float64(vsumAVX2(x)) / n)
	n8 := len(x) &^ 7
	var total float64
	for i := 0; i < n8; i += sumBlock {
		total += sqDevBlockAVX2(x[i:min(n8, i+sumBlock)], mean)
	}
	for _, v := range x[n8:] {
		d := v - mean
		total += float64(d * d)
	}
	return mean, float32(total / n)
}

func vnormAffineAVX2(dst, x []float32, mean, inv float32, gamma, beta []float32) {
	x = x[:len(dst)]
	mv, iv := bc(mean), bc(inv)
	i := 0
	switch {
	case gamma != nil && beta != nil:
		gamma, beta = gamma[:len(dst)], beta[:len(dst)]
		for ; i+8 <= len(dst); i += 8 {
			y := ld(x, i).Sub(mv).Mul(iv)
			st(y.MulAdd(ld(gamma, i), ld(beta, i)), dst, i)
		}
		archsimd.ClearAVXUpperBits()
		vnormAffineGeneric(dst[i:], x[i:], mean, inv, gamma[i:], beta[i:])
	case gamma != nil:
		gamma = gamma[:len(dst)]
		for ; i+8 <= len(dst); i += 8 {
			st(ld(x, i).Sub(mv).Mul(iv).Mul(ld(gamma, i)), dst, i)
		}
		archsimd.ClearAVXUpperBits()
		vnormAffineGeneric(dst[i:], x[i:], mean, inv, gamma[i:], nil)
	case beta != nil:
		beta = beta[:len(dst)]
		for ; i+8 <= len(dst); i += 8 {
			st(ld(x, i).Sub(mv).MulAdd(iv, ld(beta, i)), dst, i)
		}
		archsimd.ClearAVXUpperBits()
		vnormAffineGeneric(dst[i:], x[i:], mean, inv, nil, beta[i:])
	default:
		for ; i+8 <= len(dst); i += 8 {
			st(ld(x, i).Sub(mv).Mul(iv), dst, i)
		}
		archsimd.ClearAVXUpperBits()
		vnormAffineGeneric(dst[i:], x[i:], mean, inv, nil, nil)
	}
}
