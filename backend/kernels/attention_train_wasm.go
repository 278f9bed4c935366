//go:build goexperiment.simd && wasm

package kernels

func scaleFlushWasm(dst, src []float32, s float32) {
	n := len(dst)
	src = src[:n]
	n4 := n &^ 3
	sv, tiny := splat(s), splat(tinyF32)
	for i := 0; i < n4; i += 4 {
		v := ld(src, i).Mul(sv)
		st(f4{}.IfElse(v.Abs().Less(tiny), v), dst, i)
	}
	for i := n4; i < n; i++ {
		dst[i] = flush(src[i] * s)
	}
}

func softmaxGradWasm(ds, p, dp []float32) {
	n := len(ds)
	p, dp = p[:n], dp[:n]
	n4 := n &^ 3
	var dot float64
	for i := 0; i < n4; i += sumBlock {
		e := min(n4, i+sumBlock)
		acc := splat(0)
		for j := i; j < e; j += 4 {
			acc = acc.Add(ld(p, j).Mul(ld(dp, j)))
		}
		dot += hsum64(acc)
	}
	for i := n4; i < n; i++ {
		dot += float64(p[i]) * float64(dp[i])
	}
	d := float32(dot)
	dv, tiny := splat(d), splat(tinyF32)
	for i := 0; i < n4; i += 4 {
		v := ld(p, i).Mul(ld(dp, i).Sub(dv))
		st(f4{}.IfElse(v.Abs().Less(tiny), v), ds, i)
	}
	for i := n4; i < n; i++ {
		ds[i] = flush(p[i] * (dp[i] - d))
	}
}
