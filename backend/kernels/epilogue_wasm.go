//go:build goexperiment.simd && wasm

package kernels

import "unsafe"

// The GEMM epilogue and the attention's exp pass in Go wasm assembly (epilogue_wasm.s, exp_wasm.s; their
// constants and the exp polynomial in exp_f32_wasm.h). In archsimd, exp4 is too big to inline, so gelu4 and
// quickgelu4 call it once per vector, and a Go call in wasm passes its vectors through the Go stack in linear
// memory; the assembly keeps a tile row's two vectors and the polynomials' temporaries in v128 locals, its
// constants are v128.const, and its operations give the archsimd code's results bit for bit (NaN payloads
// aside; TestStoreTileWasmAsm, TestStoreTileWasmSweep, TestAttnExpWasmAsm).

// epiVecs holds one storeTile call's epilogue vectors: Alpha and PostScale splatted, the bias of the tile's 8
// columns.
type epiVecs struct {
	alpha, ps, b0, b1 [4]float32
}

// The mode bits of epiRowsWasm (epilogue_wasm.s tests them as the numbers 1, 2, 4, 8, 16).
const (
	epiAffine     = 1 << iota // y = y·Alpha + Bias, then after the activation y·PostScale: every epilogue (mode 0 copies)
	epiGELU                   // y = GELU(y) (erf form)
	epiQuickGELU              // y = y·σ(1.702·y)
	epiResidual               // y += res row
	epiAccumulate             // y += c row
)

// epiRowsWasm stores rows (> 0) rows of 8 floats from tile (rows 32 bytes apart) into c (rows ldc bytes apart)
// through the epilogue that mode selects, its vectors in v, the residual rows at res (ldr bytes apart); mode 0
// copies.
//
//go:noescape
func epiRowsWasm(tile *float32, rows int, c *float32, ldc int, res *float32, ldr int, v *epiVecs, mode int)

// storeTileWasm applies the epilogue to whole 8-wide tile rows in one assembly call (epiRowsWasm); partial
// tiles take storeTileGeneric.
func storeTileWasm(tile *[tileMax]float32, nr, rows, w int, c []float32, ldc, i0, j0 int, ep *Epilogue) {
	if w != 8 || nr != 8 {
		storeTileGeneric(tile, nr, rows, w, c, ldc, i0, j0, ep)
		return
	}
	if rows <= 0 {
		return
	}
	_ = tile[8*rows-1]
	co := i0*ldc + j0
	_ = c[co+(rows-1)*ldc+7]
	var v epiVecs
	mode := 0
	var res *float32
	ldr := 0
	if ep != nil {
		mode = epiAffine
		alpha, ps := ep.Alpha, ep.PostScale
		if alpha == 0 {
			alpha = 1
		}
		if ps == 0 {
			ps = 1
		}
		v.alpha = [4]float32{alpha, alpha, alpha, alpha}
		v.ps = [4]float32{ps, ps, ps, ps}
		if ep.Bias != nil {
			v.b0 = [4]float32(ep.Bias[j0 : j0+4])
			v.b1 = [4]float32(ep.Bias[j0+4 : j0+8])
		}
		switch ep.Act {
		case ActGELU:
			mode |= epiGELU
		case ActQuickGELU:
			mode |= epiQuickGELU
		}
		if ep.Residual != nil {
			ro := i0*ep.LdRes + j0
			_ = ep.Residual[ro+(rows-1)*ep.LdRes+7]
			mode |= epiResidual
			res, ldr = &ep.Residual[ro], 4*ep.LdRes
		}
		if ep.Accumulate {
			mode |= epiAccumulate
		}
	}
	epiRowsWasm(&tile[0], rows, &c[co], 4*ldc, res, ldr, &v, mode)
}

// expSubSumWasm sets the n (> 0, a multiple of 4) floats s at p to exp(s − m) and stores their lane sums in acc
// (exp_wasm.s).
//
//go:noescape
func expSubSumWasm(p *float32, n int, m float32, acc *[4]float32)

// attnExpWasm replaces the n (a multiple of 4) scores at pp by exp(s - m) and returns their sum (exp for
// x ≤ 0: x clamped at -87.33, n from the bits of x·log2e + 1.5·2²³, the Cephes polynomial), in assembly
// (exp_wasm.s: expSubSumWasm), the same rounded operations as expOneExact (exp_exact.go). A remainder of n is
// taken as a whole vector.
func attnExpWasm(pp unsafe.Pointer, n int, m float32) float64 {
	if n <= 0 {
		return 0
	}
	var a [4]float32
	expSubSumWasm((*float32)(pp), (n+3)&^3, m, &a)
	return (float64(a[0]) + float64(a[1])) + (float64(a[2]) + float64(a[3]))
}
