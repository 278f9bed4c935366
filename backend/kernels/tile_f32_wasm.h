// The k step of the 4×8 fp32 tile shared by gemm_f32_wasm.s and attention_strip_wasm.s: 8 f32x4
// accumulators V0–V7 (row r: columns 0-3 in V(2r), 4-7 in V(2r+1)), the panel row in V8 and V9, the splat
// of a[r][k] in V10.

#include "tile_wasm.h"

// With acc0 and then a[r][k] splatted on the stack: V10 = the splat, acc0 += splat·b for columns 0-3 (V8) and
// acc1 += splat·b for columns 4-7 (V9), with f32x4.mul + f32x4.add (wasm SIMD128 has no fused multiply-add
// outside relaxed SIMD).
#define F32TILE_MAC(acc0, acc1) \
	Tee V10 \
	Get V8 \
	F32x4Mul \
	F32x4Add \
	Set acc0 \
	Get acc1 \
	Get V10 \
	Get V9 \
	F32x4Mul \
	F32x4Add \
	Set acc1

// The panel row (8 floats, two f32x4 at byte offset ob from R5) into V8 and V9.
#define F32TILE_PANEL(ob) \
	Get R5 \
	I32WrapI64 \
	V128Load $(ob) \
	Set V8 \
	Get R5 \
	I32WrapI64 \
	V128Load $(ob+16) \
	Set V9

// One row: a[r][k] (f32.load at byte offset oa from row pointer ra) splatted into V10, then F32TILE_MAC.
#define F32TILE_ROW(ra, oa, acc0, acc1) \
	Get acc0 \
	Get ra \
	I32WrapI64 \
	F32Load $(oa) \
	F32x4Splat \
	F32TILE_MAC(acc0, acc1)

// One k step: the panel row at byte offset ob (F32TILE_PANEL), then the four rows whose pointers are r0–r3.
#define F32TILE_STEP(oa, ob, r0, r1, r2, r3) \
	F32TILE_PANEL(ob) \
	F32TILE_ROW(r0, oa, V0, V1) \
	F32TILE_ROW(r1, oa, V2, V3) \
	F32TILE_ROW(r2, oa, V4, V5) \
	F32TILE_ROW(r3, oa, V6, V7)

// v128.load32_splat with align 0 and offset 0: Go's wasm assembler does not write this load's memarg, so the
// two bytes are written as two Unreachable opcodes (0x00 0x00), decoded by the engine as the immediates (see
// gemm_int8_wasm.s).
#define LDSPLAT0 V128Load32Splat \
	Unreachable \
	Unreachable

// One row of one splat k step: a[r][k] (at the row's running pointer ra) as one v128.load32_splat, then
// F32TILE_MAC.
#define F32SPLAT_ROW(ra, acc0, acc1) \
	Get acc0 \
	Get ra \
	I32WrapI64 \
	LDSPLAT0 \
	F32TILE_MAC(acc0, acc1)

// One k step of the tile for loops that run one step an iteration (f32KernWasmSplat, f32StripWasm and the
// strip attention): the panel row (at R5) into V8, V9, the four rows (running pointers r0–r3), then every
// pointer one step on. V8 (Node 20) schedules every load of a loop body before its arithmetic, so an unrolled
// body (F32TILE_STEP four times: 8 panel vectors and 16 A values live beside the 8 accumulators) spills to
// the stack; one step lives in V0–V10 (11 registers) without spills, 45 GFLOP/s in L1 against 13.6
// (BenchmarkMicroWasmSplat, BenchmarkMicroWasmAsm).
#define F32SPLAT_STEP(r0, r1, r2, r3) \
	F32TILE_PANEL(0) \
	F32SPLAT_ROW(r0, V0, V1) \
	F32SPLAT_ROW(r1, V2, V3) \
	F32SPLAT_ROW(r2, V4, V5) \
	F32SPLAT_ROW(r3, V6, V7) \
	ADDR(r0, 4) \
	ADDR(r1, 4) \
	ADDR(r2, 4) \
	ADDR(r3, 4) \
	ADDR(R5, 32)
