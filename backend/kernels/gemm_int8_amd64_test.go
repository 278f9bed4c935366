//go:build goexperiment.simd && amd64

package kernels

import (
	"math"
	"math/rand"
	"os"
	"regexp"
	"runtime"
	"simd/archsimd"
	"slices"
	"testing"
)

// The best kernel tier runs the best int8 kernel the CPU has: avx512-vnni with AVX-512 F/BW/VL + VNNI, else
// avx-vnni with AVX2 and AVX-VNNI, else avx2 with AVX2; AVX-512 without VNNI (and a forced avx2 tier) run the
// AVX-VNNI int8 kernel where the CPU has it, else the AVX2 one. AVX-VNNI is also read from /proc/cpuinfo.
func TestInt8TierMatchesCPU(t *testing.T) {
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil && runtime.GOOS == "linux" {
		has := regexp.MustCompile(`(?m)^flags\s*:.*\bavx_vnni\b`).Match(data)
		if has != archsimd.X86.AVXVNNI() {
			t.Fatalf("/proc/cpuinfo says avx_vnni %v, archsimd says AVX-VNNI %v", has, archsimd.X86.AVXVNNI())
		}
	}
	mid := "avx2"
	if archsimd.X86.AVXVNNI() {
		mid = "avx-vnni"
	}
	want := "portable"
	switch {
	case archsimd.X86.AVX512() && archsimd.X86.AVX512VNNI():
		want = "avx512-vnni"
	case archsimd.X86.AVX2():
		want = mid
	}
	tiers := Tiers()
	if got := int8ForTier(tiers[len(tiers)-1]).name; got != want {
		t.Fatalf("best kernel tier %s: int8 tier %q, want %q for this CPU", tiers[len(tiers)-1], got, want)
	}
	if archsimd.X86.AVX2() {
		for _, tier := range []string{"avx2", "avx512"} {
			if got := int8ForTier(tier).name; got != mid {
				t.Fatalf("kernel tier %s: int8 tier %q, want %s", tier, got, mid)
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

// sumInt16AVX2 equals the scalar sum on every length up to 40 and past the 2¹⁶ flush, with extreme values.
func TestSumInt16AVX2(t *testing.T) {
	if !hasInt8AVX2 {
		t.Fatal("this test runs on AVX2 machines (CI's); the CPU lacks AVX2")
	}
	r := rand.New(rand.NewSource(3))
	for _, n := range append([]int{0, 1, 15, 16, 17, 31, 32, 33, 40, 1568, 1<<16 - 1, 1 << 16, 1<<16 + 17}, 200000) {
		for _, fill := range []func() int16{
			func() int16 { return int16(r.Intn(65536) - 32768) },
			func() int16 { return 32767 },
			func() int16 { return -32768 },
		} {
			q := make([]int16, n)
			for i := range q {
				q[i] = fill()
			}
			if got, want := sumInt16AVX2(q), sumInt16Generic(q); got != want {
				t.Fatalf("n=%d: sumInt16AVX2 %d, want %d", n, got, want)
			}
		}
	}
}

// maxAbsBitsIntoAVX2 and pairLevelsAVX2 (V's packing in the integer attention) equal their scalar versions on
// every length up to 70, with ±0, ±Inf and NaN among the values.
func TestPackVHelpersAVX2(t *testing.T) {
	if !hasInt8AVX2 {
		t.Fatal("this test runs on AVX2 machines (CI's); the CPU lacks AVX2")
	}
	r := rand.New(rand.NewSource(5))
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	for n := 0; n <= 70; n++ {
		v := randSlice(r, n)
		for i := range v {
			if r.Intn(8) == 0 {
				v[i] = special[r.Intn(len(special))]
			}
		}
		got, want := make([]uint32, n), make([]uint32, n)
		for i := range got {
			got[i] = r.Uint32() >> r.Intn(32)
			want[i] = got[i]
		}
		maxAbsBitsIntoAVX2(got, v)
		maxAbsBitsIntoGeneric(want, v)
		if !slices.Equal(got, want) {
			t.Fatalf("n=%d: maxAbsBitsIntoAVX2 %v, want %v", n, got, want)
		}
		q0, q1 := make([]int16, n), make([]int16, n)
		for i := range q0 {
			q0[i], q1[i] = int16(r.Intn(255)-127), int16(r.Intn(255)-127)
		}
		d1, d2 := make([]int8, 2*n+3), make([]int8, 2*n+3)
		pairLevelsAVX2(d1[:2*n], q0, q1)
		pairLevelsGeneric(d2[:2*n], q0, q1)
		if !slices.Equal(d1, d2) {
			t.Fatalf("n=%d: pairLevelsAVX2 %v, want %v", n, d1, d2)
		}
	}
}

// Each amd64 version of the row quantizer's passes (AVX2, and AVX-512 where the CPU has it) equals the scalar
// one: max |a| (NaN kept) and round-half-even(a·inv), on lengths around every vector width, with ties.
func TestQuantizeRowPassesAMD64(t *testing.T) {
	if !hasInt8AVX2 {
		t.Fatal("this test runs on AVX2 machines (CI's); the CPU lacks AVX2")
	}
	type passes struct {
		name     string
		maxAbs   func([]float32) float32
		quantize func([]int16, []float32, float32)
	}
	ps := []passes{{"avx2", maxAbsAVX2, quantizeRowAVX2}}
	if archsimd.X86.AVX512() {
		ps = append(ps, passes{"avx512", maxAbsAVX512, quantizeRowAVX512})
	}
	r := rand.New(rand.NewSource(9))
	for _, p := range ps {
		for _, n := range []int{1, 8, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 768, 3072} {
			a := randSlice(r, n)
			for i := range a {
				if r.Intn(4) == 0 {
					a[i] = float32(r.Intn(200)-100) + 0.5 // a tie once scaled by 1
				}
			}
			a[r.Intn(n)] *= 40 // the largest anywhere in the row
			if got, want := p.maxAbs(a), maxAbsGeneric(a); got != want {
				t.Fatalf("%s n %d: maxAbs %g, want %g", p.name, n, got, want)
			}
			for _, inv := range []float32{1, 1000.5 / maxAbsGeneric(a), 32767 / maxAbsGeneric(a)} { // |a·inv| ≤ 32767, the contract
				got, want := make([]int16, n), make([]int16, n)
				p.quantize(got, a, inv)
				quantizeRowGeneric(want, a, inv)
				if !slices.Equal(got, want) {
					t.Fatalf("%s n %d inv %g: %v, want %v", p.name, n, inv, got, want)
				}
			}
			a[r.Intn(n)] = float32(math.NaN())
			if mx := p.maxAbs(a); mx == mx {
				t.Fatalf("%s n %d: maxAbs of a row with NaN is %g", p.name, n, mx)
			}
		}
	}
}
