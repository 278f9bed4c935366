//go:build goexperiment.simd && amd64

package kernels

import (
	"simd/archsimd"
	"testing"
)

// The best kernel tier runs the best int8 kernel the CPU has: avx512-vnni with AVX-512 F/BW/VL + VNNI, else avx2
// with AVX2; AVX-512 without VNNI (and a forced avx2 tier) run the AVX2 int8 kernel.
func TestInt8TierMatchesCPU(t *testing.T) {
	want := "portable"
	switch {
	case archsimd.X86.AVX512() && archsimd.X86.AVX512VNNI():
		want = "avx512-vnni"
	case archsimd.X86.AVX2():
		want = "avx2"
	}
	tiers := Tiers()
	if got := int8ForTier(tiers[len(tiers)-1]).name; got != want {
		t.Fatalf("best kernel tier %s: int8 tier %q, want %q for this CPU", tiers[len(tiers)-1], got, want)
	}
	if archsimd.X86.AVX2() {
		for _, tier := range []string{"avx2", "avx512"} {
			if got := int8ForTier(tier).name; got != "avx2" {
				t.Fatalf("kernel tier %s: int8 tier %q, want avx2", tier, got)
			}
		}
	}
	t.Logf("CPU: AVX2 %v, AVX-512 %v, AVX512-VNNI %v, AVX-VNNI %v; int8 tier %s", archsimd.X86.AVX2(), archsimd.X86.AVX512(),
		archsimd.X86.AVX512VNNI(), archsimd.X86.AVXVNNI(), want)
}
