//go:build goexperiment.simd && wasm

package kernels

func init() { vsoftmaxGrad = softmaxGradWasm }

func softmaxGradWasm(ds, p, dp []float32) {
	n := len(ds)
	p, dp = p[:n], dp[:n]
	n4 := n &^ 3
	var dot float64
	for i := 0; i < n4; i += sumBlock {
		e := min(n4, i+sumBlock)
		acc := bc(0)
		for j := i; j < e; j += 4 {
			acc = acc.Add(ld(p, j).Mul(ld(dp, j)))
		}
		dot += hsum64(acc)
	}
	for i := n4; i < n; i++ {
		dot += float64(p[i]) * float64(dp[i])
	}
	d := float32(dot)
	dv := bc(d)
	for i := 0; i < n4; i += 4 {
		st(ld(p, i).Mul(ld(dp, i).Sub(dv)), ds, i)
	}
	for i := n4; i < n; i++ {
		ds[i] = p[i] * (dp[i] - d)
	}
}
