//go:build goexperiment.simd && wasm

#include "textflag.h"

#include "tile_int8_wasm.h"

// (V128Store's offset immediate is not encoded by the assembler: the address is computed instead.)
#define WROW(acc0, acc1, r) \
	Get R9 \
	I32WrapI64 \
	F32Load $(r*4) \
	F32x4Splat \
	Set V10 \
	Get R3 \
	I32WrapI64 \
	I32Const $(r*32) \
	I32Add \
	Get acc0 \
	F32x4ConvertI32x4S \
	Get V10 \
	F32x4Mul \
	Get V8 \
	F32x4Mul \
	V128Store $0 \
	Get R3 \
	I32WrapI64 \
	I32Const $(r*32+16) \
	I32Add \
	Get acc1 \
	F32x4ConvertI32x4S \
	Get V10 \
	F32x4Mul \
	Get V9 \
	F32x4Mul \
	V128Store $0


// func int8StripWasm(nt, kp int, a *int16, b *int8, rs, sc, tile *float32)
// For nt > 0 tiles t of 4 rows, tile[t·32 + r·8 + j] = float32(Σ_p a_t[p][r][0:2]·b[p][j][0:2]) · rs[4t+r] · sc[j]
// (r < 4, j < 8, kp > 0), a_t the t-th block of 16·kp bytes of a: the tile's 4 rows interleaved (pair p of row
// r at a_t[8p+2r], int8Kernel.ilv). Per pair of k, the panel row (8 columns × 2 int8) as two v128.load8x8_s
// (sign-extended as loaded: no separate extends), the 4 rows' pairs as four v128.load32_splat from one
// pointer, and 8 dot products into the 8 i32x4 accumulators; V8 (Node 20) compiles a pair to 6 loads, 8
// vpmaddwd, 8 vpaddd and 2 pointer adds, without spills. The pair loop is not unrolled: TurboFan schedules
// every load of a loop body ahead of its arithmetic, and the 24 vectors of four unrolled pairs spilled
// (measured slower). The tiles of a strip share one call (a Go call costs much in wasm) and one storeTile.
TEXT ·int8StripWasm(SB), NOSPLIT, $0-56
	MOVD nt+0(FP), R7
	MOVD kp+8(FP), R8
	MOVD a+16(FP), R1
	MOVD b+24(FP), R2
	MOVD rs+32(FP), R9
	MOVD sc+40(FP), R10
	MOVD tile+48(FP), R3

// R8 = 16·kp, the bytes of a tile's interleaved A (and of the panel)
	Get R8
	I64Const $4
	I64Shl
	Set R8

	Loop
		TILE_ZERO
		Get R2
		Set R5
		Get R1
		Get R8
		I64Add
		Set R0

		INT8TILE_KLOOP

		Get R10
		I32WrapI64
		V128Load $0
		Set V8
		Get R10
		I32WrapI64
		V128Load $16
		Set V9
		WROW(V0, V1, 0)
		WROW(V2, V3, 1)
		WROW(V4, V5, 2)
		WROW(V6, V7, 3)
		Get R9
		I64Const $16
		I64Add
		Set R9
		Get R3
		I64Const $128
		I64Add
		Set R3
		Get R7
		I64Const $1
		I64Sub
		Tee R7
		I64Eqz
		I32Eqz
		BrIf $0
	End
	RET

// func maxAbsBitsWasm(a *float32, n int, out *[4]uint32)
// out = lane-wise max of the bit patterns of |a[i]| over i < n (n a multiple of 4, > 0): as integers,
// finite < Inf < NaN, so a NaN is not lost.
TEXT ·maxAbsBitsWasm(SB), NOSPLIT, $0-24
	MOVD a+0(FP), R1
	MOVD n+8(FP), R0
	MOVD out+16(FP), R2
	I32Const $0
	I32x4Splat
	Set V0
	Loop
		Get V0
		Get R1
		I32WrapI64
		V128Load $0
		F32x4Abs
		I32x4MaxS
		Set V0
		Get R1
		I64Const $16
		I64Add
		Set R1
		Get R0
		I64Const $4
		I64Sub
		Tee R0
		I64Eqz
		I32Eqz
		BrIf $0
	End
	Get R2
	I32WrapI64
	Get V0
	V128Store $0
	RET

// func quantRowWasm(q *int16, a *float32, n int, inv float32)
// q[i] = round-half-even(a[i]·inv) for i < n (n a multiple of 8, > 0; |a[i]·inv| ≤ 32767), 8 at a time (QUANT8).
TEXT ·quantRowWasm(SB), NOSPLIT, $0-28
	MOVD q+0(FP), R2
	MOVD a+8(FP), R1
	MOVD n+16(FP), R0
	F32Load inv+24(FP)
	F32x4Splat
	Set V2
	Loop
		Get R2
		I32WrapI64
		QUANT8(0, V2, V2)
		V128Store $0
		Get R1
		I64Const $32
		I64Add
		Set R1
		Get R2
		I64Const $16
		I64Add
		Set R2
		Get R0
		I64Const $8
		I64Sub
		Tee R0
		I64Eqz
		I32Eqz
		BrIf $0
	End
	RET

// func quantRowIlv4Wasm(q *int16, a *float32, n int, inv float32)
// quantRowWasm writing the pairs 16 bytes apart, as one row of a 4-row interleaved tile (int8Kernel.ilv): pair p
// of round-half-even(a·inv) at q + 16·p bytes (n a multiple of 8, > 0; |a[i]·inv| ≤ 32767).
TEXT ·quantRowIlv4Wasm(SB), NOSPLIT, $0-28
	MOVD q+0(FP), R2
	MOVD a+8(FP), R1
	MOVD n+16(FP), R0
	F32Load inv+24(FP)
	F32x4Splat
	Set V2
	Loop
		QUANT8(0, V2, V2)
		Set V3
		PAIRST(V3, 0)
		PAIRST(V3, 1)
		PAIRST(V3, 2)
		PAIRST(V3, 3)
		Get R1
		I64Const $32
		I64Add
		Set R1
		Get R2
		I64Const $64
		I64Add
		Set R2
		Get R0
		I64Const $8
		I64Sub
		Tee R0
		I64Eqz
		I32Eqz
		BrIf $0
	End
	RET
