//go:build goexperiment.simd && wasm

#include "textflag.h"

// Go's wasm assembler (go1.27) writes v128.load8x8_s and v128.load32_splat without their memarg (the align
// and offset immediates every wasm load has: cmd/internal/obj/wasm encodes them for V128Load only). The
// macros below write the memarg themselves as the opcode bytes of instructions that take no immediates:
// align 0 is the byte 0x00 (Unreachable), offset 0 another 0x00, and offset 8 the two-byte LEB128 0x88 0x00
// (0x88 is the opcode of i64.shr_u). None of them executes: the engine decodes them as the load's
// immediates. Should a Go release start writing the memarg itself, the module would no longer validate and
// every test of the kernel would fail: it cannot be silently wrong.
#define LD8X8S0 V128Load8x8S \
	Unreachable \
	Unreachable
#define LD8X8S8 V128Load8x8S \
	Unreachable \
	I64ShrU \
	Unreachable
#define LD32SPLAT0 V128Load32Splat \
	Unreachable \
	Unreachable

// One row of one pair of k: the row's int16 pair as one v128.load32_splat into V10, then two
// i32x4.dot_i16x8_s with the panel row's columns 0-3 (V8) and 4-7 (V9) added to the row's accumulators.
#define QROW(ra, acc0, acc1) \
	Get acc0 \
	Get ra \
	I32WrapI64 \
	LD32SPLAT0 \
	Tee V10 \
	Get V8 \
	I32x4DotI16x8S \
	I32x4Add \
	Set acc0 \
	Get acc1 \
	Get V10 \
	Get V9 \
	I32x4DotI16x8S \
	I32x4Add \
	Set acc1

// func int8KernWasm(kp int, a *int16, lda int, b *int8, rs, sc, tile *float32)
// tile[r·8+j] = float32(Σ_p a[r][2p:2p+2]·b[p][j][0:2]) · rs[r] · sc[j] for r < 4, j < 8 (kp > 0): per pair
// of k, the panel row (8 columns × 2 int8) as two v128.load8x8_s (sign-extended as loaded: no separate
// extends), per row one v128.load32_splat of its pair (no i32.load + splat), and 8 dot products into the 8
// i32x4 accumulators. V8 (Node 20) compiles this to 6 loads, 8 vpmaddwd and 8 vpaddd a pair with no spill.
// The loop is not unrolled: TurboFan schedules every load of the loop body ahead of the arithmetic, and the
// 24 vectors of four unrolled pairs spilled (measured slower than the former kernel).
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

	Loop
		Get R5
		I32WrapI64
		LD8X8S0
		Set V8
		Get R5
		I32WrapI64
		LD8X8S8
		Set V9
		QROW(R1, V0, V1)
		QROW(R3, V2, V3)
		QROW(R4, V4, V5)
		QROW(R6, V6, V7)
		Get R1
		I64Const $4
		I64Add
		Set R1
		Get R3
		I64Const $4
		I64Add
		Set R3
		Get R4
		I64Const $4
		I64Add
		Set R4
		Get R6
		I64Const $4
		I64Add
		Set R6
		Get R5
		I64Const $16
		I64Add
		Set R5
		Get R0
		I64Const $1
		I64Sub
		Tee R0
		I64Eqz
		I32Eqz
		BrIf $0
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
