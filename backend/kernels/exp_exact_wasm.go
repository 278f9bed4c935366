//go:build goexperiment.simd && wasm

package kernels

import (
	"simd/archsimd"
	"unsafe"
)

// expSubSumExact (exp_exact.go) 4 lanes at a time: attnExpWasm computes exactly its rounded operations.

var _ = func() bool {
	expExactTiers["wasm-simd128"] = expSubSumExactWasm
	return true
}()

func expSubSumExactWasm(x []float32, m float32) float64 {
	n := len(x) &^ 3
	var sum float64
	for j := 0; j < n; j += expBlock {
		sum += attnExpExactWasm(unsafe.Pointer(&x[j]), min(expBlock, n-j), m)
	}
	return sum + expSubSumExactGeneric(x[n:], m)
}

// attnExpExactWasm replaces the n (a multiple of 4) values at pp by expOneExact(v − m) and returns their sum.
func attnExpExactWasm(pp unsafe.Pointer, n int, m float32) float64 {
	mv := splat(m)
	lo, l2e, magic, c1, c2 := splat(expExactLo), splat(log2e), splat(expMagic), splat(-ln2Hi), splat(-ln2Lo)
	p0, p1, p2, p3, p4, p5, one := splat(expP0), splat(expP1), splat(expP2), splat(expP3), splat(expP4), splat(expP5), splat(1)
	b127 := archsimd.BroadcastUint32x4(127 << 23)
	acc := f4{}
	for off := 0; off < 4*n; off += 16 {
		x := ld4(pp, off).Sub(mv).Max(lo)
		t := x.Mul(l2e).Add(magic)
		nn := t.Sub(magic)
		r := x.Add(nn.Mul(c1))
		r = r.Add(nn.Mul(c2))
		p := p0.Mul(r).Add(p1)
		p = p.Mul(r).Add(p2)
		p = p.Mul(r).Add(p3)
		p = p.Mul(r).Add(p4)
		p = p.Mul(r).Add(p5)
		e := p.Mul(r.Mul(r)).Add(r.Add(one))
		e = e.Mul(t.ToBits().ShiftAllLeft(23).Add(b127).BitsToFloat32())
		st4(pp, off, e)
		acc = acc.Add(e)
	}
	return hsum64(acc)
}
