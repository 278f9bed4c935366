//go:build goexperiment.simd && wasm

package kernels

import (
	"math"
	"simd/archsimd"
)

// WebAssembly SIMD128 versions of the elementwise kernels (generated from math_amd64.go: four lanes, Mul+Add
// in place of FMA).

func initMathWasm() {
	vexp = vexpWasm
	verf = verfWasm
	vlogistic = vlogisticWasm
	vtanh = vtanhWasm
	vgelu = vgeluWasm
	vquickgelu = vquickgeluWasm
	vadd = vaddWasm
	vsub = vsubWasm
	vmul = vmulWasm
	vdiv = vdivWasm
	vaddScalar = vaddScalarWasm
	vmulScalar = vmulScalarWasm
	vsum = vsumWasm
	vmax = vmaxWasm
	vexpSubSum = vexpSubSumWasm
	vmeanVar = vmeanVarWasm
	vnormAffine = vnormAffineWasm
}

type f4 = archsimd.Float32x4

func bc(x float32) f4 { return archsimd.BroadcastFloat32x4(x) }

func exp4(x0 f4) f4 {
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
	b127 := archsimd.BroadcastInt32x4(127)
	s1 := n1.Add(b127).ShiftAllLeft(23).ToBits().BitsToFloat32()
	s2 := n2.Add(b127).ShiftAllLeft(23).ToBits().BitsToFloat32()
	// NaN in, NaN out (Max/Min would have turned it into a bound).
	return e.Mul(s1).Mul(s2).IfElse(x0.Equal(x0), x0)
}

func withSignOf(y, x f4) f4 {
	sign := archsimd.BroadcastUint32x4(0x80000000)
	return y.ToBits().Or(x.ToBits().And(sign)).BitsToFloat32()
}

func erf4(x f4) f4 {
	ax := x.Abs()
	one := bc(1)
	t := one.Div(ax.MulAdd(bc(erfP), one))
	p := bc(erfA5).MulAdd(t, bc(erfA4))
	p = p.MulAdd(t, bc(erfA3))
	p = p.MulAdd(t, bc(erfA2))
	p = p.MulAdd(t, bc(erfA1))
	e := exp4(ax.Mul(ax).Neg())
	y := one.Sub(p.Mul(t).Mul(e))
	return withSignOf(y, x)
}

func tanh4(x f4) f4 {
	ax := x.Abs()
	z := x.Mul(x)
	p := bc(tanhT0).MulAdd(z, bc(tanhT1))
	p = p.MulAdd(z, bc(tanhT2))
	p = p.MulAdd(z, bc(tanhT3))
	p = p.MulAdd(z, bc(tanhT4))
	small := x.Mul(z).MulAdd(p, x)
	one := bc(1)
	big := one.Sub(bc(2).Div(exp4(ax.Add(ax)).Add(one)))
	big = withSignOf(big, x)
	return small.IfElse(ax.Less(bc(0.625)), big)
}

func logistic4(x f4) f4 { one := bc(1); return one.Div(one.Add(exp4(x.Neg()))) }

func gelu4(x f4) f4 {
	h := x.Mul(bc(0.5))
	return h.MulAdd(erf4(x.Mul(bc(sqrtHalf))), h)
}

func quickgelu4(x f4) f4 { return x.Div(bc(1).Add(exp4(x.Mul(bc(-1.702))))) }

func ld(s []float32, i int) f4    { return archsimd.LoadFloat32x4Array((*[4]float32)(s[i : i+4])) }
func st(v f4, s []float32, i int) { v.StoreArray((*[4]float32)(s[i : i+4])) }

func vexpWasm(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		st(exp4(ld(src, i)), dst, i)
	}
	vexpGeneric(dst[i:], src[i:])
}

func verfWasm(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		st(erf4(ld(src, i)), dst, i)
	}
	verfGeneric(dst[i:], src[i:])
}

func vtanhWasm(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		st(tanh4(ld(src, i)), dst, i)
	}
	vtanhGeneric(dst[i:], src[i:])
}

func vlogisticWasm(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		st(logistic4(ld(src, i)), dst, i)
	}
	vlogisticGeneric(dst[i:], src[i:])
}

func vgeluWasm(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		st(gelu4(ld(src, i)), dst, i)
	}
	vgeluGeneric(dst[i:], src[i:])
}

func vquickgeluWasm(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		st(quickgelu4(ld(src, i)), dst, i)
	}
	vquickgeluGeneric(dst[i:], src[i:])
}

func vaddWasm(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		st(ld(a, i).Add(ld(b, i)), dst, i)
	}
	vaddGeneric(dst[i:], a[i:], b[i:])
}

func vsubWasm(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		st(ld(a, i).Sub(ld(b, i)), dst, i)
	}
	vsubGeneric(dst[i:], a[i:], b[i:])
}

func vmulWasm(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		st(ld(a, i).Mul(ld(b, i)), dst, i)
	}
	vmulGeneric(dst[i:], a[i:], b[i:])
}

func vdivWasm(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		st(ld(a, i).Div(ld(b, i)), dst, i)
	}
	vdivGeneric(dst[i:], a[i:], b[i:])
}

func vaddScalarWasm(dst, a []float32, s float32) {
	a = a[:len(dst)]
	v := bc(s)
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		st(ld(a, i).Add(v), dst, i)
	}
	vaddScalarGeneric(dst[i:], a[i:], s)
}

func vmulScalarWasm(dst, a []float32, s float32) {
	a = a[:len(dst)]
	v := bc(s)
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		st(ld(a, i).Mul(v), dst, i)
	}
	vmulScalarGeneric(dst[i:], a[i:], s)
}

func hsum64(v f4) float64 {
	var a [4]float32
	v.StoreArray(&a)
	return (float64(a[0]) + float64(a[1])) + (float64(a[2]) + float64(a[3]))
}

// sumBlock: float32 lanes are flushed into a float64 total every sumBlock elements, which keeps sums of
// thousands of values within ~1e-7 relative.
const sumBlock = 128

func vsumWasm(x []float32) float32 {
	var total float64
	i := 0
	for i+4 <= len(x) {
		end := min(len(x)&^3, i+sumBlock)
		acc := bc(0)
		for ; i < end; i += 4 {
			acc = acc.Add(ld(x, i))
		}
		total += hsum64(acc)
	}
	for ; i < len(x); i++ {
		total += float64(x[i])
	}
	return float32(total)
}

func vmaxWasm(x []float32) float32 {
	m := float32(math.Inf(-1))
	i := 0
	if len(x) >= 4 {
		acc := ld(x, 0)
		for i = 4; i+4 <= len(x); i += 4 {
			acc = acc.Max(ld(x, i))
		}
		var a [4]float32
		acc.StoreArray(&a)
		for _, v := range a {
			m = max(m, v)
		}
	}
	for ; i < len(x); i++ {
		m = max(m, x[i])
	}
	return m
}

func vexpSubSumWasm(x []float32, m float32) float32 {
	var total float64
	mv := bc(m)
	i := 0
	for i+4 <= len(x) {
		end := min(len(x)&^3, i+sumBlock)
		acc := bc(0)
		for ; i < end; i += 4 {
			e := exp4(ld(x, i).Sub(mv))
			st(e, x, i)
			acc = acc.Add(e)
		}
		total += hsum64(acc)
	}
	for ; i < len(x); i++ {
		e := exp32(x[i] - m)
		x[i] = e
		total += float64(e)
	}
	return float32(total)
}

func vmeanVarWasm(x []float32) (mean, variance float32) {
	n := float64(len(x))
	mean = float32(float64(vsumWasm(x)) / n)
	mv := bc(mean)
	var total float64
	i := 0
	for i+4 <= len(x) {
		end := min(len(x)&^3, i+sumBlock)
		acc := bc(0)
		for ; i < end; i += 4 {
			d := ld(x, i).Sub(mv)
			acc = d.MulAdd(d, acc)
		}
		total += hsum64(acc)
	}
	for ; i < len(x); i++ {
		d := x[i] - mean
		total += float64(d * d)
	}
	return mean, float32(total / n)
}

func vnormAffineWasm(dst, x []float32, mean, inv float32, gamma, beta []float32) {
	x = x[:len(dst)]
	mv, iv := bc(mean), bc(inv)
	i := 0
	switch {
	case gamma != nil && beta != nil:
		gamma, beta = gamma[:len(dst)], beta[:len(dst)]
		for ; i+4 <= len(dst); i += 4 {
			y := ld(x, i).Sub(mv).Mul(iv)
			st(y.MulAdd(ld(gamma, i), ld(beta, i)), dst, i)
		}
		vnormAffineGeneric(dst[i:], x[i:], mean, inv, gamma[i:], beta[i:])
	case gamma != nil:
		gamma = gamma[:len(dst)]
		for ; i+4 <= len(dst); i += 4 {
			st(ld(x, i).Sub(mv).Mul(iv).Mul(ld(gamma, i)), dst, i)
		}
		vnormAffineGeneric(dst[i:], x[i:], mean, inv, gamma[i:], nil)
	case beta != nil:
		beta = beta[:len(dst)]
		for ; i+4 <= len(dst); i += 4 {
			st(ld(x, i).Sub(mv).MulAdd(iv, ld(beta, i)), dst, i)
		}
		vnormAffineGeneric(dst[i:], x[i:], mean, inv, nil, beta[i:])
	default:
		for ; i+4 <= len(dst); i += 4 {
			st(ld(x, i).Sub(mv).Mul(iv), dst, i)
		}
		vnormAffineGeneric(dst[i:], x[i:], mean, inv, nil, nil)
	}
}
