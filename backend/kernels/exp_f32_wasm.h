// The constants and the exp polynomial shared by epilogue_wasm.s and exp_wasm.s. Each constant is pushed by a
// v128.const (the float32 bits of the constant of math_generic.go or exp_exact.go, in every lane): V8 emits
// it where it is used, while a v128.load of a table is scheduled at the top of its block and, with the ≈ 25
// constants of GELU, spilled to the stack and reloaded (BenchmarkStoreTileWasm, table loads against
// v128.const, three rounds alternating under load ≈ 1.4: GELU 34.5, 33.6, 29.3 against 29.3, 25.9, 26.0 ns a tile
// row; QuickGELU 24.8, 24.8, 19.8 against 21.8, 14.2, 17.2). V8 hoists the constants out of the loop and
// rematerializes or spills them as registers allow. The first operand of V128Const is the low 8 bytes, the
// second the high 8 (go1.27's assembler; were a release to read them otherwise, every constant would change
// and the bit-for-bit tests of epilogue_wasm_test.go would fail).
#define KC_EXPLO V128Const $0xc2d00000c2d00000, $0xc2d00000c2d00000
#define KC_EXPHI V128Const $0x42b2000042b20000, $0x42b2000042b20000
#define KC_L2E V128Const $0x3fb8aa3b3fb8aa3b, $0x3fb8aa3b3fb8aa3b
#define KC_C1 V128Const $0xbf318000bf318000, $0xbf318000bf318000
#define KC_C2 V128Const $0x395e8083395e8083, $0x395e8083395e8083
#define KC_P0 V128Const $0x3950696739506967, $0x3950696739506967
#define KC_P1 V128Const $0x3ab743ce3ab743ce, $0x3ab743ce3ab743ce
#define KC_P2 V128Const $0x3c0889083c088908, $0x3c0889083c088908
#define KC_P3 V128Const $0x3d2aa9c13d2aa9c1, $0x3d2aa9c13d2aa9c1
#define KC_P4 V128Const $0x3e2aaaaa3e2aaaaa, $0x3e2aaaaa3e2aaaaa
#define KC_P5 V128Const $0x3f0000003f000000, $0x3f0000003f000000
#define KC_ONE V128Const $0x3f8000003f800000, $0x3f8000003f800000
#define KC_I127 V128Const $0x0000007f0000007f, $0x0000007f0000007f
#define KC_SIGN V128Const $0x8000000080000000, $0x8000000080000000
#define KC_ABS V128Const $0x7fffffff7fffffff, $0x7fffffff7fffffff
#define KC_ERFP V128Const $0x3ea7ba053ea7ba05, $0x3ea7ba053ea7ba05
#define KC_A1 V128Const $0x3e8279063e827906, $0x3e8279063e827906
#define KC_A2 V128Const $0xbe91a98ebe91a98e, $0xbe91a98ebe91a98e
#define KC_A3 V128Const $0x3fb5f0e33fb5f0e3, $0x3fb5f0e33fb5f0e3
#define KC_A4 V128Const $0xbfba00e3bfba00e3, $0xbfba00e3bfba00e3
#define KC_A5 V128Const $0x3f87dc223f87dc22, $0x3f87dc223f87dc22
#define KC_HALF V128Const $0x3f0000003f000000, $0x3f0000003f000000
#define KC_RSQ2 V128Const $0x3f3504f33f3504f3, $0x3f3504f33f3504f3
#define KC_QK V128Const $0xbfd9db23bfd9db23, $0xbfd9db23bfd9db23
#define KC_ALO V128Const $0xc2aeac4fc2aeac4f, $0xc2aeac4fc2aeac4f
#define KC_MAGIC V128Const $0x4b4000004b400000, $0x4b4000004b400000
#define KC_B127 V128Const $0x3f8000003f800000, $0x3f8000003f800000

// With r on top of the stack's p: p = p·r + c.
#define HORNER(r, c) \
	Get r \
	F32x4Mul \
	c \
	F32x4Add

// Pushes e = (((((P0·r + P1)·r + P2)·r + P3)·r + P4)·r + P5)·r² + (r + 1), the Cephes exp polynomial of the
// reduced argument in local r (exp4's and expOneExact's order of operations).
#define EXP_POLY(r) \
	KC_P0 \
	Get r \
	F32x4Mul \
	KC_P1 \
	F32x4Add \
	HORNER(r, KC_P2) \
	HORNER(r, KC_P3) \
	HORNER(r, KC_P4) \
	HORNER(r, KC_P5) \
	Get r \
	Get r \
	F32x4Mul \
	F32x4Mul \
	Get r \
	KC_ONE \
	F32x4Add \
	F32x4Add
