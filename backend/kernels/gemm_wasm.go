//go:build goexperiment.simd && wasm

package kernels

import (
	"simd/archsimd"
	"unsafe"
)

// WebAssembly SIMD128: a 4×8 micro-kernel (8 f32x4 accumulators, 2 B vectors, 1 broadcast: within the 16
// v128 registers Go's wasm backend has), mul+add since wasm has no (non-relaxed) FMA. The tier's kernel is the
// assembly one (microWasmAsm, gemm_f32_wasm.s); microWasm is its archsimd twin, kept as the benchmark baseline.

var _ = registerTier(tierDef{name: "wasm-simd128", ok: func() bool { return true }, install: installWasm})

// installWasm installs the SIMD128 kernels (4-lane vectors; every wasm engine that runs Go's SIMD code has them).
func installWasm() {
	gemmMR, gemmNR = 4, 8
	microKernel = microWasmSplat
	stripKernel = stripWasm
	storeTile = storeTileWasm
	installMathWasm()
	attnRows = attnRowsWasm
	vsoftmaxGrad = softmaxGradWasm
	vscaleFlush = scaleFlushWasm
}

func ld4(p unsafe.Pointer, off int) f4 {
	return archsimd.LoadFloat32x4Array((*[4]float32)(unsafe.Add(p, off)))
}

func bc4(p unsafe.Pointer, off int) f4 {
	return archsimd.BroadcastFloat32x4(*(*float32)(unsafe.Add(p, off)))
}

//go:noescape
func f32KernWasm(k int, a0, a1, a2, a3, b, tile *float32)

//go:noescape
func f32KernWasmSplat(k int, a0, a1, a2, a3, b, tile *float32)

//go:noescape
func f32StripWasm(nt, k int, a *float32, lda int, b, tile *float32)

// stripWasm is the tier's strip kernel (stripKernel): rows ≤ tileMax/8 rows of a times the panel bp in one
// assembly call for the whole 4-row tiles (f32StripWasm), then f32KernWasmSplat for the last rows%4 (rows
// past rows re-read the last row; their tile rows are not stored). k = 0 stores a zero tile.
func stripWasm(k int, a []float32, lda, rows int, bp []float32, tile *[tileMax]float32) {
	if k == 0 {
		clear(tile[:8*rows])
		return
	}
	_ = a[(rows-1)*lda+k-1]
	_ = bp[8*k-1]
	_ = tile[8*rows-1]
	nt := rows / 4
	if nt > 0 {
		f32StripWasm(nt, k, unsafe.SliceData(a), lda, unsafe.SliceData(bp), &tile[0])
	}
	if r := rows - 4*nt; r > 0 {
		a0 := &a[4*nt*lda]
		a1 := (*float32)(unsafe.Add(unsafe.Pointer(a0), min(1, r-1)*lda*4))
		a2 := (*float32)(unsafe.Add(unsafe.Pointer(a0), min(2, r-1)*lda*4))
		f32KernWasmSplat(k, a0, a1, a2, a2, unsafe.SliceData(bp), &tile[32*nt])
	}
}

// microWasmSplat is microWasmAsm with f32KernWasmSplat (one k step a loop iteration, A by v128.load32_splat:
// no spills under V8), the tier's GEMM kernel. k = 0 stores a zero tile.
func microWasmSplat(k int, a []float32, lda, rows int, bp []float32, tile *[tileMax]float32) {
	if k == 0 {
		clear(tile[:32])
		return
	}
	_ = a[(rows-1)*lda+k-1]
	_ = bp[8*k-1]
	a0 := unsafe.SliceData(a)
	a1 := (*float32)(unsafe.Add(unsafe.Pointer(a0), min(1, rows-1)*lda*4))
	a2 := (*float32)(unsafe.Add(unsafe.Pointer(a0), min(2, rows-1)*lda*4))
	a3 := (*float32)(unsafe.Add(unsafe.Pointer(a0), min(3, rows-1)*lda*4))
	f32KernWasmSplat(k, a0, a1, a2, a3, unsafe.SliceData(bp), &tile[0])
}

// microWasmAsm is microWasm in wasm assembly (gemm_f32_wasm.s): the same 4×8 tile, its 8 accumulators held in
// v128 locals over the whole k, no bounds checks and k unrolled by four. Rows past rows re-read the last row
// (their tile rows are not stored). k = 0 stores a zero tile.
func microWasmAsm(k int, a []float32, lda, rows int, bp []float32, tile *[tileMax]float32) {
	if k > 0 {
		_ = a[(rows-1)*lda+k-1]
		_ = bp[8*k-1]
	}
	a0 := unsafe.SliceData(a)
	a1 := (*float32)(unsafe.Add(unsafe.Pointer(a0), min(1, rows-1)*lda*4))
	a2 := (*float32)(unsafe.Add(unsafe.Pointer(a0), min(2, rows-1)*lda*4))
	a3 := (*float32)(unsafe.Add(unsafe.Pointer(a0), min(3, rows-1)*lda*4))
	f32KernWasm(k, a0, a1, a2, a3, unsafe.SliceData(bp), &tile[0])
}

// microWasm is the 4×8 micro-kernel in archsimd (about half microWasmAsm's speed under V8).
func microWasm(k int, a []float32, lda, rows int, bp []float32, tile *[tileMax]float32) {
	_ = a[(rows-1)*lda+k-1]
	_ = bp[8*k-1]
	pa := unsafe.Pointer(&a[0])
	o1 := min(1, rows-1) * lda * 4
	o2 := min(2, rows-1) * lda * 4
	o3 := min(3, rows-1) * lda * 4
	pb := unsafe.Pointer(&bp[0])
	var c00, c01, c10, c11, c20, c21, c30, c31 f4
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

// storeTileWasmGo applies the epilogue to whole 8-wide tile rows in archsimd (the former storeTileWasm, kept as
// the baseline of the assembly one, epiRowsWasm).
func storeTileWasmGo(tile *[tileMax]float32, nr, rows, w int, c []float32, ldc, i0, j0 int, ep *Epilogue) {
	if w != 8 || nr != 8 {
		storeTileGeneric(tile, nr, rows, w, c, ldc, i0, j0, ep)
		return
	}
	t := tile[:]
	if ep == nil {
		for r := 0; r < rows; r++ {
			o := (i0+r)*ldc + j0
			st(ld(t, r*8), c, o)
			st(ld(t, r*8+4), c, o+4)
		}
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
	b0, b1 := splat(0), splat(0)
	if ep.Bias != nil {
		b0, b1 = ld(ep.Bias, j0), ld(ep.Bias, j0+4)
	}
	for r := 0; r < rows; r++ {
		y0 := ld(t, r*8).Mul(av).Add(b0)
		y1 := ld(t, r*8+4).Mul(av).Add(b1)
		switch ep.Act {
		case ActGELU:
			y0, y1 = gelu4(y0), gelu4(y1)
		case ActQuickGELU:
			y0, y1 = quickgelu4(y0), quickgelu4(y1)
		}
		y0, y1 = y0.Mul(pv), y1.Mul(pv)
		if ep.Residual != nil {
			o := (i0+r)*ep.LdRes + j0
			y0, y1 = y0.Add(ld(ep.Residual, o)), y1.Add(ld(ep.Residual, o+4))
		}
		o := (i0+r)*ldc + j0
		if ep.Accumulate {
			y0, y1 = y0.Add(ld(c, o)), y1.Add(ld(c, o+4))
		}
		st(y0, c, o)
		st(y1, c, o+4)
	}
}
