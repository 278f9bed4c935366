//go:build goexperiment.simd && wasm

package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
	"time"
)

// BenchmarkMicroWasm times the archsimd 4×8 micro-kernel (microWasm, the baseline of the assembly one) in L1
// (K=256). Earlier variants, 2026-12-01 under Node 20, best of 30 interleaved runs: 4×8 25.8 GFLOP/s, 6×8 20.3,
// 4×8 with K unrolled by 2 24.6 (their code is in the git history).
func BenchmarkMicroWasm(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	k := 256
	a := randSlice(r, 4*k)
	bp := randSlice(r, 8*k)
	var tile [tileMax]float32
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		microWasm(k, a, k, 4, bp, &tile)
	}
	b.ReportMetric(float64(2*4*8*k)*float64(b.N)/time.Since(t0).Seconds()/1e9, "GFLOP/s")
}

// BenchmarkMicroWasmAsm times the assembly 4×8 micro-kernel (gemm_f32_wasm.s) on BenchmarkMicroWasm's data.
func BenchmarkMicroWasmAsm(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	k := 256
	a := randSlice(r, 4*k)
	bp := randSlice(r, 8*k)
	var tile [tileMax]float32
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		microWasmAsm(k, a, k, 4, bp, &tile)
	}
	b.ReportMetric(float64(2*4*8*k)*float64(b.N)/time.Since(t0).Seconds()/1e9, "GFLOP/s")
}

// BenchmarkMicroWasmSplat times the tier's kernel (microWasmSplat: one k step a loop iteration, A by
// v128.load32_splat) on BenchmarkMicroWasm's data.
func BenchmarkMicroWasmSplat(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	k := 256
	a := randSlice(r, 4*k)
	bp := randSlice(r, 8*k)
	var tile [tileMax]float32
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		microWasmSplat(k, a, k, 4, bp, &tile)
	}
	b.ReportMetric(float64(2*4*8*k)*float64(b.N)/time.Since(t0).Seconds()/1e9, "GFLOP/s")
}

// BenchmarkGemmWasmKernels compares the Go (microWasm) and assembly (microWasmAsm, microWasmSplat, and the
// tier's stripWasm: up to 8 tiles a call) micro-kernels inside the
// whole GEMM on the ViT-B shapes, back to back per shape.
func BenchmarkGemmWasmKernels(b *testing.B) {
	defer func(f, s microFn) { microKernel, stripKernel = f, s }(microKernel, stripKernel)
	for _, s := range []struct{ m, k, n int }{{1568, 768, 2304}, {1568, 768, 3072}} {
		for _, kc := range []struct {
			name string
			fn   microFn
		}{{"go", microWasm}, {"asm", microWasmAsm}, {"splat", microWasmSplat}, {"strip", stripWasm}} {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", s.m, s.k, s.n, kc.name), func(b *testing.B) {
				microKernel, stripKernel = kc.fn, nil
				if kc.name == "strip" {
					microKernel, stripKernel = microWasmSplat, stripWasm
				}
				benchGemm(b, s.m, s.k, s.n, false, nil)
			})
		}
	}
}

// TestMicroWasmAsm checks the assembly micro-kernels against a float64 sum on every k mod 4, k = 0, partial row
// counts and a row stride past k; the rows past rows must not be read beyond a (the slice ends at the last row).
func TestMicroWasmAsm(t *testing.T) {
	for _, kc := range []struct {
		name string
		fn   microFn
		rows []int
	}{{"asm", microWasmAsm, []int{1, 2, 3, 4}}, {"splat", microWasmSplat, []int{1, 2, 3, 4}},
		{"strip", stripWasm, []int{1, 2, 3, 4, 5, 7, 8, 13, 32}}} {
		t.Run(kc.name, func(t *testing.T) { testMicroWasmKernel(t, kc.fn, kc.rows) })
	}
}

func testMicroWasmKernel(t *testing.T, kern microFn, rowCounts []int) {
	r := rand.New(rand.NewSource(3))
	for _, k := range []int{0, 1, 2, 3, 4, 5, 7, 8, 13, 64, 255, 770} {
		for _, rows := range rowCounts {
			lda := k + 3
			a := randSlice(r, (rows-1)*lda+max(k, 1))
			bp := randSlice(r, 8*max(k, 1))
			var tile [tileMax]float32
			for i := range tile {
				tile[i] = float32(i) // stale values must be overwritten
			}
			kern(k, a, lda, rows, bp, &tile)
			for i := 0; i < rows; i++ {
				for j := 0; j < 8; j++ {
					var want, mag float64
					for p := 0; p < k; p++ {
						x := float64(a[i*lda+p]) * float64(bp[p*8+j])
						want += x
						mag += math.Abs(x)
					}
					if got := float64(tile[i*8+j]); math.Abs(got-want) > 1e-6*(mag+1) {
						t.Fatalf("k=%d rows=%d tile[%d][%d] = %g, want %g", k, rows, i, j, got, want)
					}
				}
			}
		}
	}
}
