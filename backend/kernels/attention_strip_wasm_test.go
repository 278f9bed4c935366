//go:build goexperiment.simd && wasm

package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"syscall/js"
	"testing"
	"time"
)

// nodeCPU is the Node process's CPU time (user + system, process.cpuUsage): under a loaded machine the wall
// time of a run swings with the other processes, its CPU time much less.
func nodeCPU() time.Duration {
	u := js.Global().Get("process").Call("cpuUsage")
	return time.Duration(u.Get("user").Float()+u.Get("system").Float()) * time.Microsecond
}

// stripAttention lays out q, k [B, L, H, hd] (L = max(lq, lk)) and v, out [B, H, L, hd] from r.
func stripAttention(r *rand.Rand, b, h, lq, lk, hd int, scale float32) *Attention {
	L := max(lq, lk)
	w := h * hd
	qk := randSlice(r, b*L*2*w)
	v := randSlice(r, b*h*lk*hd+3)
	out := randSlice(r, b*h*lq*hd)
	return &Attention{Batch: b, Heads: h, Lq: lq, Lk: lk, HeadDim: hd, Scale: scale,
		Q:   Strided{qk, L * 2 * w, 2 * w, hd},
		K:   Strided{qk[w:], L * 2 * w, 2 * w, hd},
		V:   Strided{v[3:], h * lk * hd, hd, lk * hd},
		Out: Strided{out, h * lq * hd, hd, lq * hd},
	}
}

func checkAttention(t *testing.T, what string, at *Attention, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(at.Out.Data[i]) - want[i]); !(d <= tol*(1+math.Abs(want[i]))) {
			t.Fatalf("%s: out[%d] = %g, want %g", what, i, at.Out.Data[i], want[i])
		}
	}
}

// The strip path against the float64 reference: query counts that leave a partial strip, key counts that
// leave a partial key panel (its zero scores must not enter the maxima), head dims 8, 32, 64, 96 and ones
// that are not multiples of 8 (padded V panels), with and without Probs.
func TestAttentionStripWasm(t *testing.T) {
	// Installed with the wasm-simd128 tier only (the portable tier keeps the portable paths); the kernel
	// itself is checked in every tier the tests run.
	if (Tier() == "wasm-simd128") != (attnStrip != nil) {
		t.Fatalf("tier %s: strip path installed %v", Tier(), attnStrip != nil)
	}
	r := rand.New(rand.NewSource(21))
	type ac struct{ b, h, lq, lk, hd int }
	for _, c := range []ac{{1, 1, 1, 1, 8}, {1, 2, 5, 3, 8}, {2, 3, 7, 9, 32}, {1, 2, 13, 17, 64}, {1, 1, 6, 100, 96},
		{2, 1, 9, 197, 64}, {1, 1, 4, 16, 64}, {1, 1, 5, 7, 17}, {1, 1, 1, 8, 33}, {1, 2, 3, 1030, 96}, {1, 1, 11, 1568, 64},
		{3, 2, 2, 24, 20}} {
		for _, probs := range []bool{false, true} {
			at := stripAttention(r, c.b, c.h, c.lq, c.lk, c.hd, 1/float32(math.Sqrt(float64(c.hd))))
			want := refAttention(at)
			var wantP []float64
			if probs {
				at.Probs = randSlice(r, c.b*c.h*c.lq*c.lk)
				wantP = refProbs(&AttentionProbs{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Scale: at.Scale, Q: at.Q, K: at.K})
			}
			if !attnStripWasm(at) {
				t.Fatal("attnStripWasm declined")
			}
			checkAttention(t, fmt.Sprintf("strip %+v probs %v", c, probs), at, want, 1e-5)
			for i := range wantP {
				if d := math.Abs(float64(at.Probs[i]) - wantP[i]); d > 1e-6 {
					t.Fatalf("strip %+v probs[%d] = %g, want %g", c, i, at.Probs[i], wantP[i])
				}
			}
		}
	}
}

// Every score far below zero (about −800 − 8j) with a partial key panel: the padded keys' zero scores would
// make a maximum of 0 and exp would underflow to a uniform (wrong) distribution; the row maximum must come
// from the real keys only. Also large scores (scale 40) and Out aliasing Q.
func TestAttentionStripWasmExtremes(t *testing.T) {
	for _, lk := range []int{13, 16, 21} {
		hd := 8
		q := make([]float32, 3*hd)
		k := make([]float32, lk*hd)
		v := make([]float32, lk*hd)
		for i := range q {
			q[i] = 10
		}
		for j := 0; j < lk; j++ {
			for d := 0; d < hd; d++ {
				k[j*hd+d] = -10 - 0.1*float32(j)
				v[j*hd+d] = float32(j + d)
			}
		}
		at := &Attention{Batch: 1, Heads: 1, Lq: 3, Lk: lk, HeadDim: hd, Scale: 1,
			Q: Strided{q, 0, hd, 0}, K: Strided{k, 0, hd, 0}, V: Strided{v, 0, hd, 0}, Out: Strided{make([]float32, 3*hd), 0, hd, 0}}
		want := refAttention(at)
		attnStripWasm(at)
		checkAttention(t, fmt.Sprintf("far negative scores, Lk %d", lk), at, want, 1e-5)
	}
	r := rand.New(rand.NewSource(5))
	at := stripAttention(r, 1, 2, 9, 37, 24, 40)
	want := refAttention(at)
	attnStripWasm(at)
	checkAttention(t, "scale 40", at, want, 1e-5)
	// Out = Q (same strides): each strip reads its query rows before writing them.
	at = stripAttention(r, 2, 2, 10, 10, 24, 0.3)
	at.Out = at.Q
	want = refAttention(at)
	attnStripWasm(at)
	checkAttention(t, "Out aliasing Q", at, want, 1e-5)
}

// BenchmarkAttentionStripWasm times the strip path and the path it replaces (GEMM path, flash path for
// Lk ≥ flashMinLk) on the small golden's attention shapes, alternating them in every iteration so that both
// see the same load; it reports each one's GFLOP per CPU second of the Node process.
func BenchmarkAttentionStripWasm(b *testing.B) {
	for _, c := range []struct {
		name                 string
		batch, h, lq, lk, hd int
	}{{"videomae_small_1x3x1568x1568x64", 1, 3, 1568, 1568, 64}, {"clip_small_8x3x197x197x64", 8, 3, 197, 197, 64},
		{"bcast_1x3x196x196x32", 1, 3, 196, 196, 32}} {
		b.Run(c.name, func(b *testing.B) {
			defer func(on bool) { stripOn = on }(stripOn)
			at := stripAttention(rand.New(rand.NewSource(1)), c.batch, c.h, c.lq, c.lk, c.hd, 1/float32(math.Sqrt(float64(c.hd))))
			var tNew, tOld time.Duration
			for i := 0; i < b.N; i++ {
				for _, on := range []bool{i%2 == 0, i%2 != 0} {
					stripOn = on
					t0 := nodeCPU()
					at.Run()
					if on {
						tNew += nodeCPU() - t0
					} else {
						tOld += nodeCPU() - t0
					}
				}
			}
			fl := 4 * float64(c.batch*c.h) * float64(c.lq) * float64(c.lk) * float64(c.hd) * float64(b.N)
			b.ReportMetric(fl/tNew.Seconds()/1e9, "strip-GFLOP/cpu-s")
			b.ReportMetric(fl/tOld.Seconds()/1e9, "old-GFLOP/cpu-s")
		})
	}
}
