//go:build goexperiment.simd && amd64

package kernels

// The AVX2 and AVX-512 versions of expSubSumExact (generated into math_avx2_amd64.go and math_avx512_amd64.go
// from internal/gen/math.tmpl) serve the kernel tiers of their width.
var _ = func() bool {
	expExactTiers["avx2"] = expSubSumExactAVX2
	expExactTiers["avx512"] = expSubSumExactAVX512Tail8
	expExactTiers["avx512-vnni"] = expSubSumExactAVX512Tail8
	return true
}()

// expSubSumExactAVX512Tail8 is expSubSumExactAVX512 with a remainder of 8 or more taken by the AVX2 version
// (the same bits) instead of the scalar one: score rows are padded to a multiple of 8, so CLIP's 197 keys (200)
// left 8 scalar exps per row.
func expSubSumExactAVX512Tail8(x []float32, m float32) float64 {
	n := len(x) &^ 15
	return expSubSumExactAVX512(x[:n], m) + expSubSumExactAVX2(x[n:], m)
}
