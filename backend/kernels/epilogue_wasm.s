//go:build goexperiment.simd && wasm

#include "textflag.h"

#include "exp_f32_wasm.h"

// exp4 (math_wasm.go) of V5 into V9, temporaries V6–V8: x = min(max(x0, expLo), expHi), n = nearest(x·log2e),
// r = n·(−ln2Hi) + x, r = n·(−ln2Lo) + r, the polynomial e (EXP_POLY), then e·2^(n>>1)·2^(n − n>>1) (two
// factors so that n up to 128 does not overflow the exponent field). Cheaper operations than exp4's with the
// same results: the clamps are f32x4.pmax/pmin (one maxps/minps each under V8, against six for
// f32x4.max/min's NaN and ±0 rules; pmax(x0, lo) = x0 < lo ? lo : x0 keeps a NaN x0 as max does, and the
// bounds are not zero); the integer n is bits(n + 1.5·2²³) − bits(1.5·2²³), exact for |n| < 2²² (x is
// clamped to [−104, 89]), instead of i32x4.trunc_sat_f32x4_s (seven instructions); and exp4's last step,
// x0 itself where x0 is NaN, is left out: a NaN x0 gives a NaN e here too, and QuickGELU's result is NaN
// either way (only the NaN's payload may differ).
#define EXP4 \
	Get V5 \
	KC_EXPLO \
	F32x4Pmax \
	KC_EXPHI \
	F32x4Pmin \
	Tee V6 \
	KC_L2E \
	F32x4Mul \
	F32x4Nearest \
	Tee V7 \
	KC_C1 \
	F32x4Mul \
	Get V6 \
	F32x4Add \
	Set V8 \
	Get V7 \
	KC_C2 \
	F32x4Mul \
	Get V8 \
	F32x4Add \
	Set V8 \
	EXP_POLY(V8) \
	Set V9 \
	Get V7 \
	KC_MAGIC \
	F32x4Add \
	KC_MAGIC \
	I32x4Sub \
	Tee V7 \
	I32Const $1 \
	I32x4ShrS \
	Set V8 \
	Get V7 \
	Get V8 \
	I32x4Sub \
	Set V7 \
	Get V9 \
	Get V8 \
	KC_I127 \
	I32x4Add \
	I32Const $23 \
	I32x4Shl \
	F32x4Mul \
	Get V7 \
	KC_I127 \
	I32x4Add \
	I32Const $23 \
	I32x4Shl \
	F32x4Mul \
	Set V9

// GELU2's steps for one vector v with temporaries z, a, r, t, nn, e: gelu4's operations in its order (h = v/2,
// z = v·√½, erf(z) = (1 − q) with z's sign, q = ((((A5·t + A4)·t + A3)·t + A2)·t + A1)·t·exp(−z²),
// t = 1/(|z|·erfP + 1), v = h·erf + h), with cheaper instructions of the same results: |z| and − by
// v128.and / v128.xor with the sign bits (f32x4.abs and f32x4.neg are three instructions each under V8), and
// exp(x0), x0 = −z² ≤ 0, by exp_wasm.s's steps (one exponent factor, no integer conversion): x = max(x0,
// −87.33654), t = x·log2e + 1.5·2²³, nn = t − 1.5·2²³, r = nn·(−ln2Hi) + x, r = nn·(−ln2Lo) + r, the polynomial
// e, e·2^nn from t's bits. For x0 ≥ −87.33654 this is exp4's value bit for bit (x is x0 in both; nn + 1.5·2²³
// rounds x·log2e to the nearest integer, ties to even, as f32x4.nearest does; nn ∈ [−126, 0] so 2^nn is one
// normal factor, and e·2^(n>>1)·2^(n − n>>1) rounds the same exact product once, at its last factor). Below,
// exp differs (a clamp at −87.33654 against −104) but is below 2⁻¹²⁵, and 1 − q, q = p·t·e < 2⁻¹²⁵, is 1
// either way.
//
// GS1: z = v·√½, a = |z|, x = max(−a², −87.33654), t = x·log2e + 1.5·2²³, nn = t − 1.5·2²³, r = nn·(−ln2Hi) + x.
#define GS1(v, z, a, r, t, nn) \
	Get v \
	KC_RSQ2 \
	F32x4Mul \
	Tee z \
	KC_ABS \
	V128And \
	Tee a \
	Get a \
	F32x4Mul \
	KC_SIGN \
	V128Xor \
	KC_ALO \
	F32x4Pmax \
	Tee r \
	KC_L2E \
	F32x4Mul \
	KC_MAGIC \
	F32x4Add \
	Tee t \
	KC_MAGIC \
	F32x4Sub \
	Tee nn \
	KC_C1 \
	F32x4Mul \
	Get r \
	F32x4Add \
	Set r

// GS2: r = nn·(−ln2Lo) + r, e = P0·r + P1.
#define GS2(r, nn, e) \
	Get nn \
	KC_C2 \
	F32x4Mul \
	Get r \
	F32x4Add \
	Set r \
	KC_P0 \
	Get r \
	F32x4Mul \
	KC_P1 \
	F32x4Add \
	Set e

// GS3: p = p·x + c (p, x locals).
#define GS3(p, x, c) \
	Get p \
	Get x \
	F32x4Mul \
	c \
	F32x4Add \
	Set p

// GS4: e = (e·r² + (r + 1))·2^nn (t's bits); then t = 1/(a·erfP + 1), r = A5·t + A4.
#define GS4(r, t, a, e) \
	Get e \
	Get r \
	Get r \
	F32x4Mul \
	F32x4Mul \
	Get r \
	KC_ONE \
	F32x4Add \
	F32x4Add \
	Get t \
	I32Const $23 \
	I32x4Shl \
	KC_B127 \
	I32x4Add \
	F32x4Mul \
	Set e \
	KC_ONE \
	Get a \
	KC_ERFP \
	F32x4Mul \
	KC_ONE \
	F32x4Add \
	F32x4Div \
	Set t \
	KC_A5 \
	Get t \
	F32x4Mul \
	KC_A4 \
	F32x4Add \
	Set r

// GS5: erf = (1 − r·t·e) with z's sign, v = h·erf + h (h = v/2).
#define GS5(v, z, r, t, e) \
	KC_ONE \
	Get r \
	Get t \
	F32x4Mul \
	Get e \
	F32x4Mul \
	F32x4Sub \
	Get z \
	KC_SIGN \
	V128And \
	V128Or \
	Get v \
	KC_HALF \
	F32x4Mul \
	Tee t \
	F32x4Mul \
	Get t \
	F32x4Add \
	Set v

// V0, V1 = GELU(V0), GELU(V1), the two vectors' steps interleaved (V8 emits them in this order: two
// independent chains for the out-of-order core; ≈ 7 % faster than one vector after the other in
// BenchmarkStoreTileWasm, four alternations, load 2.9), temporaries V2–V13; then V11–V13 (alpha, ps, the
// first bias vector) reloaded from R6.
#define GELU2 \
	GS1(V0, V2, V3, V4, V5, V6) \
	GS1(V1, V8, V9, V10, V11, V12) \
	GS2(V4, V6, V7) \
	GS2(V10, V12, V13) \
	GS3(V7, V4, KC_P2) \
	GS3(V13, V10, KC_P2) \
	GS3(V7, V4, KC_P3) \
	GS3(V13, V10, KC_P3) \
	GS3(V7, V4, KC_P4) \
	GS3(V13, V10, KC_P4) \
	GS3(V7, V4, KC_P5) \
	GS3(V13, V10, KC_P5) \
	GS4(V4, V5, V3, V7) \
	GS4(V10, V11, V9, V13) \
	GS3(V4, V5, KC_A3) \
	GS3(V10, V11, KC_A3) \
	GS3(V4, V5, KC_A2) \
	GS3(V10, V11, KC_A2) \
	GS3(V4, V5, KC_A1) \
	GS3(V10, V11, KC_A1) \
	GS5(V0, V2, V4, V5, V7) \
	GS5(V1, V8, V10, V11, V13) \
	Get R6 \
	I32WrapI64 \
	V128Load $0 \
	Set V11 \
	Get R6 \
	I32WrapI64 \
	V128Load $16 \
	Set V12 \
	Get R6 \
	I32WrapI64 \
	V128Load $32 \
	Set V13

// v = QuickGELU(v) as quickgelu4: v / (1 + exp4(−1.702·v)). Temporaries V5–V9.
#define QGELU(v) \
	Get v \
	KC_QK \
	F32x4Mul \
	Set V5 \
	EXP4 \
	Get v \
	KC_ONE \
	Get V9 \
	F32x4Add \
	F32x4Div \
	Set v

// If mode (R7) has bit b set, push true (an i32 for If).
#define MODE(b) \
	Get R7 \
	I64Const $(b) \
	I64And \
	I64Eqz \
	I32Eqz

// The row's two vectors += the two vectors at pointer p.
#define ADDROW(p) \
	Get V0 \
	Get p \
	I32WrapI64 \
	V128Load $0 \
	F32x4Add \
	Set V0 \
	Get V1 \
	Get p \
	I32WrapI64 \
	V128Load $16 \
	F32x4Add \
	Set V1

// The steps of a row that EPI_LOOP's arguments choose: the activation, the residual, the accumulation (each
// some code or none).
#define ACT_NONE
#define ACT_GELU GELU2
#define ACT_QGELU QGELU(V0) \
	QGELU(V1)
#define RES_NONE
#define RES_ADD ADDROW(R4) \
	Get R4 \
	Get R5 \
	I64Add \
	Set R4
#define ACC_NONE
#define ACC_ADD ADDROW(R2)

// One loop over the rows (R0 of them: tile R1, c R2 with ldc R3 bytes) with the steps act, res, acc fixed, so
// that the loop body has no branches (a branch per step and row made V8 move its hoisted constants between
// registers and stack at every join): y = tile row·alpha + bias (V11, V13, V14), act, y·ps (V12), res, acc,
// stored at c.
#define EPI_LOOP(act, res, acc) \
	Loop \
	Get R1 \
	I32WrapI64 \
	V128Load $0 \
	Get V11 \
	F32x4Mul \
	Get V13 \
	F32x4Add \
	Set V0 \
	Get R1 \
	I32WrapI64 \
	V128Load $16 \
	Get V11 \
	F32x4Mul \
	Get V14 \
	F32x4Add \
	Set V1 \
	act \
	Get V0 \
	Get V12 \
	F32x4Mul \
	Set V0 \
	Get V1 \
	Get V12 \
	F32x4Mul \
	Set V1 \
	res \
	acc \
	STROW \
	Get R0 \
	I64Const $1 \
	I64Sub \
	Tee R0 \
	I64Eqz \
	I32Eqz \
	BrIf $0 \
	End

// V0, V1 stored at c (R2), then the tile (R1) and c one row on.
#define STROW \
	Get R2 \
	I32WrapI64 \
	Get V0 \
	V128Store $0 \
	Get R2 \
	I32WrapI64 \
	I32Const $16 \
	I32Add \
	Get V1 \
	V128Store $0 \
	Get R1 \
	I64Const $32 \
	I64Add \
	Set R1 \
	Get R2 \
	Get R3 \
	I64Add \
	Set R2

// EPI_LOOP for the activation act and each of the four choices of residual and accumulation (mode bits 8, 16).
#define EPI_RES_ACC(act) \
	MODE(8) \
	If \
		MODE(16) \
		If \
			EPI_LOOP(act, RES_ADD, ACC_ADD) \
		Else \
			EPI_LOOP(act, RES_ADD, ACC_NONE) \
		End \
	Else \
		MODE(16) \
		If \
			EPI_LOOP(act, RES_NONE, ACC_ADD) \
		Else \
			EPI_LOOP(act, RES_NONE, ACC_NONE) \
		End \
	End

// func epiRowsWasm(tile *float32, rows int, c *float32, ldc int, res *float32, ldr int, v *epiVecs, mode int)
// For each of rows (> 0) tile rows (8 floats, columns 0-3 in V0, 4-7 in V1), the epilogue of storeTileWasm in
// its order: y·alpha + bias (V11, V13, V14), GELU (mode bit 2) or QuickGELU (4), ·ps (V12), + the residual row
// (bit 8; R4, ldr bytes a row), + the c row (bit 16), stored at c (R2, ldc bytes a row). Mode 0 copies the rows.
// The mode picks one of 13 loops (EPI_LOOP), each without branches.
TEXT ·epiRowsWasm(SB), NOSPLIT, $0-64
	MOVD tile+0(FP), R1
	MOVD rows+8(FP), R0
	MOVD c+16(FP), R2
	MOVD ldc+24(FP), R3
	MOVD res+32(FP), R4
	MOVD ldr+40(FP), R5
	MOVD v+48(FP), R6
	MOVD mode+56(FP), R7

	Get R7
	I64Eqz
	If
		Loop
			Get R1
			I32WrapI64
			V128Load $0
			Set V0
			Get R1
			I32WrapI64
			V128Load $16
			Set V1
			STROW
			Get R0
			I64Const $1
			I64Sub
			Tee R0
			I64Eqz
			I32Eqz
			BrIf $0
		End
		RET
	End

	Get R6
	I32WrapI64
	V128Load $0
	Set V11
	Get R6
	I32WrapI64
	V128Load $16
	Set V12
	Get R6
	I32WrapI64
	V128Load $32
	Set V13
	Get R6
	I32WrapI64
	V128Load $48
	Set V14

	MODE(2)
	If
		EPI_RES_ACC(ACT_GELU)
		RET
	End
	MODE(4)
	If
		EPI_RES_ACC(ACT_QGELU)
		RET
	End
	EPI_RES_ACC(ACT_NONE)
	RET
