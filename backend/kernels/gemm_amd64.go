//go:build goexperiment.simd && amd64

package kernels

import (
	"simd/archsimd"
	"unsafe"
)

var hasAVX2FMA = archsimd.X86.AVX2() && archsimd.X86.FMA()

var _ = registerTier(tierDef{name: "avx2", ok: func() bool { return hasAVX2FMA }, install: installAVX2})

// installAVX2 installs the AVX2+FMA kernels (8-lane YMM vectors).
func installAVX2() {
	gemmMR, gemmNR = 4, 16
	microKernel = microAVX2x4
	microStrided = microAVX2x4Strided
	storeTile = storeTileAVX2
	installMathAVX2()
	installAttnAVX2()
	installTrainAVX2()
}

func ld8(p unsafe.Pointer, off int) f8 {
	return archsimd.LoadFloat32x8Array((*[8]float32)(unsafe.Add(p, off)))
}

func bc8(p unsafe.Pointer, off int) f8 {
	return archsimd.BroadcastFloat32x8(*(*float32)(unsafe.Add(p, off)))
}

// microAVX2x4 is the 4×16 FMA micro-kernel: 8 Float32x8 accumulators, two B vectors and four broadcast A
// values live (14 of the 16 YMM registers). Measured alternatives that lost: 6×16 (the compiler's scheduler
// hoists all six broadcasts and spills accumulators: −20 %), K unrolled by 4 (every load hoisted, spills and
// SSE/AVX mixing: 100× slower), separate VMULPS+VADDPS to dodge the 213-form FMA's register moves (the
// multiplies get hoisted and spill: −15 %), A packed as k groups of 4 (one address stream: −5 %).
func microAVX2x4(k int, a []float32, lda, rows int, bp []float32, tile *[tileMax]float32) {
	microAVX2x4Strided(k, a, lda, rows, bp, 16, tile) // a packed panel is a B of row stride 16
}

// microAVX2x4Strided computes the 4×16 tile of A (rows ≤ 4 of stride lda) times a B of 16 columns whose row kk
// starts at b[kk·ldb]: a packed panel (ldb 16) or, for GemmStrided, B read in place.
func microAVX2x4Strided(k int, a []float32, lda, rows int, b []float32, ldb int, tile *[tileMax]float32) {
	_ = a[(rows-1)*lda+k-1]
	_ = b[(k-1)*ldb+15]
	pa := unsafe.Pointer(&a[0])
	o1 := min(1, rows-1) * lda * 4
	o2 := min(2, rows-1) * lda * 4
	o3 := min(3, rows-1) * lda * 4
	pb := unsafe.Pointer(&b[0])
	sb := ldb * 4
	var c00, c01, c10, c11, c20, c21, c30, c31 f8
	for kk := 0; kk < k; kk++ {
		ob := kk * sb
		b0 := ld8(pb, ob)
		b1 := ld8(pb, ob+32)
		oa := kk * 4
		x0 := bc8(pa, oa)
		x1 := bc8(pa, oa+o1)
		x2 := bc8(pa, oa+o2)
		x3 := bc8(pa, oa+o3)
		c00 = x0.MulAdd(b0, c00)
		c01 = x0.MulAdd(b1, c01)
		c10 = x1.MulAdd(b0, c10)
		c11 = x1.MulAdd(b1, c11)
		c20 = x2.MulAdd(b0, c20)
		c21 = x2.MulAdd(b1, c21)
		c30 = x3.MulAdd(b0, c30)
		c31 = x3.MulAdd(b1, c31)
	}
	c00.Store(tile[0:])
	c01.Store(tile[8:])
	c10.Store(tile[16:])
	c11.Store(tile[24:])
	c20.Store(tile[32:])
	c21.Store(tile[40:])
	c30.Store(tile[48:])
	c31.Store(tile[56:])
	archsimd.ClearAVXUpperBits()
}

// storeTileAVX2 applies the epilogue to whole 16-wide tile rows in registers (partial tiles take the generic
// path).
func storeTileAVX2(tile *[tileMax]float32, nr, rows, w int, c []float32, ldc, i0, j0 int, ep *Epilogue) {
	if w != 16 || nr != 16 {
		storeTileGeneric(tile, nr, rows, w, c, ldc, i0, j0, ep)
		return
	}
	t := tile[:]
	if ep == nil {
		for r := 0; r < rows; r++ {
			o := (i0+r)*ldc + j0
			st(ld(t, r*16), c, o)
			st(ld(t, r*16+8), c, o+8)
		}
		archsimd.ClearAVXUpperBits()
		return
	}
	alpha, ps := ep.Alpha, ep.PostScale
	if alpha == 0 {
		alpha = 1
	}
	if ps == 0 {
		ps = 1
	}
	av, pv := splat(alpha), splat(ps)
	b0, b1 := f8{}, f8{}
	if ep.Bias != nil {
		b0, b1 = ld(ep.Bias, j0), ld(ep.Bias, j0+8)
	}
	for r := 0; r < rows; r++ {
		y0 := ld(t, r*16).Mul(av).Add(b0)
		y1 := ld(t, r*16+8).Mul(av).Add(b1)
		switch ep.Act {
		case ActGELU:
			y0, y1 = gelu8(y0), gelu8(y1)
		case ActQuickGELU:
			y0, y1 = quickgelu8(y0), quickgelu8(y1)
		}
		y0, y1 = y0.Mul(pv), y1.Mul(pv)
		if ep.Residual != nil {
			o := (i0+r)*ep.LdRes + j0
			y0, y1 = y0.Add(ld(ep.Residual, o)), y1.Add(ld(ep.Residual, o+8))
		}
		o := (i0+r)*ldc + j0
		if ep.Accumulate {
			y0, y1 = y0.Add(ld(c, o)), y1.Add(ld(c, o+8))
		}
		st(y0, c, o)
		st(y1, c, o+8)
	}
	archsimd.ClearAVXUpperBits()
}
