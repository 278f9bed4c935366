//go:build goexperiment.simd && amd64

#include "textflag.h"

// The kernels: tile = float32(Σ_p a[r][2p:2p+2]·b[p][j][0:2]) · rs[r] · sc[j], for a rows of lda int16
// (kp pairs used) and a panel b of kp rows of nr column pairs (int8, sign-extended as loaded).

// ROW16 writes row off/4 of a 16-wide tile (the AVX2 and AVX-VNNI kernels'): its int32 accumulators acc0, acc1
// (columns 0-7, 8-15) as float32, times rs[off/4] (broadcast into rsv from SI) and the column scales sc0, sc1,
// into the tile at DX.
#define ROW16(acc0, acc1, off, rsv, sc0, sc1) \
	VBROADCASTSS off(SI), rsv \
	VCVTDQ2PS acc0, acc0 \
	VMULPS rsv, acc0, acc0 \
	VMULPS sc0, acc0, acc0 \
	VMOVUPS acc0, (off*16)(DX) \
	VCVTDQ2PS acc1, acc1 \
	VMULPS rsv, acc1, acc1 \
	VMULPS sc1, acc1, acc1 \
	VMOVUPS acc1, (off*16+32)(DX)

// func int8KernAVX2(kp int, a *int16, lda int, b *int8, rs, sc, tile *float32)
// 4×16: Y0..Y7 = rows 0..3 × (columns 0-7, 8-15); tile is [4][16].
TEXT ·int8KernAVX2(SB), NOSPLIT, $0-56
	MOVQ kp+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), BX
	SHLQ $1, BX
	MOVQ b+24(FP), DI
	LEAQ (SI)(BX*2), R9 // row 2
	ADDQ SI, BX         // row 1 (BX now a pointer)
	MOVQ lda+16(FP), R10
	SHLQ $1, R10
	ADDQ R9, R10        // row 3
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	XORQ AX, AX
	TESTQ CX, CX
	JEQ avx2done

avx2loop:
	VPMOVSXBW (DI), Y8
	VPMOVSXBW 16(DI), Y9
	VPBROADCASTD (SI)(AX*1), Y10
	VPMADDWD Y8, Y10, Y11
	VPADDD Y11, Y0, Y0
	VPMADDWD Y9, Y10, Y12
	VPADDD Y12, Y1, Y1
	VPBROADCASTD (BX)(AX*1), Y13
	VPMADDWD Y8, Y13, Y14
	VPADDD Y14, Y2, Y2
	VPMADDWD Y9, Y13, Y15
	VPADDD Y15, Y3, Y3
	VPBROADCASTD (R9)(AX*1), Y10
	VPMADDWD Y8, Y10, Y11
	VPADDD Y11, Y4, Y4
	VPMADDWD Y9, Y10, Y12
	VPADDD Y12, Y5, Y5
	VPBROADCASTD (R10)(AX*1), Y13
	VPMADDWD Y8, Y13, Y14
	VPADDD Y14, Y6, Y6
	VPMADDWD Y9, Y13, Y15
	VPADDD Y15, Y7, Y7
	ADDQ $32, DI
	ADDQ $4, AX
	DECQ CX
	JNZ avx2loop

avx2done:
	MOVQ rs+32(FP), SI
	MOVQ sc+40(FP), DI
	MOVQ tile+48(FP), DX
	VMOVUPS (DI), Y8
	VMOVUPS 32(DI), Y9

	ROW16(Y0, Y1, 0, Y10, Y8, Y9)
	ROW16(Y2, Y3, 4, Y10, Y8, Y9)
	ROW16(Y4, Y5, 8, Y10, Y8, Y9)
	ROW16(Y6, Y7, 12, Y10, Y8, Y9)
	VZEROUPPER
	RET

// func int8KernAVXVNNI(kp int, a *int16, lda int, b *int8, rs, sc, tile *float32)
// 6×16 with AVX-VNNI's VPDPWSSD on YMM (the VEX form, for CPUs with AVX-VNNI but not AVX-512: Go's assembler
// encodes VPDPWSSD only as EVEX, so the instruction is written as its bytes): Y(2r), Y(2r+1) = row r × (columns
// 0-7, 8-15), one multiply-accumulate per 16 products where AVX2 needs VPMADDWD and VPADDD; tile is [6][16].
TEXT ·int8KernAVXVNNI(SB), NOSPLIT, $0-56
	MOVQ kp+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), BX
	SHLQ $1, BX         // row stride in bytes
	MOVQ b+24(FP), DI
	LEAQ (SI)(BX*1), R8
	LEAQ (R8)(BX*1), R9
	LEAQ (R9)(BX*1), R10
	LEAQ (R10)(BX*1), R11
	LEAQ (R11)(BX*1), R12
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	XORQ AX, AX
	TESTQ CX, CX
	JEQ avxvnnidone

avxvnniloop:
	VPMOVSXBW (DI), Y12
	VPMOVSXBW 16(DI), Y13
	VPBROADCASTD (SI)(AX*1), Y14
	BYTE $0xC4; BYTE $0xC2; BYTE $0x0D; BYTE $0x52; BYTE $0xC4 // VPDPWSSD Y12, Y14, Y0 (AVX-VNNI, VEX)
	BYTE $0xC4; BYTE $0xC2; BYTE $0x0D; BYTE $0x52; BYTE $0xCD // VPDPWSSD Y13, Y14, Y1 (AVX-VNNI, VEX)
	VPBROADCASTD (R8)(AX*1), Y15
	BYTE $0xC4; BYTE $0xC2; BYTE $0x05; BYTE $0x52; BYTE $0xD4 // VPDPWSSD Y12, Y15, Y2 (AVX-VNNI, VEX)
	BYTE $0xC4; BYTE $0xC2; BYTE $0x05; BYTE $0x52; BYTE $0xDD // VPDPWSSD Y13, Y15, Y3 (AVX-VNNI, VEX)
	VPBROADCASTD (R9)(AX*1), Y14
	BYTE $0xC4; BYTE $0xC2; BYTE $0x0D; BYTE $0x52; BYTE $0xE4 // VPDPWSSD Y12, Y14, Y4 (AVX-VNNI, VEX)
	BYTE $0xC4; BYTE $0xC2; BYTE $0x0D; BYTE $0x52; BYTE $0xED // VPDPWSSD Y13, Y14, Y5 (AVX-VNNI, VEX)
	VPBROADCASTD (R10)(AX*1), Y15
	BYTE $0xC4; BYTE $0xC2; BYTE $0x05; BYTE $0x52; BYTE $0xF4 // VPDPWSSD Y12, Y15, Y6 (AVX-VNNI, VEX)
	BYTE $0xC4; BYTE $0xC2; BYTE $0x05; BYTE $0x52; BYTE $0xFD // VPDPWSSD Y13, Y15, Y7 (AVX-VNNI, VEX)
	VPBROADCASTD (R11)(AX*1), Y14
	BYTE $0xC4; BYTE $0x42; BYTE $0x0D; BYTE $0x52; BYTE $0xC4 // VPDPWSSD Y12, Y14, Y8 (AVX-VNNI, VEX)
	BYTE $0xC4; BYTE $0x42; BYTE $0x0D; BYTE $0x52; BYTE $0xCD // VPDPWSSD Y13, Y14, Y9 (AVX-VNNI, VEX)
	VPBROADCASTD (R12)(AX*1), Y15
	BYTE $0xC4; BYTE $0x42; BYTE $0x05; BYTE $0x52; BYTE $0xD4 // VPDPWSSD Y12, Y15, Y10 (AVX-VNNI, VEX)
	BYTE $0xC4; BYTE $0x42; BYTE $0x05; BYTE $0x52; BYTE $0xDD // VPDPWSSD Y13, Y15, Y11 (AVX-VNNI, VEX)
	ADDQ $32, DI
	ADDQ $4, AX
	DECQ CX
	JNZ avxvnniloop

avxvnnidone:
	MOVQ rs+32(FP), SI
	MOVQ sc+40(FP), DI
	MOVQ tile+48(FP), DX
	VMOVUPS (DI), Y12
	VMOVUPS 32(DI), Y13

	ROW16(Y0, Y1, 0, Y14, Y12, Y13)
	ROW16(Y2, Y3, 4, Y14, Y12, Y13)
	ROW16(Y4, Y5, 8, Y14, Y12, Y13)
	ROW16(Y6, Y7, 12, Y14, Y12, Y13)
	ROW16(Y8, Y9, 16, Y14, Y12, Y13)
	ROW16(Y10, Y11, 20, Y14, Y12, Y13)
	VZEROUPPER
	RET

// func int8KernVNNI(kp int, a *int16, lda int, b *int8, rs, sc, tile *float32)
// 8×32: Z(2r), Z(2r+1) = row r × (columns 0-15, 16-31); tile is [8][32] (row-major, as the AVX-512 storeTile
// takes it).
TEXT ·int8KernVNNI(SB), NOSPLIT, $0-56
	MOVQ kp+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), BX
	SHLQ $1, BX              // row stride in bytes
	MOVQ b+24(FP), DI
	LEAQ (SI)(BX*2), R9
	ADDQ BX, R9              // row 3
	LEAQ (SI)(BX*4), R10     // row 4
	LEAQ (R10)(BX*2), R11
	ADDQ BX, R11             // row 7
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	TESTQ CX, CX
	JEQ vnnidone

vnniloop:
	VPMOVSXBW (DI), Z16
	VPMOVSXBW 32(DI), Z17
	VPBROADCASTD (SI), Z18
	VPDPWSSD Z18, Z16, Z0
	VPDPWSSD Z18, Z17, Z1
	VPBROADCASTD (SI)(BX*1), Z19
	VPDPWSSD Z19, Z16, Z2
	VPDPWSSD Z19, Z17, Z3
	VPBROADCASTD (SI)(BX*2), Z18
	VPDPWSSD Z18, Z16, Z4
	VPDPWSSD Z18, Z17, Z5
	VPBROADCASTD (R9), Z19
	VPDPWSSD Z19, Z16, Z6
	VPDPWSSD Z19, Z17, Z7
	VPBROADCASTD (R10), Z18
	VPDPWSSD Z18, Z16, Z8
	VPDPWSSD Z18, Z17, Z9
	VPBROADCASTD (R10)(BX*1), Z19
	VPDPWSSD Z19, Z16, Z10
	VPDPWSSD Z19, Z17, Z11
	VPBROADCASTD (R10)(BX*2), Z18
	VPDPWSSD Z18, Z16, Z12
	VPDPWSSD Z18, Z17, Z13
	VPBROADCASTD (R11), Z19
	VPDPWSSD Z19, Z16, Z14
	VPDPWSSD Z19, Z17, Z15
	ADDQ $64, DI
	ADDQ $4, SI
	ADDQ $4, R9
	ADDQ $4, R10
	ADDQ $4, R11
	DECQ CX
	JNZ vnniloop

vnnidone:
	MOVQ rs+32(FP), SI
	MOVQ sc+40(FP), DI
	MOVQ tile+48(FP), DX
	VMOVUPS (DI), Z16
	VMOVUPS 64(DI), Z17

#define VNNIROW(acc0, acc1, r) \
	VBROADCASTSS (r*4)(SI), Z18 \
	VCVTDQ2PS acc0, acc0 \
	VMULPS Z18, acc0, acc0 \
	VMULPS Z16, acc0, acc0 \
	VMOVUPS acc0, (r*128)(DX) \
	VCVTDQ2PS acc1, acc1 \
	VMULPS Z18, acc1, acc1 \
	VMULPS Z17, acc1, acc1 \
	VMOVUPS acc1, (r*128+64)(DX)

	VNNIROW(Z0, Z1, 0)
	VNNIROW(Z2, Z3, 1)
	VNNIROW(Z4, Z5, 2)
	VNNIROW(Z6, Z7, 3)
	VNNIROW(Z8, Z9, 4)
	VNNIROW(Z10, Z11, 5)
	VNNIROW(Z12, Z13, 6)
	VNNIROW(Z14, Z15, 7)
	VZEROUPPER
	RET

// MAXD_Y0 leaves in AX the largest signed int32 of Y0's lanes (the maxAbsBits functions' horizontal step).
#define MAXD_Y0 \
	VEXTRACTI128 $1, Y0, X1 \
	VPMAXSD X1, X0, X0 \
	VPSHUFD $0x4e, X0, X1 \
	VPMAXSD X1, X0, X0 \
	VPSHUFD $0xb1, X0, X1 \
	VPMAXSD X1, X0, X0 \
	MOVL X0, AX

// func maxAbsBitsAVX2(a *float32, n int) uint32
// The largest float32 bit pattern of |a[i]|, i < n (n a multiple of 8): as integers, finite < Inf < NaN, so a
// NaN anywhere is not lost as with VMAXPS.
TEXT ·maxAbsBitsAVX2(SB), NOSPLIT, $0-20
	MOVQ a+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0x7fffffff, AX
	MOVL AX, X3
	VPBROADCASTD X3, Y3
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	CMPQ CX, $16
	JLT mab8

mab16:
	VPAND (SI), Y3, Y4
	VPAND 32(SI), Y3, Y5
	VPMAXSD Y4, Y0, Y0
	VPMAXSD Y5, Y1, Y1
	ADDQ $64, SI
	SUBQ $16, CX
	CMPQ CX, $16
	JGE mab16

mab8:
	CMPQ CX, $8
	JLT mabdone
	VPAND (SI), Y3, Y4
	VPMAXSD Y4, Y0, Y0

mabdone:
	VPMAXSD Y1, Y0, Y0
	MAXD_Y0
	MOVL AX, ret+16(FP)
	VZEROUPPER
	RET

// func quantRowAVX2(q *int16, a *float32, n int, inv float32)
// q[i] = round-half-even(a[i]·inv) for i < n (n a multiple of 16; |a[i]·inv| ≤ 32767).
TEXT ·quantRowAVX2(SB), NOSPLIT, $0-28
	MOVQ q+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS inv+24(FP), Y3
	TESTQ CX, CX
	JEQ qdone

qloop:
	VMULPS (SI), Y3, Y0
	VMULPS 32(SI), Y3, Y1
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VPACKSSDW Y1, Y0, Y2
	VPERMQ $0xd8, Y2, Y2
	VMOVDQU Y2, (DI)
	ADDQ $64, SI
	ADDQ $32, DI
	SUBQ $16, CX
	JNE qloop

qdone:
	VZEROUPPER
	RET

// func maxAbsBitsAVX512(a *float32, n int) uint32
// maxAbsBitsAVX2 at AVX-512 width: n a multiple of 32.
TEXT ·maxAbsBitsAVX512(SB), NOSPLIT, $0-20
	MOVQ a+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z3
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	TESTQ CX, CX
	JEQ mab512done

mab512loop:
	VPANDD (SI), Z3, Z4
	VPANDD 64(SI), Z3, Z5
	VPMAXSD Z4, Z0, Z0
	VPMAXSD Z5, Z1, Z1
	ADDQ $128, SI
	SUBQ $32, CX
	JNE mab512loop

mab512done:
	VPMAXSD Z1, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPMAXSD Y1, Y0, Y0
	MAXD_Y0
	MOVL AX, ret+16(FP)
	VZEROUPPER
	RET

// func quantRowAVX512(q *int16, a *float32, n int, inv float32)
// quantRowAVX2 at AVX-512 width (VPMOVSDW narrows with the same signed saturation, in order): n a multiple of 16.
TEXT ·quantRowAVX512(SB), NOSPLIT, $0-28
	MOVQ q+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS inv+24(FP), Z3
	TESTQ CX, CX
	JEQ q512done

q512loop:
	VMULPS (SI), Z3, Z0
	VCVTPS2DQ Z0, Z0
	VPMOVSDW Z0, (DI)
	ADDQ $64, SI
	ADDQ $32, DI
	SUBQ $16, CX
	JNE q512loop

q512done:
	VZEROUPPER
	RET
