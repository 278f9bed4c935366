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
	n4 := len(dst) &^ 3
	expSubLoopWasm(dst[:n4], src[:n4], 0)
	vexpGeneric(dst[n4:], src[n4:])
}

// expSubLoopWasm sets dst[i] = exp(src[i] - m) for len(dst) (a multiple of 4) values and returns their sum:
// exp4 written out in the loop with its constants hoisted (exp4 is too big to inline).
func expSubLoopWasm(dst, src []float32, m float32) float64 {
	src = src[:len(dst)]
	mv := bc(m)
	hi, lo, l2e, c1, c2 := bc(expHi), bc(expLo), bc(log2e), bc(-ln2Hi), bc(-ln2Lo)
	p0, p1, p2, p3, p4, p5, one := bc(expP0), bc(expP1), bc(expP2), bc(expP3), bc(expP4), bc(expP5), bc(1)
	b127 := archsimd.BroadcastInt32x4(127)
	acc := f4{}
	for i := 0; i+4 <= len(dst); i += 4 {
		x0 := ld(src, i).Sub(mv)
		x := x0.Max(lo).Min(hi)
		n := x.Mul(l2e).Round()
		r := n.MulAdd(c1, x)
		r = n.MulAdd(c2, r)
		p := p0.MulAdd(r, p1)
		p = p.MulAdd(r, p2)
		p = p.MulAdd(r, p3)
		p = p.MulAdd(r, p4)
		p = p.MulAdd(r, p5)
		e := p.MulAdd(r.Mul(r), r.Add(one))
		ni := n.ConvertToInt32()
		n1 := ni.ShiftAllRight(1)
		n2 := ni.Sub(n1)
		s1 := n1.Add(b127).ShiftAllLeft(23).ToBits().BitsToFloat32()
		s2 := n2.Add(b127).ShiftAllLeft(23).ToBits().BitsToFloat32()
		e = e.Mul(s1).Mul(s2).IfElse(x0.Equal(x0), x0)
		st(e, dst, i)
		acc = acc.Add(e)
	}
	return hsum64(acc)
}

// erfExp4 is erf4 given e = exp(-x²): small enough to inline, so the loops below compute the exps of a chunk
// with expSubLoopWasm (exp written out) and then finish erf without a call per vector.
func erfExp4(x, e f4) f4 {
	ax := x.Abs()
	one := bc(1)
	t := one.Div(ax.MulAdd(bc(erfP), one))
	p := bc(erfA5).MulAdd(t, bc(erfA4))
	p = p.MulAdd(t, bc(erfA3))
	p = p.MulAdd(t, bc(erfA2))
	p = p.MulAdd(t, bc(erfA1))
	return withSignOf(one.Sub(p.Mul(t).Mul(e)), x)
}

// chunkW: the erf / GELU loops work through chunkW values at a time (exps first, into a stack buffer).
const chunkW = 256

func verfWasm(dst, src []float32) {
	src = src[:len(dst)]
	n4 := len(dst) &^ 3
	var eb [chunkW]float32
	for c := 0; c < n4; c += chunkW {
		n := min(chunkW, n4-c)
		e := eb[:n]
		s := src[c : c+n]
		for i := 0; i < n; i += 4 {
			x := ld(s, i)
			st(x.Mul(x).Neg(), e, i)
		}
		expSubLoopWasm(e, e, 0)
		d := dst[c : c+n]
		for i := 0; i < n; i += 4 {
			st(erfExp4(ld(s, i), ld(e, i)), d, i)
		}
	}
	verfGeneric(dst[n4:], src[n4:])
}

// geluChunkWasm sets d[i] = GELU(s[i]) for len(d) (a multiple of 4) values; e is scratch of len(d).
func geluChunkWasm(d, s, e []float32) {
	n := len(d)
	s = s[:n]
	e = e[:n]
	rh := bc(sqrtHalf)
	for i := 0; i < n; i += 4 {
		z := ld(s, i).Mul(rh)
		st(z.Mul(z).Neg(), e, i)
	}
	expSubLoopWasm(e, e, 0)
	half := bc(0.5)
	for i := 0; i < n; i += 4 {
		x := ld(s, i)
		h := x.Mul(half)
		st(h.MulAdd(erfExp4(x.Mul(rh), ld(e, i)), h), d, i)
	}
}

// quickgeluChunkWasm sets d[i] = QuickGELU(s[i]) for len(d) (a multiple of 4) values; e is scratch of len(d).
func quickgeluChunkWasm(d, s, e []float32) {
	n := len(d)
	s = s[:n]
	e = e[:n]
	k := bc(-1.702)
	for i := 0; i < n; i += 4 {
		st(ld(s, i).Mul(k), e, i)
	}
	expSubLoopWasm(e, e, 0)
	one := bc(1)
	for i := 0; i < n; i += 4 {
		st(ld(s, i).Div(one.Add(ld(e, i))), d, i)
	}
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
	n4 := len(dst) &^ 3
	var eb [chunkW]float32
	for c := 0; c < n4; c += chunkW {
		n := min(chunkW, n4-c)
		geluChunkWasm(dst[c:c+n], src[c:c+n], eb[:n])
	}
	vgeluGeneric(dst[n4:], src[n4:])
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
	i := 0
	for i+4 <= len(x) {
		end := min(len(x)&^3, i+sumBlock)
		total += expSubLoopWasm(x[i:end], x[i:end], m)
		i = end
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
