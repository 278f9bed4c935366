//go:build goexperiment.simd && wasm

package kernels

import "testing"

// Under GOEXPERIMENT=simd, wasm always has SIMD128: the wasm-simd128 kernel tier runs the SIMD128 int8 GEMM.
func TestInt8TierWasm(t *testing.T) {
	if got := int8ForTier("wasm-simd128").name; got != "wasm-simd128" {
		t.Fatalf("int8 tier for wasm-simd128: %q", got)
	}
	if got, want := Int8Kernels(), int8ForTier(Tier()).name; got != want {
		t.Fatalf("kernel tier %s runs the int8 tier %q, want %q", Tier(), got, want)
	}
}
