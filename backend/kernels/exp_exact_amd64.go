//go:build goexperiment.simd && amd64

package kernels

// The AVX2 and AVX-512 versions of expSubSumExact (generated into math_avx2_amd64.go and math_avx512_amd64.go
// from internal/gen/math.tmpl) serve the kernel tiers of their width.
var _ = func() bool {
	expExactTiers["avx2"] = expSubSumExactAVX2
	expExactTiers["avx512"] = expSubSumExactAVX512
	expExactTiers["avx512-vnni"] = expSubSumExactAVX512
	return true
}()
