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

//go:noescape
func quantRowIlv4Wasm(q *int16, a *float32, n int, inv float32)

// quantRowIlv4 quantizes row (k values, k ≤ k2 ≤ k+1) as row r of the 4-row interleaved tile q (int8Kernel.ilv,
// 4·k2 values): q[8p + 2r + e] = round-half-even(row[2p+e]·inv), zero past k.
func quantRowIlv4(q []int16, r, k2 int, row []float32, inv float32) {
	k := len(row)
	q = q[2*r : 4*k2]
	n := k &^ 7
	if n > 0 {
		_ = q[8*(n/2-1)+1]
		quantRowIlv4Wasm(&q[0], &row[0], n, inv)
	}
	for i := n; i < k; i++ {
		q[8*(i>>1)+i&1] = int16(math.RoundToEven(float64(row[i] * inv)))
	}
	if k < k2 {
		q[8*(k>>1)+1] = 0
	}
}

// clearRowIlv4 zeroes row r of the 4-row interleaved tile q (4·k2 values).
func clearRowIlv4(q []int16, r, k2 int) {
	q = q[2*r : 4*k2]
	for p := 0; p < k2/2; p++ {
		q[8*p], q[8*p+1] = 0, 0
	}
}

// quantizeRowsIlv4Wasm is quantizeRows then interleaveRows for tiles of 4 rows in one pass: each row's pairs
// go straight to their interleaved places (the rows past rows, up to a multiple of 4, are zeroed).
func quantizeRowsIlv4Wasm(q []int16, rs []float32, a []float32, lda, rows, k, k2 int, qmax float32) {
	for r := 0; r < (rows+3)&^3; r++ {
		tile := q[(r/4)*4*k2 : (r/4+1)*4*k2]
		if r >= rows {
			clearRowIlv4(tile, r%4, k2)
			continue
		}
		row := a[r*lda : r*lda+k]
		var inv float32
		rs[r], inv = symScale(maxAbsRow(row), qmax)
		if inv == 0 {
			clearRowIlv4(tile, r%4, k2)
			continue
		}
		quantRowIlv4(tile, r%4, k2, row, inv)
	}
}

// The tier registers its int8 kernels before any init runs (tier.go's init installs the tier).
var _ = func() bool {
	quantizeRow, maxAbsRow = quantizeRowWasm, maxAbsWasm
	quantizeRowsIlv4 = quantizeRowsIlv4Wasm
	int8Tiers = append([]int8Kernel{{name: "wasm-simd128", mr: 4, nr: 8, cw: 8, ilv: true, micro: int8MicroWasm, strip: int8StripWasmGo}}, int8Tiers...)
	return true
}()
