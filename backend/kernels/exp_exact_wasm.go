//go:build goexperiment.simd && wasm

package kernels

// expSubSumExact (exp_exact.go) 4 lanes at a time: exp_wasm.s's expSubSumWasm does exactly its rounded
// operations (TestExpSubSumExactBits).

var _ = func() bool {
	expExactTiers["wasm-simd128"] = expSubSumExactWasm
	return true
}()

func expSubSumExactWasm(x []float32, m float32) float64 {
	n := len(x) &^ 3
	var sum float64
	if n > 0 {
		var a [4]float32
		expSubSumWasm(&x[0], n, m, &a)
		sum = (float64(a[0]) + float64(a[1])) + (float64(a[2]) + float64(a[3]))
	}
	return sum + expSubSumExactGeneric(x[n:], m)
}
