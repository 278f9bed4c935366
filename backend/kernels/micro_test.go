package kernels

import (
	"math/rand"
	"testing"
)

func BenchmarkMicroGeneric(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	k := 256
	a := randSlice(r, 6*k)
	bp := randSlice(r, 4*k)
	var tile [tileMax]float32
	for _, c := range []struct {
		name string
		f    microFn
		mr   int
	}{{"4x4", microGeneric, 4}, {"2x4", microGeneric2x4, 2}} {
		b.Run(c.name, func(b *testing.B) {
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				c.f(k, a, k, c.mr, bp, &tile)
			}
			reportFlops(b, float64(2*c.mr*4*k), cpu0)
		})
	}
}

func BenchmarkPackB(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	src := randSlice(r, 197*2304)
	var p PackedB
	b.Run("Kt_197x64", func(b *testing.B) {
		cpu0 := cpuSeconds()
		for i := 0; i < b.N; i++ {
			packB(&p, src, 2304, 64, 197, true, gemmNR)
		}
		b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N)*1e9, "cpu-ns/op")
	})
	b.Run("V_197x64", func(b *testing.B) {
		cpu0 := cpuSeconds()
		for i := 0; i < b.N; i++ {
			packB(&p, src, 2304, 197, 64, false, gemmNR)
		}
		b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N)*1e9, "cpu-ns/op")
	})
}
