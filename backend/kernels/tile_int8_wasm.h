// The k step of the 4×8 int8 tile shared by gemm_int8_wasm.s and attention_int8_wasm.s: 8 i32x4 accumulators
// (row r: columns 0-3 and 4-7), the panel row's columns 0-3 in V8 and 4-7 in V9 (int16 pairs), the splat of a
// row's int16 pair in V10, the A rows interleaved by tile behind R1.

#include "tile_wasm.h"

// Go's wasm assembler (go1.27) writes v128.load8x8_s and v128.load32_splat without their memarg (the align
// and offset immediates every wasm load has: cmd/internal/obj/wasm encodes them for V128Load only). The
// macros below write the memarg themselves as the opcode bytes of instructions that take no immediates:
// align 0 is the byte 0x00 (Unreachable), offset 0 another 0x00, and offset n < 64 the two-byte LEB128
// (0x80|n, 0x00): 0x84 i64.or (4), 0x88 i64.shr_u (8), 0x8c f32.neg (12). None of them executes: the
// engine decodes them as the load's immediates. Should a Go release start writing the memarg itself, the
// module would no longer validate and every test of the kernel would fail: it cannot be silently wrong.
#define MEMARG0 Unreachable \
	Unreachable
#define MEMARG(opc) Unreachable \
	opc \
	Unreachable

// One row of one pair of k: the row's int16 pair (at byte offset opc's of R1) as one v128.load32_splat into
// V10, then two i32x4.dot_i16x8_s with the panel row's columns 0-3 (V8) and 4-7 (V9) added to the row's
// accumulators.
#define QROW(memarg, acc0, acc1) \
	Get acc0 \
	Get R1 \
	I32WrapI64 \
	V128Load32Splat \
	memarg \
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

// One pair of k: the panel row (8 columns × 2 int8 at R5) sign-extended as loaded into V8 (columns 0-3) and
// V9 (4-7), then the four rows' dot products (their pairs at R1, 0/4/8/12 bytes on).
#define INT8TILE_PAIR \
	Get R5 \
	I32WrapI64 \
	V128Load8x8S \
	MEMARG0 \
	Set V8 \
	Get R5 \
	I32WrapI64 \
	V128Load8x8S \
	MEMARG(I64ShrU) \
	Set V9 \
	QROW(MEMARG0, V0, V1) \
	QROW(MEMARG(I64Or), V2, V3) \
	QROW(MEMARG(I64ShrU), V4, V5) \
	QROW(MEMARG(F32Neg), V6, V7)

// The whole k of one tile: V0–V7 += the pairs of the interleaved A rows from R1 up to R0 times the panel at R5
// (INT8TILE_PAIR per pair; R1 ends at R0, R5 at the panel's end).
#define INT8TILE_KLOOP \
	Loop \
		INT8TILE_PAIR \
		ADDR(R5, 16) \
		Get R1 \
		I64Const $16 \
		I64Add \
		Tee R1 \
		Get R0 \
		I64Ne \
		BrIf $0 \
	End

// Pushes the i16x8 round-half-even(a·inv) of the 8 floats at byte offset off of R1: columns 0-3 times invlo,
// 4-7 times invhi (f32x4.nearest, i32x4.trunc_sat_f32x4_s (exact on integers), i16x8.narrow_i32x4_s).
#define QUANT8(off, invlo, invhi) \
	Get R1 \
	I32WrapI64 \
	V128Load $(off) \
	Get invlo \
	F32x4Mul \
	F32x4Nearest \
	I32x4TruncSatF32x4S \
	Get R1 \
	I32WrapI64 \
	V128Load $(off+16) \
	Get invhi \
	F32x4Mul \
	F32x4Nearest \
	I32x4TruncSatF32x4S \
	I16x8NarrowI32x4S

// Stores lane l of v (one int16 pair) at R2 + 16·l bytes: a pair of one row of a 4-row interleaved tile. The
// assembler encodes an extract_lane's lane from the instruction's destination operand, but puts a single operand
// in its source (cmd/internal/obj/wasm lists stores, not extract_lane, as instructions whose one operand is a
// destination): hence the lane given twice.
#define PAIRST(v, l) \
	Get R2 \
	I32WrapI64 \
	Get v \
	I32x4ExtractLane $(l), $(l) \
	I32Store $(16*l)
