//go:build goexperiment.simd && wasm

#include "textflag.h"

// The two micro-kernels of the strip attention (attention_strip_wasm.go): a 4×8 fp32 tile whose 8 f32x4
// accumulators stay in v128 locals over the whole k, as in gemm_f32_wasm.s, but looping over every 8-column
// panel of B inside the call (no Go call, no tile copy and no epilogue per tile). Registers: R0 k, R1–R4 the
// four A rows, R5 the panel pointer (panels are contiguous, so it simply runs on), R6 the first output row,
// R7 the k counter, R8 the panel counter, R9 the output row stride in bytes, R10–R13 the A rows' running
// pointers, R14 the row maxima and R15 the scale (stripQKWasm); V0–V7 accumulators, V8 and V9 the panel row,
// V10 the splat of a[r][k]. The k loop runs one splat step an iteration (F32SPLAT_STEP) and nothing else is
// kept in v128 locals across it, so its 11 live vectors fit the engine's 16 registers: the maxima and the
// scale are read from memory once a panel.

#include "tile_f32_wasm.h"

// The whole k of one panel: V0–V7 = Σ_k a_r[k]·panel[k][0:8], one splat step an iteration; R5 ends at the next
// panel.
#define PANEL \
	TILE_ZERO \
	Get R1 \
	Set R10 \
	Get R2 \
	Set R11 \
	Get R3 \
	Set R12 \
	Get R4 \
	Set R13 \
	Get R0 \
	Set R7 \
	Loop \
		F32SPLAT_STEP(R10, R11, R12, R13) \
		Get R7 \
		I64Const $1 \
		I64Sub \
		Tee R7 \
		I64Eqz \
		I32Eqz \
		BrIf $0 \
	End

// Stores acc0, acc1 at row r of the output (R6 + r·R9 bytes, floats 0–7); V128Store's offset immediate is not
// encoded by the assembler, so the address is computed.
#define OST(r, off, acc) \
	Get R6 \
	Get R9 \
	I64Const $(r) \
	I64Mul \
	I64Add \
	I32WrapI64 \
	I32Const $(off) \
	I32Add \
	Get acc \
	V128Store $0

#define OSTROWS \
	OST(0, 0, V0) \
	OST(0, 16, V1) \
	OST(1, 0, V2) \
	OST(1, 16, V3) \
	OST(2, 0, V4) \
	OST(2, 16, V5) \
	OST(3, 0, V6) \
	OST(3, 16, V7)

// acc0, acc1 (row r's scores) times the scale splatted in V8.
#define SCALE2(acc0, acc1) \
	Get acc0 \
	Get V8 \
	F32x4Mul \
	Set acc0 \
	Get acc1 \
	Get V8 \
	F32x4Mul \
	Set acc1

// mx[4r : 4r+4] (at R14 + 16r bytes) = max(itself, acc0, acc1) lane by lane.
#define MAXROW(r, acc0, acc1) \
	Get R14 \
	I32WrapI64 \
	I32Const $(16*r) \
	I32Add \
	Get R14 \
	I32WrapI64 \
	V128Load $(16*r) \
	Get acc0 \
	F32x4Max \
	Get acc1 \
	F32x4Max \
	V128Store $0

// func stripQKWasm(k, np int, a0, a1, a2, a3, b, s *float32, lds int, sc, mx *float32)
// For k ≥ 1 and the np ≥ 1 panels of b (each k×8 floats, one after the other): s_r[8p : 8p+8] = sc·Σ_{d<k} a_r[d]·b_p[d][0:8]
// for the four rows r (s_r at s + r·lds bytes), and mx[4r : 4r+4] = max(mx[4r : 4r+4], those scores) lane by lane.
TEXT ·stripQKWasm(SB), NOSPLIT, $0-88
	MOVD k+0(FP), R0
	MOVD np+8(FP), R8
	MOVD a0+16(FP), R1
	MOVD a1+24(FP), R2
	MOVD a2+32(FP), R3
	MOVD a3+40(FP), R4
	MOVD b+48(FP), R5
	MOVD s+56(FP), R6
	MOVD lds+64(FP), R9
	MOVD sc+72(FP), R15
	MOVD mx+80(FP), R14

	Loop
		PANEL
		Get R15
		I32WrapI64
		LDSPLAT0
		Set V8
		SCALE2(V0, V1)
		SCALE2(V2, V3)
		SCALE2(V4, V5)
		SCALE2(V6, V7)
		MAXROW(0, V0, V1)
		MAXROW(1, V2, V3)
		MAXROW(2, V4, V5)
		MAXROW(3, V6, V7)
		OSTROWS
		ADDR(R6, 32)
		Get R8
		I64Const $1
		I64Sub
		Tee R8
		I64Eqz
		I32Eqz
		BrIf $0
	End
	RET

// func stripPVWasm(k, np int, a0, a1, a2, a3, b, o *float32, ldo int)
// For k ≥ 1 and the np ≥ 1 panels of b (each k×8 floats, one after the other): o_r[8p : 8p+8] = Σ_{j<k} a_r[j]·b_p[j][0:8]
// for the four rows r (o_r at o + r·ldo bytes).
TEXT ·stripPVWasm(SB), NOSPLIT, $0-72
	MOVD k+0(FP), R0
	MOVD np+8(FP), R8
	MOVD a0+16(FP), R1
	MOVD a1+24(FP), R2
	MOVD a2+32(FP), R3
	MOVD a3+40(FP), R4
	MOVD b+48(FP), R5
	MOVD o+56(FP), R6
	MOVD ldo+64(FP), R9

	Loop
		PANEL
		OSTROWS
		ADDR(R6, 32)
		Get R8
		I64Const $1
		I64Sub
		Tee R8
		I64Eqz
		I32Eqz
		BrIf $0
	End
	RET
