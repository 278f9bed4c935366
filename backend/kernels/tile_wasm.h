// Steps shared by the fp32 and int8 tiles (tile_f32_wasm.h, tile_int8_wasm.h), each of which includes this file.
#ifndef TILE_WASM_H
#define TILE_WASM_H

// The 8 accumulators V0–V7 set to zero (all bits 0: 0.0 in f32x4, 0 in i32x4).
#define TILE_ZERO \
	I32Const $0 \
	I32x4Splat \
	Tee V0 \
	Tee V1 \
	Tee V2 \
	Tee V3 \
	Tee V4 \
	Tee V5 \
	Tee V6 \
	Set V7

// r += n (a pointer or counter in an i64 register).
#define ADDR(r, n) \
	Get r \
	I64Const $(n) \
	I64Add \
	Set r

#endif
