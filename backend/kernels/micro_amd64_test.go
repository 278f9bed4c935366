//go:build goexperiment.simd && amd64

package kernels

import (
	"fmt"
	"math/rand"
	"testing"
)

func BenchmarkMicroAVX2(b *testing.B) {
	if !hasAVX2FMA {
		b.Skip("no AVX2")
	}
	r := rand.New(rand.NewSource(1))
	k := 256
	a := randSlice(r, 8*k)
	bp := randSlice(r, 32*k)
	var tile [tileMax]float32
	for _, c := range []struct {
		name   string
		f      microFn
		mr, nr int
	}{{"4x16", microAVX2x4, 4, 16}, {"8x32", microAVX512x8, 8, 32}} {
		b.Run(c.name, func(b *testing.B) {
			if c.nr == 32 && !hasAVX512 {
				b.Skip("no AVX-512")
			}
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				c.f(k, a, k, c.mr, bp, &tile)
			}
			reportFlops(b, float64(2*c.mr*c.nr*k), cpu0)
		})
	}
}

func BenchmarkABlock(b *testing.B) {
	old := aBlockFloats
	defer func() { aBlockFloats = old }()
	for _, f := range []int{24 << 10, 48 << 10, 96 << 10, 192 << 10} {
		aBlockFloats = f
		b.Run(fmt.Sprint(f>>10, "K"), func(b *testing.B) { benchGemm(b, 1568, 3072, 768, false, nil) })
	}
}

func BenchmarkSoftmaxParts(b *testing.B) {
	x := randSlice(rand.New(rand.NewSource(1)), 197)
	d := make([]float32, 197)
	b.Run("max", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			vmax(x)
		}
	})
	b.Run("expSubSum", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			copy(d, x)
			vexpSubSum(d, 3)
		}
	})
	b.Run("expSubSum192", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			copy(d, x)
			vexpSubSum(d[:192], 3)
		}
	})
	b.Run("exp192", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			vexp(d[:192], x[:192])
		}
	})
	b.Run("mulScalar", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			vmulScalar(d, x, 3)
		}
	})
}

func BenchmarkStoreTile(b *testing.B) {
	if !hasAVX2FMA {
		b.Skip("no AVX2")
	}
	r := rand.New(rand.NewSource(1))
	var tile [tileMax]float32
	copy(tile[:], randSlice(r, tileMax))
	c := make([]float32, 4*64)
	bias := randSlice(r, 64)
	for _, ep := range []*Epilogue{nil, {Bias: bias}, {Bias: bias, Act: ActGELU}} {
		b.Run(fmt.Sprint(ep != nil && ep.Act == ActGELU), func(b *testing.B) {
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				storeTileAVX2(&tile, 16, 4, 16, c, 64, 0, 16, ep)
			}
			b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N)*1e9, "cpu-ns/op")
		})
	}
}
