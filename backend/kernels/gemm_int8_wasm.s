//go:build goexperiment.simd && wasm

#include "textflag.h"

// func int8KernWasm(kp int, a *int16, lda int, b *int8, rs, sc, tile *float32)
// tile[r·8+j] = float32(Σ_p a[r][2p:2p+2]·b[p][j][0:2]) · rs[r] · sc[j] for r < 4, j < 8: per pair of k, one
// 16-byte load of the panel row (8 columns × 2), sign-extended to two i16x8 (columns 0-3, 4-7), and per row
// a splat of the row's int16 pair and two i32x4.dot_i16x8_s; unrolled by two pairs (halves the pointer updates).
TEXT ·int8KernWasm(SB), NOSPLIT, $0-56
	MOVD kp+0(FP), R0
	MOVD a+8(FP), R1
	MOVD lda+16(FP), R2
	MOVD b+24(FP), R5

	Get R2
	I64Const $1
	I64Shl
	Set R2
	Get R1
	Get R2
	I64Add
	Set R3
	Get R3
	Get R2
	I64Add
	Set R4
	Get R4
	Get R2
	I64Add
	Set R6

	I32Const $0
	I32x4Splat
	Tee V0
	Tee V1
	Tee V2
	Tee V3
	Tee V4
	Tee V5
	Tee V6
	Set V7

// two pairs a step: R7 = kp/2 steps, then one pair if kp is odd
	Get R0
	I64Const $1
	I64ShrU
	Set R7
	Get R7
	I64Eqz
	I32Eqz
	If
	Loop
		Get R5
		I32WrapI64
		V128Load $0
		Tee V10
		I16x8ExtendLowI8x16S
		Set V8
		Get V10
		I16x8ExtendHighI8x16S
		Set V9
		Get R1
		I32WrapI64
		I32Load $0
		I32x4Splat
		Set V10
		Get V0
		Get V10
		Get V8
		I32x4DotI16x8S
		I32x4Add
		Set V0
		Get V1
		Get V10
		Get V9
		I32x4DotI16x8S
		I32x4Add
		Set V1
		Get R3
		I32WrapI64
		I32Load $0
		I32x4Splat
		Set V10
		Get V2
		Get V10
		Get V8
		I32x4DotI16x8S
		I32x4Add
		Set V2
		Get V3
		Get V10
		Get V9
		I32x4DotI16x8S
		I32x4Add
		Set V3
		Get R4
		I32WrapI64
		I32Load $0
		I32x4Splat
		Set V10
		Get V4
		Get V10
		Get V8
		I32x4DotI16x8S
		I32x4Add
		Set V4
		Get V5
		Get V10
		Get V9
		I32x4DotI16x8S
		I32x4Add
		Set V5
		Get R6
		I32WrapI64
		I32Load $0
		I32x4Splat
		Set V10
		Get V6
		Get V10
		Get V8
		I32x4DotI16x8S
		I32x4Add
		Set V6
		Get V7
		Get V10
		Get V9
		I32x4DotI16x8S
		I32x4Add
		Set V7
		Get R5
		I32WrapI64
		V128Load $16
		Tee V10
		I16x8ExtendLowI8x16S
		Set V8
		Get V10
		I16x8ExtendHighI8x16S
		Set V9
		Get R1
		I32WrapI64
		I32Load $4
		I32x4Splat
		Set V10
		Get V0
		Get V10
		Get V8
		I32x4DotI16x8S
		I32x4Add
		Set V0
		Get V1
		Get V10
		Get V9
		I32x4DotI16x8S
		I32x4Add
		Set V1
		Get R3
		I32WrapI64
		I32Load $4
		I32x4Splat
		Set V10
		Get V2
		Get V10
		Get V8
		I32x4DotI16x8S
		I32x4Add
		Set V2
		Get V3
		Get V10
		Get V9
		I32x4DotI16x8S
		I32x4Add
		Set V3
		Get R4
		I32WrapI64
		I32Load $4
		I32x4Splat
		Set V10
		Get V4
		Get V10
		Get V8
		I32x4DotI16x8S
		I32x4Add
		Set V4
		Get V5
		Get V10
		Get V9
		I32x4DotI16x8S
		I32x4Add
		Set V5
		Get R6
		I32WrapI64
		I32Load $4
		I32x4Splat
		Set V10
		Get V6
		Get V10
		Get V8
		I32x4DotI16x8S
		I32x4Add
		Set V6
		Get V7
		Get V10
		Get V9
		I32x4DotI16x8S
		I32x4Add
		Set V7
		Get R1
		I64Const $8
		I64Add
		Set R1
		Get R3
		I64Const $8
		I64Add
		Set R3
		Get R4
		I64Const $8
		I64Add
		Set R4
		Get R6
		I64Const $8
		I64Add
		Set R6
		Get R5
		I64Const $32
		I64Add
		Set R5
		Get R7
		I64Const $1
		I64Sub
		Tee R7
		I64Eqz
		I32Eqz
		BrIf $0
	End
	End
	Get R0
	I64Const $1
	I64And
	I64Eqz
	I32Eqz
	If
		Get R5
		I32WrapI64
		V128Load $0
		Tee V10
		I16x8ExtendLowI8x16S
		Set V8
		Get V10
		I16x8ExtendHighI8x16S
		Set V9
		Get R1
		I32WrapI64
		I32Load $0
		I32x4Splat
		Set V10
		Get V0
		Get V10
		Get V8
		I32x4DotI16x8S
		I32x4Add
		Set V0
		Get V1
		Get V10
		Get V9
		I32x4DotI16x8S
		I32x4Add
		Set V1
		Get R3
		I32WrapI64
		I32Load $0
		I32x4Splat
		Set V10
		Get V2
		Get V10
		Get V8
		I32x4DotI16x8S
		I32x4Add
		Set V2
		Get V3
		Get V10
		Get V9
		I32x4DotI16x8S
		I32x4Add
		Set V3
		Get R4
		I32WrapI64
		I32Load $0
		I32x4Splat
		Set V10
		Get V4
		Get V10
		Get V8
		I32x4DotI16x8S
		I32x4Add
		Set V4
		Get V5
		Get V10
		Get V9
		I32x4DotI16x8S
		I32x4Add
		Set V5
		Get R6
		I32WrapI64
		I32Load $0
		I32x4Splat
		Set V10
		Get V6
		Get V10
		Get V8
		I32x4DotI16x8S
		I32x4Add
		Set V6
		Get V7
		Get V10
		Get V9
		I32x4DotI16x8S
		I32x4Add
		Set V7
	End
	
	MOVD rs+32(FP), R1
	MOVD sc+40(FP), R2
	MOVD tile+48(FP), R3
	Get R2
	I32WrapI64
	V128Load $0
	Set V8
	Get R2
	I32WrapI64
	V128Load $16
	Set V9

// (V128Store's offset immediate is not encoded by the assembler: the address is computed instead.)
#define WROW(acc0, acc1, r) \
	Get R1 \
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

	WROW(V0, V1, 0)
	WROW(V2, V3, 1)
	WROW(V4, V5, 2)
	WROW(V6, V7, 3)
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
// q[i] = round-half-even(a[i]·inv) for i < n (n a multiple of 8, > 0; |a[i]·inv| ≤ 32767): f32x4.nearest,
// i32x4.trunc_sat_f32x4_s (exact on integers), i16x8.narrow_i32x4_s.
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
		Get R1
		I32WrapI64
		V128Load $0
		Get V2
		F32x4Mul
		F32x4Nearest
		I32x4TruncSatF32x4S
		Get R1
		I32WrapI64
		V128Load $16
		Get V2
		F32x4Mul
		F32x4Nearest
		I32x4TruncSatF32x4S
		I16x8NarrowI32x4S
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
