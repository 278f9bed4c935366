package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// refProbs is the naive AttentionProbs, in float64.
func refProbs(a *AttentionProbs) []float64 {
	B, H, lq, lk, hd := a.Batch, a.Heads, a.Lq, a.Lk, a.HeadDim
	out := make([]float64, B*H*lq*lk)
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			for i := 0; i < lq; i++ {
				row := out[((b*H+h)*lq+i)*lk:][:lk]
				for j := range row {
					var s float64
					for d := 0; d < hd; d++ {
						s += float64(a.Q.at(b, i, h)[d]) * float64(a.K.at(b, j, h)[d])
					}
					row[j] = float64(a.Scale) * s
				}
				refSoftmax(row)
			}
		}
	}
	return out
}

// refScoresGrad is the naive AttentionScoresGrad, in float64.
func refScoresGrad(a *AttentionScoresGrad) []float64 {
	B, H, lq, lk, hd := a.Batch, a.Heads, a.Lq, a.Lk, a.HeadDim
	out := make([]float64, B*H*lq*lk)
	dp := make([]float64, lk)
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			for i := 0; i < lq; i++ {
				o := ((b*H+h)*lq + i) * lk
				var dot float64
				for j := range dp {
					var s float64
					for d := 0; d < hd; d++ {
						s += float64(a.DO.at(b, i, h)[d]) * float64(a.V.at(b, j, h)[d])
					}
					dp[j] = s
					dot += s * float64(a.P[o+j])
				}
				for j := range dp {
					out[o+j] = float64(a.P[o+j]) * (dp[j] - dot)
				}
			}
		}
	}
	return out
}

type trainAttnCase struct{ b, h, lq, lk, hd int }

var trainAttnCases = []trainAttnCase{{1, 1, 1, 1, 1}, {2, 3, 7, 7, 8}, {2, 2, 13, 5, 16}, {196, 4, 2, 2, 4},
	{2, 4, 197, 197, 8}, {3, 4, 196, 196, 8}, {2, 4, 392, 392, 8}, {1, 3, 37, 19, 1}, {2, 2, 9, 300, 16},
	{3, 2, 17, 17, 3}, {1, 2, 5, 1, 5}, {2, 2, 7, 16, 64}, {2, 1, 3, 11, 20}, {1, 2, 6, 1500, 4}, {2, 2, 4, 4, 0}}

// operands lays out q-like and k-like operands the way cast's graphs do: a [B, L, H, hd] tensor (row-major)
// and a [B, H, L, hd] one (head-major), with a leading offset.
func trainOperands(r *rand.Rand, c trainAttnCase) (rowMajor, headMajor Strided, kv Strided) {
	q := randSlice(r, c.b*c.lq*c.h*c.hd+3)
	rowMajor = Strided{q[3:], c.lq * c.h * c.hd, c.h * c.hd, c.hd}
	qh := randSlice(r, c.b*c.h*c.lq*c.hd+1)
	headMajor = Strided{qh[1:], c.h * c.lq * c.hd, c.hd, c.lq * c.hd}
	k := randSlice(r, c.b*c.lk*c.h*c.hd+2)
	kv = Strided{k[2:], c.lk * c.h * c.hd, c.h * c.hd, c.hd}
	return
}

func TestAttentionProbs(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for _, th := range []int{1, 2} {
		old := SetThreads(th)
		for _, c := range trainAttnCases {
			for _, scale := range []float32{0.35, 1, 0} {
				q, qh, k := trainOperands(r, c)
				for qi, qq := range []Strided{q, qh} {
					p := randSlice(r, c.b*c.h*c.lq*c.lk)
					a := &AttentionProbs{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Scale: scale, Q: qq, K: k, P: p}
					want := refProbs(a)
					a.Run()
					for i := range want {
						if d := math.Abs(float64(p[i]) - want[i]); !(d <= 2e-6+1e-5*want[i]) {
							t.Fatalf("probs %+v scale %g q#%d threads %d [%d]: %g want %g", c, scale, qi, th, i, p[i], want[i])
						}
					}
				}
			}
		}
		SetThreads(old)
	}
}

func TestAttentionScoresGrad(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	for _, th := range []int{1, 2} {
		old := SetThreads(th)
		for _, c := range trainAttnCases {
			do, doh, v := trainOperands(r, c)
			for oi, o := range []Strided{do, doh} {
				for _, inPlace := range []bool{false, true} {
					n := c.b * c.h * c.lq * c.lk
					p := randSlice(r, n)
					for i := range p {
						p[i] = float32(math.Abs(float64(p[i]))) / float32(c.lk)
					}
					a := &AttentionScoresGrad{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, DO: o, V: v, P: p, DS: randSlice(r, n)}
					want := refScoresGrad(a)
					if inPlace {
						a.DS = p
					}
					a.Run()
					tol := 1e-5 * math.Sqrt(float64(c.hd+1)) * math.Sqrt(float64(c.lk))
					for i := range want {
						if d := math.Abs(float64(a.DS[i]) - want[i]); !(d <= tol*(1+math.Abs(want[i]))) {
							t.Fatalf("scores grad %+v dO#%d in place %v threads %d [%d]: %g want %g", c, oi, inPlace, th, i, a.DS[i], want[i])
						}
					}
				}
			}
		}
		SetThreads(old)
	}
}

// SoftmaxGradRows against the naive formula, with the tier's row kernel and with the portable one.
func TestSoftmaxGradRows(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	tiers := map[string]func(ds, p, dp []float32){"tier": vsoftmaxGrad, "portable": softmaxGradGeneric}
	defer func(f func(ds, p, dp []float32)) { vsoftmaxGrad = f }(vsoftmaxGrad)
	for name, f := range tiers {
		vsoftmaxGrad = f
		for _, n := range []int{1, 3, 4, 7, 8, 9, 16, 127, 128, 129, 196, 197, 392, 1000} {
			const rows, ld = 3, 1003
			p, dp := randSlice(r, rows*ld), randSlice(r, rows*ld)
			for _, alias := range []string{"none", "dp", "p"} {
				ds := randSlice(r, rows*ld)
				pp, dd := append([]float32(nil), p...), append([]float32(nil), dp...)
				switch alias {
				case "dp":
					ds = dd
				case "p":
					ds = pp
				}
				want := make([]float64, rows*ld)
				for row := 0; row < rows; row++ {
					var dot float64
					for j := 0; j < n; j++ {
						dot += float64(p[row*ld+j]) * float64(dp[row*ld+j])
					}
					for j := 0; j < n; j++ {
						want[row*ld+j] = float64(p[row*ld+j]) * (float64(dp[row*ld+j]) - dot)
					}
				}
				SoftmaxGradRows(ds, pp, dd, rows, n, ld)
				for row := 0; row < rows; row++ {
					for j := 0; j < n; j++ {
						i := row*ld + j
						if d := math.Abs(float64(ds[i]) - want[i]); !(d <= 1e-5*math.Sqrt(float64(n))*(1+math.Abs(want[i]))) {
							t.Fatalf("%s n=%d alias %s [%d,%d]: %g want %g", name, n, alias, row, j, ds[i], want[i])
						}
					}
				}
			}
		}
	}
}

func BenchmarkAttentionTrain(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	c := trainAttnCase{16, 4, 392, 392, 8}
	q, _, k := trainOperands(r, c)
	p := make([]float32, c.b*c.h*c.lq*c.lk)
	b.Run(fmt.Sprintf("probs%v", c), func(b *testing.B) {
		a := &AttentionProbs{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Scale: 0.35, Q: q, K: k, P: p}
		for i := 0; i < b.N; i++ {
			a.Run()
		}
	})
	ds := make([]float32, len(p))
	b.Run(fmt.Sprintf("scoresgrad%v", c), func(b *testing.B) {
		a := &AttentionScoresGrad{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, DO: q, V: k, P: p, DS: ds}
		for i := 0; i < b.N; i++ {
			a.Run()
		}
	})
}

// refBackward is the naive AttentionBackward, in float64: dq [B,H,Lq,hd], dk and dv [B,H,Lk,hd].
func refBackward(a *AttentionBackward) (dq, dk, dv []float64) {
	B, H, lq, lk, hd := a.Batch, a.Heads, a.Lq, a.Lk, a.HeadDim
	dq, dk, dv = make([]float64, B*H*lq*hd), make([]float64, B*H*lk*hd), make([]float64, B*H*lk*hd)
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			bh := b*H + h
			for i := 0; i < lq; i++ {
				p := a.P[(bh*lq+i)*lk:][:lk]
				dp := make([]float64, lk)
				var dot float64
				for j := range dp {
					for d := 0; d < hd; d++ {
						dp[j] += float64(a.DO.at(b, i, h)[d]) * float64(a.V.at(b, j, h)[d])
					}
					dot += dp[j] * float64(p[j])
				}
				for j := range dp {
					ds := float64(p[j]) * (dp[j] - dot)
					for d := 0; d < hd; d++ {
						dq[(bh*lq+i)*hd+d] += ds * float64(a.K.at(b, j, h)[d])
						dk[(bh*lk+j)*hd+d] += ds * float64(a.Q.at(b, i, h)[d])
						dv[(bh*lk+j)*hd+d] += float64(p[j]) * float64(a.DO.at(b, i, h)[d])
					}
				}
			}
		}
	}
	return
}

func TestAttentionBackward(t *testing.T) {
	defer func(on bool, hd int) { bwdDirectOn, bwdDirectHD = on, hd }(bwdDirectOn, bwdDirectHD)
	defer func(f func(dq, q, do, prow, dsrow, vt, kt, dkt, dvt []float32, hd, ldk int)) { bwdRow = f }(bwdRow)
	bwdDirectHD = 16
	for _, path := range []string{"direct", "direct-portable", "gemm"} {
		bwdDirectOn = path != "gemm"
		if path == "direct-portable" {
			bwdRow = bwdRowGeneric
		}
		t.Run(path, testAttentionBackward)
	}
}

func testAttentionBackward(t *testing.T) {
	r := rand.New(rand.NewSource(14))
	for _, th := range []int{1, 2} {
		old := SetThreads(th)
		for _, c := range append(trainAttnCases, trainAttnCase{2, 3, 0, 5, 4}, trainAttnCase{2, 3, 5, 0, 4}, trainAttnCase{1, 2, 1000, 37, 8}) {
			q, qh, k := trainOperands(r, c)
			do, _, v := trainOperands(r, c)
			n := c.b * c.h * c.lq * c.lk
			p := randSlice(r, n)
			for i := range p {
				p[i] = float32(math.Abs(float64(p[i]))) / float32(max(c.lk, 1))
			}
			// outputs: DQ head-major [B,H,Lq,hd], DK row-major [B,Lk,H,hd], DV transposed [B,H,hd,Lk]
			dqb := randSlice(r, c.b*c.h*c.lq*c.hd)
			dkb := randSlice(r, c.b*c.h*c.lk*c.hd)
			dvb := randSlice(r, c.b*c.h*c.lk*c.hd)
			for qi, qq := range []Strided{q, qh} {
				a := &AttentionBackward{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Q: qq, K: k, V: v, DO: do, P: p,
					DQ: Strided4{dqb, c.h * c.lq * c.hd, c.hd, c.lq * c.hd, 1},
					DK: Strided4{dkb, c.lk * c.h * c.hd, c.h * c.hd, c.hd, 1},
					DV: Strided4{dvb, c.h * c.hd * c.lk, 1, c.hd * c.lk, c.lk}}
				wq, wk, wv := refBackward(a)
				a.Run()
				tol := 2e-5 * math.Sqrt(float64(c.hd+1)) * math.Sqrt(float64(c.lk+c.lq+1))
				check := func(name string, out Strided4, want []float64, rows int) {
					for b := 0; b < c.b; b++ {
						for h := 0; h < c.h; h++ {
							for i := 0; i < rows; i++ {
								for d := 0; d < c.hd; d++ {
									got := out.Data[out.off(b, i, h)+d*out.DimStride]
									w := want[((b*c.h+h)*rows+i)*c.hd+d]
									if diff := math.Abs(float64(got) - w); !(diff <= tol*(1+math.Abs(w))) {
										t.Fatalf("backward %+v q#%d threads %d %s[%d,%d,%d,%d]: %g want %g", c, qi, th, name, b, i, h, d, got, w)
									}
								}
							}
						}
					}
				}
				check("dq", a.DQ, wq, c.lq)
				check("dk", a.DK, wk, c.lk)
				check("dv", a.DV, wv, c.lk)
			}
		}
		SetThreads(old)
	}
}

func BenchmarkAttentionBackward(b *testing.B) {
	defer func(on bool, hd int) { bwdDirectOn, bwdDirectHD = on, hd }(bwdDirectOn, bwdDirectHD)
	bwdDirectHD = 16
	for _, c := range []trainAttnCase{{16, 4, 392, 392, 8}, {32, 4, 196, 196, 4}, {32, 4, 197, 197, 8}} {
		for _, path := range []string{"direct", "gemm"} {
			bwdDirectOn = path == "direct"
			b.Run(fmt.Sprint(c, path), func(b *testing.B) { benchBackward(b, c) })
		}
	}
}

func benchBackward(b *testing.B, c trainAttnCase) {
	r := rand.New(rand.NewSource(1))
	q, _, k := trainOperands(r, c)
	do, _, v := trainOperands(r, c)
	p := randSlice(r, c.b*c.h*c.lq*c.lk)
	sz := c.b * c.h * c.lq * c.hd
	a := &AttentionBackward{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Q: q, K: k, V: v, DO: do, P: p,
		DQ: Strided4{make([]float32, sz), c.h * c.lq * c.hd, c.hd, c.lq * c.hd, 1},
		DK: Strided4{make([]float32, sz), c.h * c.lq * c.hd, c.hd, c.lq * c.hd, 1},
		DV: Strided4{make([]float32, sz), c.h * c.hd * c.lk, 1, c.hd * c.lk, c.lk}}
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		a.Run()
	}
	b.ReportMetric((cpuSeconds()-cpu0)*1e3/float64(b.N), "cpu-ms/op")
}

// Attention with Probs set writes the same output and the probabilities (every path: GEMM, direct, few keys).
func TestAttentionProbsOutput(t *testing.T) {
	r := rand.New(rand.NewSource(15))
	for _, th := range []int{1, 2} {
		old := SetThreads(th)
		for _, c := range append(trainAttnCases[:len(trainAttnCases)-1], trainAttnCase{1, 12, 197, 197, 64}, trainAttnCase{2, 2, 9, 13, 24}, trainAttnCase{3, 2, 8, 8, 32}) {
			q, _, k := trainOperands(r, c)
			_, _, v := trainOperands(r, c)
			out := randSlice(r, c.b*c.h*c.lq*c.hd)
			probs := randSlice(r, c.b*c.h*c.lq*c.lk)
			at := &Attention{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Scale: 0.3, Q: q, K: k, V: v,
				Out: Strided{out, c.h * c.lq * c.hd, c.hd, c.lq * c.hd}, Probs: probs}
			want := refAttention(at)
			wantP := refProbs(&AttentionProbs{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Scale: 0.3, Q: q, K: k})
			at.Run()
			for i := range want {
				if d := math.Abs(float64(out[i]) - want[i]); d > 1e-5*(1+math.Abs(want[i])) {
					t.Fatalf("attention+probs %+v threads %d out[%d]: %g want %g", c, th, i, out[i], want[i])
				}
			}
			for i := range wantP {
				if d := math.Abs(float64(probs[i]) - wantP[i]); !(d <= 2e-6+1e-5*wantP[i]) {
					t.Fatalf("attention+probs %+v threads %d probs[%d]: %g want %g", c, th, i, probs[i], wantP[i])
				}
			}
		}
		SetThreads(old)
	}
}

func subnormal(v float32) bool { return v != 0 && math.Abs(float64(v)) < tinyF32 }

// Far-off keys give probabilities below the float32 normal range: they (and the scores' gradients they
// make) come out as 0, never subnormal, on every path; NaN still propagates.
func TestSubnormalsFlushed(t *testing.T) {
	for name, f := range map[string]func(dst, src []float32, s float32){"tier": vscaleFlush, "portable": scaleFlushGeneric} {
		src := []float32{1, 1e-30, -1e-30, float32(math.NaN()), 3e-38, -2, 1e-20, 5, 1e-39, 0, 7}
		dst := make([]float32, len(src))
		f(dst, src, 1e-10)
		for i, v := range src {
			want := v * 1e-10
			if math.Abs(float64(want)) < tinyF32 {
				want = 0
			}
			if dst[i] != want && !(want != want && dst[i] != dst[i]) {
				t.Fatalf("%s scaleFlush[%d] of %g: %g want %g", name, i, v, dst[i], want)
			}
		}
	}
	r := rand.New(rand.NewSource(16))
	for _, c := range []trainAttnCase{{2, 2, 40, 40, 8}, {2, 2, 40, 40, 4}, {1, 2, 9, 13, 24}, {1, 2, 300, 300, 32}} {
		q, _, k := trainOperands(r, c)
		for i := range q.Data {
			q.Data[i] *= 40 // scores spread over hundreds: exp underflows for most keys
		}
		_, _, v := trainOperands(r, c)
		n := c.b * c.h * c.lq * c.lk
		probs, probs2 := make([]float32, n), make([]float32, n)
		out := make([]float32, c.b*c.h*c.lq*c.hd)
		at := &Attention{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Scale: 1, Q: q, K: k, V: v,
			Out: Strided{out, c.h * c.lq * c.hd, c.hd, c.lq * c.hd}, Probs: probs}
		at.Run()
		(&AttentionProbs{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Scale: 1, Q: q, K: k, P: probs2}).Run()
		zeros := 0
		for i := range probs {
			if subnormal(probs[i]) || subnormal(probs2[i]) {
				t.Fatalf("%+v: subnormal probability %g / %g", c, probs[i], probs2[i])
			}
			if probs[i] == 0 {
				zeros++
			}
		}
		if zeros == 0 {
			t.Fatalf("%+v: no probability underflowed: the case tests nothing", c)
		}
		ds := make([]float32, n)
		do, _, _ := trainOperands(r, c)
		(&AttentionScoresGrad{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, DO: do, V: v, P: probs, DS: ds}).Run()
		for i, x := range ds {
			if subnormal(x) {
				t.Fatalf("%+v: subnormal scores gradient [%d] %g", c, i, x)
			}
		}
	}
}

// GemmStrided (B read in place) against the naive GEMM, with the tier's strided micro-kernel and without it.
func TestGemmStrided(t *testing.T) {
	r := rand.New(rand.NewSource(17))
	defer func(f func(k int, a []float32, lda, rows int, b []float32, ldb int, tile *[tileMax]float32)) {
		microStrided = f
	}(microStrided)
	for _, path := range []string{"tier", "packed"} {
		if path == "packed" {
			microStrided = nil
		}
		for _, th := range []int{1, 2} {
			old := SetThreads(th)
			for _, c := range []struct{ m, k, n, lda, ldb, ldc int }{{1, 1, 1, 1, 1, 1}, {5, 7, 16, 9, 16, 16}, {32, 6272, 128, 6272, 128, 128},
				{13, 300, 37, 301, 40, 37}, {96, 500, 32, 500, 100, 40}, {4, 3, 50, 3, 60, 55}, {64, 64, 33, 70, 33, 33}, {3, 0, 5, 1, 5, 5}} {
				a := randSlice(r, max(1, (c.m-1)*c.lda+c.k))
				b := randSlice(r, max(1, (c.k-1)*c.ldb+c.n))
				bkn := make([]float32, c.k*c.n)
				for kk := 0; kk < c.k; kk++ {
					copy(bkn[kk*c.n:], b[kk*c.ldb:kk*c.ldb+c.n])
				}
				got, want := randSlice(r, c.m*c.ldc), make([]float32, c.m*c.ldc)
				copy(want, got)
				refGemm(c.m, c.k, c.n, a, c.lda, bkn, want, c.ldc, nil)
				GemmStrided(c.m, a, c.lda, b, c.ldb, c.k, c.n, got, c.ldc)
				checkClose(t, fmt.Sprintf("%s threads %d %+v", path, th, c), got, want, 2e-5*math.Sqrt(float64(c.k)+1)*16)
			}
			SetThreads(old)
		}
	}
}
