//go:build goexperiment.simd && wasm

package kernels

import (
	"math/rand"
	"testing"
	"time"
)

// Under GOEXPERIMENT=simd, wasm always has SIMD128: the wasm-simd128 kernel tier runs the SIMD128 int8 GEMM.
func TestInt8TierWasm(t *testing.T) {
	if got := int8ForTier("wasm-simd128").name; got != "wasm-simd128" {
		t.Fatalf("int8 tier for wasm-simd128: %q", got)
	}
	if got, want := Int8Kernels(), int8ForTier(Tier()).name; got != want {
		t.Fatalf("kernel tier %s runs the int8 tier %q, want %q", Tier(), got, want)
	}
}

// BenchmarkInt8MicroWasm times the int8 micro-kernel alone in L1 (K=256: 128 pairs, a 4 KiB panel), in GOP/s
// (2 operations a multiply-add).
func BenchmarkInt8MicroWasm(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	kp := 128
	a := make([]int16, 4*2*kp)
	w := make([]int8, 16*kp)
	for i := range a {
		a[i] = int16(r.Intn(2001) - 1000)
	}
	for i := range w {
		w[i] = int8(r.Intn(255) - 127)
	}
	rs := []float32{1, 1, 1, 1}
	sc := []float32{1, 1, 1, 1, 1, 1, 1, 1}
	var tile [32]float32
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		int8MicroWasm(kp, a, 0, w, rs, sc, tile[:])
	}
	b.ReportMetric(float64(2*4*8*2*kp)*float64(b.N)/time.Since(t0).Seconds()/1e9, "GOP/s")
}
