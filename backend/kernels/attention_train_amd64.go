//go:build goexperiment.simd && amd64

package kernels

import "simd/archsimd"

func init() {
	if hasAVX2FMA {
		vsoftmaxGrad = softmaxGradAVX2
		vscaleFlush = scaleFlushAVX2
	}
}

// dotBlockAVX2 returns Σ a[i]·b[i] over len(a) (a multiple of 8) values, in float64.
func dotBlockAVX2(a, b []float32) float64 {
	acc := f8{}
	for i := 0; i+8 <= len(a); i += 8 {
		acc = ld(a, i).MulAdd(ld(b, i), acc)
	}
	return hsum64(acc)
}

func softmaxGradAVX2(ds, p, dp []float32) {
	n := len(ds)
	p, dp = p[:n], dp[:n]
	n8 := n &^ 7
	var dot float64
	for i := 0; i < n8; i += sumBlock {
		e := min(n8, i+sumBlock)
		dot += dotBlockAVX2(p[i:e], dp[i:e])
	}
	for i := n8; i < n; i++ {
		dot += float64(p[i]) * float64(dp[i])
	}
	d := float32(dot)
	if n8 > 0 {
		scaleDiffAVX2(ds[:n8], p[:n8], dp[:n8], d)
	}
	for i := n8; i < n; i++ {
		ds[i] = flush(p[i] * (dp[i] - d))
	}
}

// scaleDiffAVX2 sets ds[i] = p[i]·(dp[i] − d) (0 where subnormal) over len(ds) (a multiple of 8) values.
func scaleDiffAVX2(ds, p, dp []float32, d float32) {
	dv, tiny := bc(d), bc(tinyF32)
	for i := 0; i+8 <= len(ds); i += 8 {
		v := ld(p, i).Mul(ld(dp, i).Sub(dv))
		st(f8{}.IfElse(v.Abs().Less(tiny), v), ds, i)
	}
	archsimd.ClearAVXUpperBits()
}

func scaleFlushAVX2(dst, src []float32, s float32) {
	n := len(dst)
	src = src[:n]
	n8 := n &^ 7
	if n8 > 0 {
		scaleFlushLoopAVX2(dst[:n8], src[:n8], s)
	}
	for i := n8; i < n; i++ {
		dst[i] = flush(src[i] * s)
	}
}

func scaleFlushLoopAVX2(dst, src []float32, s float32) {
	sv, tiny := bc(s), bc(tinyF32)
	for i := 0; i+8 <= len(dst); i += 8 {
		v := ld(src, i).Mul(sv)
		st(f8{}.IfElse(v.Abs().Less(tiny), v), dst, i)
	}
	archsimd.ClearAVXUpperBits()
}
