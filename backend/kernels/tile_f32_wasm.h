// The k step of the 4×8 fp32 tile shared by gemm_f32_wasm.s and attention_strip_wasm.s: 8 f32x4
// accumulators V0–V7 (row r: columns 0-3 in V(2r), 4-7 in V(2r+1)), the panel row in V8 and V9, the splat
// of a[r][k] in V10.

// One row: a[r][k] (f32.load at byte offset oa from row pointer ra) splatted into V10, then
// acc += splat·b with f32x4.mul + f32x4.add (wasm SIMD128 has no fused multiply-add outside relaxed SIMD).
#define F32TILE_ROW(ra, oa, acc0, acc1) \
	Get acc0 \
	Get ra \
	I32WrapI64 \
	F32Load $(oa) \
	F32x4Splat \
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

// One k step: the panel row (8 floats, two f32x4 at byte offset ob from R5) into V8, V9, then the four rows
// whose pointers are r0–r3.
#define F32TILE_STEP(oa, ob, r0, r1, r2, r3) \
	Get R5 \
	I32WrapI64 \
	V128Load $(ob) \
	Set V8 \
	Get R5 \
	I32WrapI64 \
	V128Load $(ob+16) \
	Set V9 \
	F32TILE_ROW(r0, oa, V0, V1) \
	F32TILE_ROW(r1, oa, V2, V3) \
	F32TILE_ROW(r2, oa, V4, V5) \
	F32TILE_ROW(r3, oa, V6, V7)
