//go:build goexperiment.simd && wasm

package kernels

import (
	"math"
	"unsafe"
)

// WebAssembly SIMD128 int8 GEMM tier: a 4×8 tile of i32x4.dot_i16x8_s in assembly (gemm_int8_wasm.s), which
// archsimd does not offer. 8 i32x4 accumulators (4 rows × columns 0-3, 4-7), the two weight vectors
// (sign-extended as loaded, v128.load8x8_s) and the four rows' splat A pairs (v128.load32_splat) are 14 of
// the 15 SIMD registers V8 allocates on x86-64, so the loop runs without spills. The tile's A rows come
// interleaved (ilv), so one pointer walks them.

//go:noescape
func int8StripWasm(nt, kp int, a *int16, b *int8, rs, sc, tile *float32)

// int8StripWasmGo is the tier's strip kernel (int8Kernel.strip): nt tiles of 4 interleaved rows (kp pairs
// each) times the panel b, in one assembly call.
func int8StripWasmGo(nt, kp int, a []int16, b []int8, rs, sc []float32, tile []float32) {
	if nt <= 0 {
		return
	}
	if kp == 0 {
		clear(tile[:32*nt])
		return
	}
	_ = a[8*kp*nt-1]
	_ = b[16*kp-1]
	_ = rs[4*nt-1]
	_ = sc[7]
	_ = tile[32*nt-1]
	int8StripWasm(nt, kp, unsafe.SliceData(a), unsafe.SliceData(b), unsafe.SliceData(rs), unsafe.SliceData(sc), unsafe.SliceData(tile))
}

// int8MicroWasm is the tier's micro-kernel, one tile of the strip kernel: a holds the tile's 4 rows
// interleaved (int8Kernel.ilv; lda unused).
func int8MicroWasm(kp int, a []int16, lda int, b []int8, rs, sc []float32, tile []float32) {
	int8StripWasmGo(1, kp, a, b, rs, sc, tile)
}

//go:noescape
func maxAbsBitsWasm(a *float32, n int, out *[4]uint32)

//go:noescape
func quantRowWasm(q *int16, a *float32, n int, inv float32)

// maxAbsWasm is maxAbsGeneric with SIMD128 (NaN if a holds a NaN).
func maxAbsWasm(a []float32) float32 {
	n := len(a) &^ 3
	var mx float32
	if n > 0 {
		var lanes [4]uint32
		maxAbsBitsWasm(unsafe.SliceData(a), n, &lanes)
		mx = math.Float32frombits(max(lanes[0], lanes[1], lanes[2], lanes[3]))
	}
	return max(mx, maxAbsGeneric(a[n:]))
}

// quantizeRowWasm is quantizeRowGeneric with SIMD128 (f32x4.nearest rounds half to even as math.RoundToEven).
func quantizeRowWasm(q []int16, a []float32, inv float32) {
	n := len(a) &^ 7
	q = q[:len(a)]
	if n > 0 {
		quantRowWasm(unsafe.SliceData(q), unsafe.SliceData(a), n, inv)
	}
	quantizeRowGeneric(q[n:], a[n:], inv)
}

// The tier registers its int8 kernels before any init runs (tier.go's init installs the tier).
var _ = func() bool {
	quantizeRow, maxAbsRow = quantizeRowWasm, maxAbsWasm
	int8Tiers = append([]int8Kernel{{name: "wasm-simd128", mr: 4, nr: 8, cw: 8, ilv: true, micro: int8MicroWasm, strip: int8StripWasmGo}}, int8Tiers...)
	return true
}()
