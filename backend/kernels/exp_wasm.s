//go:build goexperiment.simd && wasm

#include "textflag.h"

#include "exp_f32_wasm.h"

// func expSubSumWasm(p *float32, n int, m float32, acc *[4]float32)
// For the n (> 0, a multiple of 4) floats s at p: s = exp(s − m) as expOneExact computes it (x = max(s − m,
// −87.33654), t = x·log2e + 1.5·2²³, nn = t − 1.5·2²³, r = x + nn·(−ln2Hi) + nn·(−ln2Lo), the polynomial
// (EXP_POLY) times 2^nn from t's bits), and their lane sums into acc. m's splat in V15, the sums in V14. The
// clamp is f32x4.pmax(x, lo) = x < lo ? lo : x (one maxps under V8, six for f32x4.max; the same result, NaN
// included).
TEXT ·expSubSumWasm(SB), NOSPLIT, $0-32
	MOVD p+0(FP), R1
	MOVD n+8(FP), R0

	Get SP
	F32Load m+16(FP)
	F32x4Splat
	Set V15
	I32Const $0
	I32x4Splat
	Set V14
	Get R0
	I64Const $2
	I64ShrU
	Set R0

	Loop
		Get R1
		I32WrapI64
		V128Load $0
		Get V15
		F32x4Sub
		KC_ALO
		F32x4Pmax
		Tee V0
		KC_L2E
		F32x4Mul
		KC_MAGIC
		F32x4Add
		Tee V1
		KC_MAGIC
		F32x4Sub
		Tee V2
		KC_C1
		F32x4Mul
		Get V0
		F32x4Add
		Set V3
		Get V2
		KC_C2
		F32x4Mul
		Get V3
		F32x4Add
		Set V3
		EXP_POLY(V3)
		Get V1
		I32Const $23
		I32x4Shl
		KC_B127
		I32x4Add
		F32x4Mul
		Set V4
		Get R1
		I32WrapI64
		Get V4
		V128Store $0
		Get V14
		Get V4
		F32x4Add
		Set V14
		Get R1
		I64Const $16
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

	MOVD acc+24(FP), R1
	Get R1
	I32WrapI64
	Get V14
	V128Store $0
	RET
