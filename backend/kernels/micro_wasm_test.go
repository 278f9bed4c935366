//go:build goexperiment.simd && wasm

package kernels

import (
	"math/rand"
	"testing"
	"time"
)

// BenchmarkMicroWasm times the shipped 4×8 SIMD128 micro-kernel in L1 (K=256). Alternatives measured on the
// 2026-12-01 machine under Node 20, best of 30 interleaved runs: 4×8 25.8 GFLOP/s, 6×8 20.3, 4×8 with K
// unrolled by 2 24.6 (their code is in the git history before the tier change; TestGemm tests the shipped one).
func BenchmarkMicroWasm(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	k := 256
	a := randSlice(r, 4*k)
	bp := randSlice(r, 8*k)
	var tile [tileMax]float32
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		microWasm(k, a, k, 4, bp, &tile)
	}
	b.ReportMetric(float64(2*4*8*k)*float64(b.N)/time.Since(t0).Seconds()/1e9, "GFLOP/s")
}
