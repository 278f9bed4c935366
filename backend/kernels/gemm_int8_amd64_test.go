//go:build goexperiment.simd && amd64

package kernels

import (
	"simd/archsimd"
	"testing"
)

// The int8 tier in use is the best the CPU has: avx512-vnni with AVX-512 F/BW/VL + VNNI, else avx2 with AVX2.
func TestInt8TierMatchesCPU(t *testing.T) {
	t.Setenv("CAST_KERNELS", "")
	want := "portable"
	switch {
	case archsimd.X86.AVX512() && archsimd.X86.AVX512VNNI():
		want = "avx512-vnni"
	case archsimd.X86.AVX2():
		want = "avx2"
	}
	if got := int8Tier().name; got != want {
		t.Fatalf("int8 tier %q, want %q for this CPU", got, want)
	}
	t.Setenv("CAST_KERNELS", "avx2")
	if got := int8Tier().name; archsimd.X86.AVX2() && got != "avx2" {
		t.Fatalf("CAST_KERNELS=avx2: tier %q", got)
	}
	t.Logf("CPU: AVX2 %v, AVX-512 %v, AVX512-VNNI %v, AVX-VNNI %v; tier %s", archsimd.X86.AVX2(), archsimd.X86.AVX512(),
		archsimd.X86.AVX512VNNI(), archsimd.X86.AVXVNNI(), want)
}
