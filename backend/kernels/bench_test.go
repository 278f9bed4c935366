package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"
)

func benchGemm(b *testing.B, m, k, n int, int8w bool, ep *Epilogue) {
	r := rand.New(rand.NewSource(1))
	a := randSlice(r, m*k)
	c := make([]float32, m*n)
	var pb *PackedB
	if int8w {
		w := make([]int8, n*k)
		for i := range w {
			w[i] = int8(r.Intn(255) - 127)
		}
		sc := randSlice(r, n)
		pb = PackBInt8(w, sc, k, n)
	} else {
		pb = PackB(nil, randSlice(r, k*n), k, k, n, true)
	}
	if ep != nil && ep.Bias != nil {
		ep.Bias = randSlice(r, n)
	}
	defer SetThreads(SetThreads(runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		Gemm(m, a, k, pb, c, n, ep)
	}
	reportFlops(b, 2*float64(m)*float64(n)*float64(k), cpu0)
}

// reportFlops reports GFLOP/s of wall time and, where the CPU time is known, GFLOP per CPU second per thread
// in use (the per-core rate, steadier on a loaded machine).
func reportFlops(b *testing.B, flopsPerOp float64, cpu0 float64) {
	fl := flopsPerOp * float64(b.N)
	b.ReportMetric(fl/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := cpuSeconds() - cpu0; cpu > 0 {
		b.ReportMetric(fl/cpu/1e9, "GFLOP/cpu-s")
	}
}

var gemmShapes = []struct{ m, k, n int }{
	{196, 768, 768}, {1568, 768, 3072}, {1576, 768, 2304}, {1568, 3072, 768}, {197, 32, 32},
}

func BenchmarkGemm(b *testing.B) {
	for _, s := range gemmShapes {
		for _, q := range []bool{false, true} {
			name := fmt.Sprintf("%dx%dx%d", s.m, s.k, s.n)
			if q {
				name += "/int8"
			}
			b.Run(name, func(b *testing.B) { benchGemm(b, s.m, s.k, s.n, q, nil) })
		}
	}
	b.Run("1568x768x3072/bias+gelu", func(b *testing.B) {
		benchGemm(b, 1568, 768, 3072, false, &Epilogue{Bias: []float32{}, Act: ActGELU})
	})
}

func BenchmarkAttention(b *testing.B) {
	cases := []struct {
		name                 string
		batch, h, lq, lk, hd int
	}{
		{"clip_8x12x197x197x64", 8, 12, 197, 197, 64},
		{"videomae_1x12x1568x1568x64", 1, 12, 1568, 1568, 64},
		{"bcast_196x12x8x8x32", 196, 12, 8, 8, 32},
		{"bcast_1x12x196x196x32", 1, 12, 196, 196, 32},
		{"tiny_2x2x197x197x16", 2, 2, 197, 197, 16},
		{"demo_1x4x392x392x8", 1, 4, 392, 392, 8},
		{"demo_2x4x196x196x4", 2, 4, 196, 196, 4},
		{"demo_2x4x197x197x8", 2, 4, 197, 197, 8},
		{"demo_196x4x2x2x4", 196, 4, 2, 2, 4},
	}
	for _, c := range cases {
		for _, path := range []string{"", "gemmpath", "int8"} {
			gemmPath, int8 := path == "gemmpath", path == "int8"
			name := c.name
			if gemmPath {
				if c.hd > smallHD && (c.lk > smallLk || c.hd > smallHDMax) {
					continue
				}
				name += "/gemmpath"
			}
			if int8 {
				if c.lk < Int8AttnMinLk {
					continue
				}
				name += "/int8" // the integer path of int8 models
			}
			b.Run(name, func(b *testing.B) {
				defer func(old bool) { smallOn = old }(smallOn)
				smallOn = !gemmPath
				r := rand.New(rand.NewSource(1))
				L := max(c.lq, c.lk)
				w := c.h * c.hd
				qkv := randSlice(r, c.batch*L*3*w)
				out := make([]float32, c.batch*c.lq*w)
				at := &Attention{Batch: c.batch, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Scale: 1 / float32(math.Sqrt(float64(c.hd))),
					Q:    Strided{qkv, L * 3 * w, 3 * w, c.hd},
					K:    Strided{qkv[w:], L * 3 * w, 3 * w, c.hd},
					V:    Strided{qkv[2*w:], L * 3 * w, 3 * w, c.hd},
					Out:  Strided{out, c.lq * w, w, c.hd},
					Int8: int8,
				}
				defer SetThreads(SetThreads(runtime.GOMAXPROCS(0)))
				b.ResetTimer()
				cpu0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					at.Run()
				}
				reportFlops(b, 4*float64(c.batch*c.h)*float64(c.lq)*float64(c.lk)*float64(c.hd), cpu0)
			})
		}
	}
}

func BenchmarkElementwise(b *testing.B) {
	x := randSlice(rand.New(rand.NewSource(1)), 4096)
	d := make([]float32, len(x))
	for _, f := range []struct {
		name string
		f    func(dst, src []float32)
	}{{"Exp", Exp}, {"Erf", Erf}, {"GELU", GELU}, {"Tanh", Tanh}, {"Logistic", Logistic}} {
		b.Run(f.name, func(b *testing.B) {
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				f.f(d, x)
			}
			b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
			if cpu := cpuSeconds() - cpu0; cpu > 0 {
				b.ReportMetric(cpu/float64(b.N)/float64(len(x))*1e9, "cpu-ns/elem")
			}
		})
	}
	b.Run("Softmax197", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			copy(d, x)
			SoftmaxRows(d, 20, 197, 197)
		}
	})
	b.Run("LayerNorm768", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			LayerNormRows(d, 768, x, 768, 5, 768, x[:768], x[768:1536], 1e-5)
		}
	})
}

// BenchmarkGemmTiers compares the vector tiers this CPU has on the ViT-B GEMM shapes, each shape's tiers back
// to back (the machine's load changes less between them).
func BenchmarkGemmTiers(b *testing.B) {
	def := Tier()
	defer func() { _ = setTier(def) }()
	for _, s := range []struct{ m, k, n int }{{1568, 768, 2304}, {1568, 768, 3072}} {
		for _, name := range Tiers() {
			if name == "portable" {
				continue
			}
			b.Run(fmt.Sprintf("%dx%dx%d/%s", s.m, s.k, s.n, name), func(b *testing.B) {
				if err := setTier(name); err != nil {
					b.Fatal(err)
				}
				benchGemm(b, s.m, s.k, s.n, false, nil)
			})
		}
	}
}

// BenchmarkAttentionFlash compares the flash path with the GEMM path (full score rows) on the VideoMAE and CLIP
// shapes, back to back.
func BenchmarkAttentionFlash(b *testing.B) {
	for _, c := range []struct {
		name                 string
		batch, h, lq, lk, hd int
	}{{"videomae_1x12x1568x1568x64", 1, 12, 1568, 1568, 64}, {"clip_8x12x197x197x64", 8, 12, 197, 197, 64}} {
		for _, v := range []struct{ br, bk int }{{0, 0}, {64, 256}, {32, 512}} {
			flash := v.br > 0
			name := c.name + "/gemmpath"
			if flash {
				name = c.name + fmt.Sprintf("/flash%dx%d", v.br, v.bk)
			}
			b.Run(name, func(b *testing.B) {
				defer func(br, bk int) { flashBr, flashBk = br, bk }(flashBr, flashBk)
				if flash {
					flashBr, flashBk = v.br, v.bk
				}
				defer func(on bool, minLk int) { flashOn, flashMinLk = on, minLk }(flashOn, flashMinLk)
				flashOn, flashMinLk = flash, 0
				defer func(f func(*Attention) bool) { attnStrip = f }(attnStrip)
				attnStrip = nil // wasm's strip path is compared in BenchmarkAttentionStripWasm
				r := rand.New(rand.NewSource(1))
				w := c.h * c.hd
				qkv := randSlice(r, c.batch*c.lq*3*w)
				out := make([]float32, c.batch*c.lq*w)
				at := &Attention{Batch: c.batch, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Scale: 1 / float32(math.Sqrt(float64(c.hd))),
					Q:   Strided{qkv, c.lq * 3 * w, 3 * w, c.hd},
					K:   Strided{qkv[w:], c.lq * 3 * w, 3 * w, c.hd},
					V:   Strided{qkv[2*w:], c.lq * 3 * w, 3 * w, c.hd},
					Out: Strided{out, c.lq * w, w, c.hd},
				}
				if at.useFlash() != flash {
					b.Fatal("path not taken")
				}
				defer SetThreads(SetThreads(runtime.GOMAXPROCS(0)))
				b.ResetTimer()
				cpu0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					at.Run()
				}
				reportFlops(b, 4*float64(c.batch*c.h)*float64(c.lq)*float64(c.lk)*float64(c.hd), cpu0)
			})
		}
	}
}
