//go:build goexperiment.simd && amd64

package kernels

import (
	"simd/archsimd"
	"unsafe"
)

// The AVX-512 tier: the fp32 GEMM on 16-lane ZMM vectors (8×32 tiles, panels NR = 32) and the elementwise
// and row kernels at 16 lanes (math_avx512_amd64.go); the attention and training row kernels stay AVX2.

var hasAVX512 = archsimd.X86.AVX512() && archsimd.X86.FMA()

// avx512Name reports VNNI (used by the int8 kernels) in the tier's name.
var avx512Name = func() string {
	if archsimd.X86.AVX512VNNI() {
		return "avx512-vnni"
	}
	return "avx512"
}()

var _ = registerTier(tierDef{name: avx512Name, ok: func() bool { return hasAVX512 }, install: installAVX512})

func installAVX512() {
	installAVX2()
	gemmMR, gemmNR = 8, 32
	microKernel = microAVX512x8
	microStrided = microAVX512x8Strided
	storeTile = storeTileAVX512
	installMathAVX512()
}

func microAVX512x8(k int, a []float32, lda, rows int, bp []float32, tile *[tileMax]float32) {
	microAVX512x8Strided(k, a, lda, rows, bp, 32, tile)
}

// microAVX512x8Strided computes the 8×32 tile of A (rows ≤ 8 of stride lda) times a B of 32 columns whose row
// kk starts at b[kk·ldb] (a packed panel: ldb 32), in assembly (gemm_avx512_amd64.s): Go's SIMD code
// generation spills this tile's sixteen accumulators (it hoists all eight broadcasts and has only the 213 form
// of FMA). Rows past rows-1 read row rows-1.
func microAVX512x8Strided(k int, a []float32, lda, rows int, b []float32, ldb int, tile *[tileMax]float32) {
	if k <= 0 { // the assembly loop needs k ≥ 1
		clear(tile[:8*32])
		return
	}
	_ = a[(rows-1)*lda+k-1]
	_ = b[(k-1)*ldb+31]
	var rp [8]unsafe.Pointer
	for r := range rp {
		rp[r] = unsafe.Pointer(&a[min(r, rows-1)*lda])
	}
	microAVX512x8asm(k, &rp, unsafe.Pointer(&b[0]), ldb*4, tile)
}

//go:noescape
func microAVX512x8asm(k int, rows *[8]unsafe.Pointer, b unsafe.Pointer, ldb int, tile *[tileMax]float32)

// storeTileAVX512 applies the epilogue to whole 32-wide tile rows in registers (16-wide ones take AVX2's, partial
// tiles the generic path).
func storeTileAVX512(tile *[tileMax]float32, nr, rows, w int, c []float32, ldc, i0, j0 int, ep *Epilogue) {
	if w != 32 || nr != 32 {
		// 16-wide tiles (the avx2 int8 kernel's) and partial panels take AVX2's path.
		storeTileAVX2(tile, nr, rows, w, c, ldc, i0, j0, ep)
		return
	}
	t := tile[:]
	if ep == nil {
		for r := 0; r < rows; r++ {
			o := (i0+r)*ldc + j0
			stz(ldz(t, r*32), c, o)
			stz(ldz(t, r*32+16), c, o+16)
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
	av, pv := splatz(alpha), splatz(ps)
	b0, b1 := f16{}, f16{}
	if ep.Bias != nil {
		b0, b1 = ldz(ep.Bias, j0), ldz(ep.Bias, j0+16)
	}
	if ep.Act != ActNone {
		// The activation over the whole tile at once: GELU/QuickGELU's exps in one loop (expSubLoopAVX512)
		// instead of a call per vector, which spills every register.
		for r := 0; r < rows; r++ {
			stz(ldz(t, r*32).Mul(av).Add(b0), t, r*32)
			stz(ldz(t, r*32+16).Mul(av).Add(b1), t, r*32+16)
		}
		var e [tileMax]float32
		y := t[:rows*32]
		if ep.Act == ActGELU {
			geluChunkAVX512(y, y, e[:rows*32])
		} else {
			quickgeluChunkAVX512(y, y, e[:rows*32])
		}
		av, b0, b1 = splatz(1), f16{}, f16{}
	}
	for r := 0; r < rows; r++ {
		y0 := ldz(t, r*32).Mul(av).Add(b0)
		y1 := ldz(t, r*32+16).Mul(av).Add(b1)
		y0, y1 = y0.Mul(pv), y1.Mul(pv)
		if ep.Residual != nil {
			o := (i0+r)*ep.LdRes + j0
			y0, y1 = y0.Add(ldz(ep.Residual, o)), y1.Add(ldz(ep.Residual, o+16))
		}
		o := (i0+r)*ldc + j0
		if ep.Accumulate {
			y0, y1 = y0.Add(ldz(c, o)), y1.Add(ldz(c, o+16))
		}
		stz(y0, c, o)
		stz(y1, c, o+16)
	}
	archsimd.ClearAVXUpperBits()
}
