//go:build goexperiment.simd && amd64

package kernels

import (
	"math/rand"
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

// BenchmarkInt8MicroAMD64 times the amd64 int8 micro-kernels alone in L1 (K=256: 128 pairs), one thread, in
// GOP/s (2 per multiply-accumulate): the kernels' ceiling, against which the GEMM's figures are read.
func BenchmarkInt8MicroAMD64(b *testing.B) {
	const kp = 128
	r := rand.New(rand.NewSource(1))
	for _, kt := range int8Tiers {
		if kt.name == "portable" {
			continue
		}
		b.Run(kt.name, func(b *testing.B) {
			a := make([]int16, kt.mr*2*kp)
			for i := range a {
				a[i] = int16(r.Intn(2001) - 1000)
			}
			bp := make([]int8, 2*kp*kt.nr)
			for i := range bp {
				bp[i] = int8(r.Intn(255) - 127)
			}
			rs, sc := randSlice(r, kt.mr), randSlice(r, kt.nr)
			tile := make([]float32, kt.mr*kt.nr)
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				kt.micro(kp, a, 2*kp, bp, rs, sc, tile)
			}
			reportFlops(b, float64(2*kt.mr*kt.nr*2*kp), cpu0)
		})
	}
}
