//go:build goexperiment.simd && amd64

package kernels

import "simd/archsimd"

// expSubSumExact (exp_exact.go) 8 and 16 lanes at a time: the same rounded operations (Mul then Add, never
// MulAdd), so the same bits as the scalar version.

var _ = func() bool {
	expExactTiers["avx2"] = expSubSumExactAVX2
	expExactTiers["avx512"] = expSubSumExactAVX512
	expExactTiers["avx512-vnni"] = expSubSumExactAVX512
	return true
}()

func expSubSumExactAVX2(x []float32, m float32) float64 {
	mv, lo, l2e, magic := splat(m), splat(expExactLo), splat(log2e), splat(expMagic)
	c1, c2 := splat(-ln2Hi), splat(-ln2Lo)
	p0, p1, p2, p3, p4, p5, one := splat(expP0), splat(expP1), splat(expP2), splat(expP3), splat(expP4), splat(expP5), splat(1)
	b127 := archsimd.BroadcastUint32x8(127 << 23)
	acc := f8{}
	n := len(x) &^ 7
	for i := 0; i < n; i += 8 {
		x0 := ld(x, i).Sub(mv)
		v := x0.Max(lo)
		t := v.Mul(l2e).Add(magic)
		nn := t.Sub(magic)
		r := v.Add(nn.Mul(c1))
		r = r.Add(nn.Mul(c2))
		p := p0.Mul(r).Add(p1)
		p = p.Mul(r).Add(p2)
		p = p.Mul(r).Add(p3)
		p = p.Mul(r).Add(p4)
		p = p.Mul(r).Add(p5)
		e := p.Mul(r.Mul(r)).Add(r.Add(one))
		e = e.Mul(t.ToBits().ShiftAllLeft(23).Add(b127).BitsToFloat32())
		e = e.IfElse(x0.Equal(x0), x0) // NaN in, NaN out (Max may have turned it into the bound)
		st(e, x, i)
		acc = acc.Add(e)
	}
	sum := hsum64(acc)
	archsimd.ClearAVXUpperBits()
	return sum + expSubSumExactGeneric(x[n:], m)
}

func expSubSumExactAVX512(x []float32, m float32) float64 {
	mv, lo, l2e, magic := splatz(m), splatz(expExactLo), splatz(log2e), splatz(expMagic)
	c1, c2 := splatz(-ln2Hi), splatz(-ln2Lo)
	p0, p1, p2, p3, p4, p5, one := splatz(expP0), splatz(expP1), splatz(expP2), splatz(expP3), splatz(expP4), splatz(expP5), splatz(1)
	b127 := archsimd.BroadcastUint32x16(127 << 23)
	acc := f16{}
	n := len(x) &^ 15
	for i := 0; i < n; i += 16 {
		x0 := ldz(x, i).Sub(mv)
		v := x0.Max(lo)
		t := v.Mul(l2e).Add(magic)
		nn := t.Sub(magic)
		r := v.Add(nn.Mul(c1))
		r = r.Add(nn.Mul(c2))
		p := p0.Mul(r).Add(p1)
		p = p.Mul(r).Add(p2)
		p = p.Mul(r).Add(p3)
		p = p.Mul(r).Add(p4)
		p = p.Mul(r).Add(p5)
		e := p.Mul(r.Mul(r)).Add(r.Add(one))
		e = e.Mul(t.ToBits().ShiftAllLeft(23).Add(b127).BitsToFloat32())
		e = e.IfElse(x0.Equal(x0), x0) // NaN in, NaN out (Max may have turned it into the bound)
		stz(e, x, i)
		acc = acc.Add(e)
	}
	sum := hsumz64(acc)
	archsimd.ClearAVXUpperBits()
	return sum + expSubSumExactGeneric(x[n:], m)
}
