//go:build goexperiment.simd && wasm

package kernels

import "testing"

// Under GOEXPERIMENT=simd, wasm always has SIMD128: the int8 tier is wasm-simd128 unless CAST_KERNELS=portable.
func TestInt8TierWasm(t *testing.T) {
	t.Setenv("CAST_KERNELS", "")
	if got := int8Tier().name; got != "wasm-simd128" {
		t.Fatalf("int8 tier %q, want wasm-simd128", got)
	}
}
