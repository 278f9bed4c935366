//go:build goexperiment.simd && wasm

package kernels

import (
	"math/rand"
	"testing"
	"time"
	"unsafe"
)

func microWasm6x8(k int, a []float32, lda, rows int, bp []float32, tile *[tileMax]float32) {
	_ = a[(rows-1)*lda+k-1]
	_ = bp[8*k-1]
	pa := unsafe.Pointer(&a[0])
	o1 := min(1, rows-1) * lda * 4
	o2 := min(2, rows-1) * lda * 4
	o3 := min(3, rows-1) * lda * 4
	o4 := min(4, rows-1) * lda * 4
	o5 := min(5, rows-1) * lda * 4
	pb := unsafe.Pointer(&bp[0])
	var c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51 f4
	for kk := 0; kk < k; kk++ {
		ob := kk * 32
		b0 := ld4(pb, ob)
		b1 := ld4(pb, ob+16)
		oa := kk * 4
		x := bc4(pa, oa)
		c00 = c00.Add(x.Mul(b0))
		c01 = c01.Add(x.Mul(b1))
		x = bc4(pa, oa+o1)
		c10 = c10.Add(x.Mul(b0))
		c11 = c11.Add(x.Mul(b1))
		x = bc4(pa, oa+o2)
		c20 = c20.Add(x.Mul(b0))
		c21 = c21.Add(x.Mul(b1))
		x = bc4(pa, oa+o3)
		c30 = c30.Add(x.Mul(b0))
		c31 = c31.Add(x.Mul(b1))
		x = bc4(pa, oa+o4)
		c40 = c40.Add(x.Mul(b0))
		c41 = c41.Add(x.Mul(b1))
		x = bc4(pa, oa+o5)
		c50 = c50.Add(x.Mul(b0))
		c51 = c51.Add(x.Mul(b1))
	}
	t := tile[:]
	st(c00, t, 0)
	st(c01, t, 4)
	st(c10, t, 8)
	st(c11, t, 12)
	st(c20, t, 16)
	st(c21, t, 20)
	st(c30, t, 24)
	st(c31, t, 28)
	st(c40, t, 32)
	st(c41, t, 36)
	st(c50, t, 40)
	st(c51, t, 44)
}

func microWasmK2(k int, a []float32, lda, rows int, bp []float32, tile *[tileMax]float32) {
	_ = a[(rows-1)*lda+k-1]
	_ = bp[8*k-1]
	pa := unsafe.Pointer(&a[0])
	o1 := min(1, rows-1) * lda * 4
	o2 := min(2, rows-1) * lda * 4
	o3 := min(3, rows-1) * lda * 4
	pb := unsafe.Pointer(&bp[0])
	var c00, c01, c10, c11, c20, c21, c30, c31 f4
	kk := 0
	for ; kk+2 <= k; kk += 2 {
		ob := kk * 32
		b0 := ld4(pb, ob)
		b1 := ld4(pb, ob+16)
		b2 := ld4(pb, ob+32)
		b3 := ld4(pb, ob+48)
		oa := kk * 4
		x := bc4(pa, oa)
		y := bc4(pa, oa+4)
		c00 = c00.Add(x.Mul(b0)).Add(y.Mul(b2))
		c01 = c01.Add(x.Mul(b1)).Add(y.Mul(b3))
		x = bc4(pa, oa+o1)
		y = bc4(pa, oa+o1+4)
		c10 = c10.Add(x.Mul(b0)).Add(y.Mul(b2))
		c11 = c11.Add(x.Mul(b1)).Add(y.Mul(b3))
		x = bc4(pa, oa+o2)
		y = bc4(pa, oa+o2+4)
		c20 = c20.Add(x.Mul(b0)).Add(y.Mul(b2))
		c21 = c21.Add(x.Mul(b1)).Add(y.Mul(b3))
		x = bc4(pa, oa+o3)
		y = bc4(pa, oa+o3+4)
		c30 = c30.Add(x.Mul(b0)).Add(y.Mul(b2))
		c31 = c31.Add(x.Mul(b1)).Add(y.Mul(b3))
	}
	for ; kk < k; kk++ {
		ob := kk * 32
		b0 := ld4(pb, ob)
		b1 := ld4(pb, ob+16)
		oa := kk * 4
		x := bc4(pa, oa)
		c00 = c00.Add(x.Mul(b0))
		c01 = c01.Add(x.Mul(b1))
		x = bc4(pa, oa+o1)
		c10 = c10.Add(x.Mul(b0))
		c11 = c11.Add(x.Mul(b1))
		x = bc4(pa, oa+o2)
		c20 = c20.Add(x.Mul(b0))
		c21 = c21.Add(x.Mul(b1))
		x = bc4(pa, oa+o3)
		c30 = c30.Add(x.Mul(b0))
		c31 = c31.Add(x.Mul(b1))
	}
	t := tile[:]
	st(c00, t, 0)
	st(c01, t, 4)
	st(c10, t, 8)
	st(c11, t, 12)
	st(c20, t, 16)
	st(c21, t, 20)
	st(c30, t, 24)
	st(c31, t, 28)
}

// Alternatives to the 4×8 SIMD128 micro-kernel, kept for BenchmarkMicroWasm: in L1 (K=256) under Node 20 on
// the 2026-12-01 machine, best of 30 interleaved runs: 4×8 25.8 GFLOP/s, 6×8 20.3, 4×8 with K unrolled by 2
// 24.6.
func TestMicroWasmVariants(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	k := 37
	a := randSlice(r, 6*k)
	bp := randSlice(r, 8*k)
	var tile, ref [tileMax]float32
	microWasm(k, a, k, 4, bp, &ref)
	microWasm6x8(k, a, k, 6, bp, &tile)
	for i := 0; i < 32; i++ {
		if d := tile[i] - ref[i]; d > 1e-4 || d < -1e-4 {
			t.Fatal("6x8 mismatch", i, tile[i], ref[i])
		}
	}
	microWasmK2(k, a, k, 4, bp, &tile)
	for i := 0; i < 32; i++ {
		if d := tile[i] - ref[i]; d > 1e-4 || d < -1e-4 {
			t.Fatal("k2 mismatch", i, tile[i], ref[i])
		}
	}
}

func BenchmarkMicroWasm(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	k := 256
	a := randSlice(r, 6*k)
	bp := randSlice(r, 8*k)
	var tile [tileMax]float32
	for _, v := range []struct {
		name string
		f    microFn
		mr   int
	}{{"4x8", microWasm, 4}, {"6x8", microWasm6x8, 6}, {"4x8k2", microWasmK2, 4}} {
		b.Run(v.name, func(b *testing.B) {
			t0 := time.Now()
			for i := 0; i < b.N; i++ {
				v.f(k, a, k, v.mr, bp, &tile)
			}
			b.ReportMetric(float64(2*v.mr*8*k)*float64(b.N)/time.Since(t0).Seconds()/1e9, "GFLOP/s")
		})
	}
}
