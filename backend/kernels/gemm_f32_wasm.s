//go:build goexperiment.simd && wasm

#include "textflag.h"

#include "tile_f32_wasm.h"

// One k step of the 4×8 fp32 tile (tile_f32_wasm.h) with the A rows at R1–R4.
#define KSTEP(oa, ob) F32TILE_STEP(oa, ob, R1, R2, R3, R4)

// The 8 accumulators stored as the 4×8 tile at R6 (WST).
#define STORE_TILE \
	WST(0, V0) \
	WST(16, V1) \
	WST(32, V2) \
	WST(48, V3) \
	WST(64, V4) \
	WST(80, V5) \
	WST(96, V6) \
	WST(112, V7)

// One accumulator stored at byte offset off of the tile at R6 (V128Store's offset immediate is not encoded
// by the assembler: the address is computed instead).
#define WST(off, acc) \
	Get R6 \
	I32WrapI64 \
	I32Const $(off) \
	I32Add \
	Get acc \
	V128Store $0

// func f32KernWasm(k int, a0, a1, a2, a3, b, tile *float32)
// tile[r·8+j] = Σ_{p<k} a_r[p]·b[p·8+j] for r < 4, j < 8 (k > 0): the 8 accumulators (4 rows × columns 0-3,
// 4-7) stay in v128 locals over the whole k; unrolled by four k steps (fewer pointer updates and branches),
// then one step at a time.
TEXT ·f32KernWasm(SB), NOSPLIT, $0-56
	MOVD k+0(FP), R0
	MOVD a0+8(FP), R1
	MOVD a1+16(FP), R2
	MOVD a2+24(FP), R3
	MOVD a3+32(FP), R4
	MOVD b+40(FP), R5

	TILE_ZERO

	Get R0
	I64Const $2
	I64ShrU
	Set R7
	Get R7
	I64Eqz
	I32Eqz
	If
	Loop
		KSTEP(0, 0)
		KSTEP(4, 32)
		KSTEP(8, 64)
		KSTEP(12, 96)
		ADDR(R1, 16)
		ADDR(R2, 16)
		ADDR(R3, 16)
		ADDR(R4, 16)
		ADDR(R5, 128)
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
	I64Const $3
	I64And
	Set R7
	Get R7
	I64Eqz
	I32Eqz
	If
	Loop
		KSTEP(0, 0)
		ADDR(R1, 4)
		ADDR(R2, 4)
		ADDR(R3, 4)
		ADDR(R4, 4)
		ADDR(R5, 32)
		Get R7
		I64Const $1
		I64Sub
		Tee R7
		I64Eqz
		I32Eqz
		BrIf $0
	End
	End

	MOVD tile+48(FP), R6

	STORE_TILE
	RET

// func f32KernWasmSplat(k int, a0, a1, a2, a3, b, tile *float32)
// f32KernWasm's tile (k > 0) one k step a loop iteration, each A value loaded by v128.load32_splat: V8
// (Node 20) schedules every load of a loop body before its arithmetic, so f32KernWasm's four unrolled steps
// (8 panel vectors and 16 A values live at once beside the 8 accumulators) spill to the stack; one step
// is 2 panel loads, 4 splat loads, 8 mul and 8 add in 15 registers, without spills.
TEXT ·f32KernWasmSplat(SB), NOSPLIT, $0-56
	MOVD k+0(FP), R0
	MOVD a0+8(FP), R1
	MOVD a1+16(FP), R2
	MOVD a2+24(FP), R3
	MOVD a3+32(FP), R4
	MOVD b+40(FP), R5

	TILE_ZERO

	Loop
		F32SPLAT_STEP(R1, R2, R3, R4)
		Get R0
		I64Const $1
		I64Sub
		Tee R0
		I64Eqz
		I32Eqz
		BrIf $0
	End

	MOVD tile+48(FP), R6
	STORE_TILE
	RET

// func f32StripWasm(nt, k int, a *float32, lda int, b, tile *float32)
// f32KernWasmSplat for nt > 0 tiles of 4 rows (k > 0): tile t holds rows 4t..4t+3 of a (row stride lda floats)
// times the panel b, tile[t·32 + r·8 + j]. One call for up to 8 tiles: a Go call costs much in wasm (against a
// tile's k steps: 64 for attention's head dim), and the GEMM stores the strip with one storeTile.
TEXT ·f32StripWasm(SB), NOSPLIT, $0-48
	MOVD nt+0(FP), R7
	MOVD k+8(FP), R8
	MOVD a+16(FP), R1
	MOVD lda+24(FP), R9
	MOVD b+32(FP), R12
	MOVD tile+40(FP), R6

// R9 = lda in bytes; R2-R4 the tile's rows 1-3; R13 = 4·lda − 4·k bytes, from a row's end to the next tile's
	Get R9
	I64Const $2
	I64Shl
	Set R9
	Get R1
	Get R9
	I64Add
	Set R2
	Get R2
	Get R9
	I64Add
	Set R3
	Get R3
	Get R9
	I64Add
	Set R4
	Get R9
	I64Const $2
	I64Shl
	Get R8
	I64Const $2
	I64Shl
	I64Sub
	Set R13

	Loop
		TILE_ZERO
		Get R12
		Set R5
		Get R8
		Set R0

		Loop
			F32SPLAT_STEP(R1, R2, R3, R4)
			Get R0
			I64Const $1
			I64Sub
			Tee R0
			I64Eqz
			I32Eqz
			BrIf $0
		End

		STORE_TILE
		ADDR(R6, 128)
		Get R1
		Get R13
		I64Add
		Set R1
		Get R2
		Get R13
		I64Add
		Set R2
		Get R3
		Get R13
		I64Add
		Set R3
		Get R4
		Get R13
		I64Add
		Set R4
		Get R7
		I64Const $1
		I64Sub
		Tee R7
		I64Eqz
		I32Eqz
		BrIf $0
	End
	RET
