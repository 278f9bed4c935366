package kernels

import (
	"fmt"
	"math/rand"
	"runtime"
	"testing"
)

// BenchmarkGemmInt8 times the int8 GEMM of every tier this build and CPU run, and the fp32 GEMM of the same
// shape in the same run, on the ViT-B shapes of a 1568-token video (QKV, MLP up, MLP down), one frame, and the
// small golden's MLP (embed 192).
func BenchmarkGemmInt8(b *testing.B) {
	for _, s := range []struct{ m, k, n int }{{1568, 768, 2304}, {1568, 768, 3072}, {1568, 3072, 768}, {196, 768, 768}, {1568, 192, 768}, {1568, 768, 192}} {
		name := fmt.Sprintf("%dx%dx%d", s.m, s.k, s.n)
		b.Run(name+"/fp32", func(b *testing.B) { benchGemm(b, s.m, s.k, s.n, false, nil) })
		for _, kt := range int8Tiers {
			b.Run(name+"/"+kt.name, func(b *testing.B) {
				r := rand.New(rand.NewSource(1))
				a := randSlice(r, s.m*s.k)
				c := make([]float32, s.m*s.n)
				w := make([]int8, s.n*s.k)
				for i := range w {
					w[i] = int8(r.Intn(255) - 127)
				}
				pb := packBInt8For(w, randSlice(r, s.n), s.k, s.n, kt.nr)
				defer SetThreads(SetThreads(runtime.GOMAXPROCS(0)))
				b.ResetTimer()
				cpu0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					gemmInt8With(kt, s.m, a, s.k, pb, c, s.n, nil, true)
				}
				reportFlops(b, 2*float64(s.m)*float64(s.n)*float64(s.k), cpu0)
			})
		}
	}
}
