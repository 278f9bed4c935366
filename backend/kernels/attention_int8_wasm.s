//go:build goexperiment.simd && wasm

#include "textflag.h"

// The score kernel of the integer attention's wasm strip path (attention_int8_wasm.go): the 4×8 int8 tile of
// gemm_int8_wasm.s (tile_int8_wasm.h) looping over every 8-key panel of the packed K inside the call, each
// tile scaled to float32 in registers, stored straight into the four score rows and folded into the rows'
// running maxima (no tile copy, no storeTile, no separate max pass). Registers: R1 the running A pointer (the
// strip's four rows interleaved), R0 its end, R4 the A start, R5 the panel pointer (panels are contiguous, so
// it simply runs on), R6 the first score row's current panel, R7 the panel counter, R8 the bytes of A, R9 the
// row scales, R10 the current panel's key scales, R11 the score row stride in bytes; V0–V7 accumulators, V8
// and V9 the panel row (then the key scales), V10 a row's pair splat (then its scale), V11–V14 the row maxima.

#include "tile_int8_wasm.h"
#include "exp_f32_wasm.h"

// Row r of the tile: acc0, acc1 (columns 0-3, 4-7) as float32 times the row scale rs[r] times the key scales
// (V8, V9), stored at score row r (R6 + r·R11 bytes) and folded into the row's maxima m.
#define SROW(acc0, acc1, r, m) \
	Get R9 \
	I32WrapI64 \
	F32Load $(r*4) \
	F32x4Splat \
	Set V10 \
	Get acc0 \
	F32x4ConvertI32x4S \
	Get V10 \
	F32x4Mul \
	Get V8 \
	F32x4Mul \
	Set acc0 \
	Get acc1 \
	F32x4ConvertI32x4S \
	Get V10 \
	F32x4Mul \
	Get V9 \
	F32x4Mul \
	Set acc1 \
	Get R6 \
	Get R11 \
	I64Const $(r) \
	I64Mul \
	I64Add \
	I32WrapI64 \
	Get acc0 \
	V128Store $0 \
	Get R6 \
	Get R11 \
	I64Const $(r) \
	I64Mul \
	I64Add \
	I32WrapI64 \
	I32Const $16 \
	I32Add \
	Get acc1 \
	V128Store $0 \
	Get m \
	Get acc0 \
	F32x4Max \
	Get acc1 \
	F32x4Max \
	Set m

// Loads or stores the four rows' maxima (16 floats at R12).
#define MLOAD(off, m) \
	Get R12 \
	I32WrapI64 \
	V128Load $(off) \
	Set m
#define MSTORE(off, m) \
	Get R12 \
	I32WrapI64 \
	I32Const $(off) \
	I32Add \
	Get m \
	V128Store $0

// func int8QKWasm(kp, np int, a *int16, b *int8, s *float32, lds int, rs, sc, mx *float32)
// For the np ≥ 1 panels of b (8 keys × kp > 0 pairs each, packed as the int8 GEMM's B, one after the other):
// s_r[8p : 8p+8] = float32(Σ_pairs a_r·b_p) · rs[r] · sc[8p : 8p+8] for the four rows r of a (interleaved as
// int8Kernel.ilv; s_r at s + r·lds bytes), and mx[4r : 4r+4] = max(mx[4r : 4r+4], those scores) lane by lane.
TEXT ·int8QKWasm(SB), NOSPLIT, $0-72
	MOVD kp+0(FP), R8
	MOVD np+8(FP), R7
	MOVD a+16(FP), R4
	MOVD b+24(FP), R5
	MOVD s+32(FP), R6
	MOVD lds+40(FP), R11
	MOVD rs+48(FP), R9
	MOVD sc+56(FP), R10
	MOVD mx+64(FP), R12
	MLOAD(0, V11)
	MLOAD(16, V12)
	MLOAD(32, V13)
	MLOAD(48, V14)
	Get R8
	I64Const $4
	I64Shl
	Set R8

	Loop
		TILE_ZERO
		Get R4
		Tee R1
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
		SROW(V0, V1, 0, V11)
		SROW(V2, V3, 1, V12)
		SROW(V4, V5, 2, V13)
		SROW(V6, V7, 3, V14)
		Get R10
		I64Const $32
		I64Add
		Set R10
		Get R6
		I64Const $32
		I64Add
		Set R6
		Get R7
		I64Const $1
		I64Sub
		Tee R7
		I64Eqz
		I32Eqz
		BrIf $0
	End

	MSTORE(0, V11)
	MSTORE(16, V12)
	MSTORE(32, V13)
	MSTORE(48, V14)
	RET

// func vColMaxWasm(v *float32, stride, rows int, out *[8]float32)
// out[d] = max over the rows of |v[j·stride bytes][d]| for d < 8 (rows > 0; NaN if any is NaN: f32x4.max
// propagates it).
TEXT ·vColMaxWasm(SB), NOSPLIT, $0-32
	MOVD v+0(FP), R1
	MOVD stride+8(FP), R2
	MOVD rows+16(FP), R0
	MOVD out+24(FP), R3
	I32Const $0
	I32x4Splat
	Tee V0
	Set V1
	Loop
		Get V0
		Get R1
		I32WrapI64
		V128Load $0
		F32x4Abs
		F32x4Max
		Set V0
		Get V1
		Get R1
		I32WrapI64
		V128Load $16
		F32x4Abs
		F32x4Max
		Set V1
		Get R1
		Get R2
		I64Add
		Set R1
		Get R0
		I64Const $1
		I64Sub
		Tee R0
		I64Eqz
		I32Eqz
		BrIf $0
	End
	Get R3
	I32WrapI64
	Get V0
	V128Store $0
	Get R3
	I32WrapI64
	I32Const $16
	I32Add
	Get V1
	V128Store $0
	RET

// func packVPairsWasm(dst *int8, v *float32, stride, pairs int, inv *[8]float32)
// For pairs > 0 pairs of rows (row 2i at v + 2i·stride bytes, row 2i+1 a stride further) writes the 16 bytes
// dst[16i : 16i+16] = (q(v[2i][d]), q(v[2i+1][d])) for d < 8, q(x) = round-half-even(x·inv[d]) (|q| ≤ 127):
// one pair of keys of one 8-wide panel of the int8 GEMM's B (packBInt8For's layout). The two rows' i16x8
// become the interleaved bytes as (row0 & 0xff) | (row1 << 8).
TEXT ·packVPairsWasm(SB), NOSPLIT, $0-40
	MOVD dst+0(FP), R4
	MOVD v+8(FP), R1
	MOVD stride+16(FP), R2
	MOVD pairs+24(FP), R0
	MOVD inv+32(FP), R3
	Get R3
	I32WrapI64
	V128Load $0
	Set V2
	Get R3
	I32WrapI64
	V128Load $16
	Set V3
	I32Const $255
	I16x8Splat
	Set V4
	Loop
		Get R4
		I32WrapI64
		QUANT8(0, V2, V3)
		Get V4
		V128And
		Get R1
		Get R2
		I64Add
		Set R1
		QUANT8(0, V2, V3)
		I32Const $8
		I16x8Shl
		V128Or
		V128Store $0
		Get R1
		Get R2
		I64Add
		Set R1
		Get R4
		I64Const $16
		I64Add
		Set R4
		Get R0
		I64Const $1
		I64Sub
		Tee R0
		I64Eqz
		I32Eqz
		BrIf $0
	End
	RET

// func expQuantIlv4Wasm(q *int16, s *float32, n int, m, qmax float32, sum *[4]int32)
// For i < n (a multiple of 4, > 0): e = expOneExact(s[i] − m) (exp_exact.go; exp_wasm.s's steps: the same
// rounded operations), written as the int16 level round-half-even(e·qmax) into pair i/2 of row q of a 4-row
// interleaved tile (pair p at q + 16·p bytes); sum = the lane sums of the levels. The exps of P become its
// quantized rows without a float32 pass in between. x − m is clamped with f32x4.pmax (x < lo ? lo : x: one
// maxps, where f32x4.max is a NaN-handling sequence; a NaN x stays NaN all the same), and e·qmax
// (0 ≤ e·qmax ≤ 32767) is rounded half to even by adding 1.5·2²³, whose low bits are then the integer (two
// instructions instead of nearest and a saturating truncation). Constants are v128.const (exp_f32_wasm.h).
// Registers: V0 m, V6 qmax, V7 the level sums, V9 x, V10 t, V11 n, V12 r, V14 the levels.
TEXT ·expQuantIlv4Wasm(SB), NOSPLIT, $0-40
	MOVD q+0(FP), R2
	MOVD s+8(FP), R1
	MOVD n+16(FP), R0
	F32Load m+24(FP)
	F32x4Splat
	Set V0
	F32Load qmax+28(FP)
	F32x4Splat
	Set V6
	I32Const $0
	I32x4Splat
	Set V7
	Loop
		// x = max(s − m, lo)
		Get R1
		I32WrapI64
		V128Load $0
		Get V0
		F32x4Sub
		KC_ALO
		F32x4Pmax
		Tee V9
		// t = x·log2e + magic; n = t − magic
		KC_L2E
		F32x4Mul
		KC_MAGIC
		F32x4Add
		Tee V10
		KC_MAGIC
		F32x4Sub
		Set V11
		// r = x + n·(−ln2Hi); r = r + n·(−ln2Lo)
		Get V9
		Get V11
		KC_C1
		F32x4Mul
		F32x4Add
		Get V11
		KC_C2
		F32x4Mul
		F32x4Add
		Set V12
		// e = the polynomial times 2ⁿ from t's bits
		EXP_POLY(V12)
		Get V10
		I32Const $23
		I32x4Shl
		KC_B127
		I32x4Add
		F32x4Mul
		// q = round-half-even(e·qmax) as int16 pairs, and the levels' sums
		Get V6
		F32x4Mul
		KC_MAGIC
		F32x4Add
		KC_MAGIC
		I32x4Sub
		Tee V14
		Get V7
		I32x4Add
		Set V7
		Get V14
		Get V14
		I16x8NarrowI32x4S
		Set V14
		PAIRST(V14, 0)
		PAIRST(V14, 1)
		Get R1
		I64Const $16
		I64Add
		Set R1
		Get R2
		I64Const $32
		I64Add
		Set R2
		Get R0
		I64Const $4
		I64Sub
		Tee R0
		I64Eqz
		I32Eqz
		BrIf $0
	End
	MOVD sum+32(FP), R5
	Get R5
	I32WrapI64
	Get V7
	V128Store $0
	RET
