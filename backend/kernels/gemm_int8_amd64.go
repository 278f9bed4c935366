//go:build goexperiment.simd && amd64

package kernels

import (
	"math"
	"simd/archsimd"
	"unsafe"
)

// amd64 int8 GEMM tiers, in assembly (gemm_int8_amd64.s) since archsimd has neither VPDPWSSD nor the
// embedded-broadcast forms:
//   - avx512-vnni: 8×32 tile, VPDPWSSD on ZMM (16 int32 accumulators of 16 columns), when the CPU has AVX-512
//     F/BW/VL and VNNI. Each row's A pair is broadcast once into a register (VPBROADCASTD) and meets both
//     column halves: the embedded-broadcast form (VPDPWSSD.BCST, one load of the pair per half) ran the GEMM
//     12–16 % slower (BenchmarkGemmInt8, BenchmarkInt8MicroAMD64);
//   - avx2: 4×16 tile, VPMADDWD + VPADDD on YMM (8 accumulators), when it has AVX2.
//
//   - avx-vnni: 6×16 tile, AVX-VNNI's VPDPWSSD on YMM (12 accumulators), when the CPU has AVX2 and AVX-VNNI but not
//     AVX-512 VNNI (Intel's client cores since Alder Lake, its E-core Xeons). Go's assembler encodes VPDPWSSD only
//     in its EVEX form (AVX-512), so the kernel writes the VEX instruction as its bytes.

//go:noescape
func int8KernAVX2(kp int, a *int16, lda int, b *int8, rs, sc, tile *float32)

//go:noescape
func int8KernVNNI(kp int, a *int16, lda int, b *int8, rs, sc, tile *float32)

//go:noescape
func int8KernAVXVNNI(kp int, a *int16, lda int, b *int8, rs, sc, tile *float32)

// asmInt8Tier is the int8 tier of an assembly kernel of mr×nr tiles (cw = nr): its micro-kernel checks that
// the operands hold the tile's rows, pairs and columns, which the assembly reads unchecked, then calls kern.
func asmInt8Tier(name string, mr, nr int, kern func(kp int, a *int16, lda int, b *int8, rs, sc, tile *float32)) int8Kernel {
	micro := func(kp int, a []int16, lda int, b []int8, rs, sc []float32, tile []float32) {
		_ = a[(mr-1)*lda+2*kp-1]
		_ = b[2*nr*kp-1]
		_ = rs[mr-1]
		_ = sc[nr-1]
		_ = tile[mr*nr-1]
		kern(kp, unsafe.SliceData(a), lda, unsafe.SliceData(b), unsafe.SliceData(rs), unsafe.SliceData(sc), unsafe.SliceData(tile))
	}
	return int8Kernel{name: name, mr: mr, nr: nr, cw: nr, micro: micro}
}

//go:noescape
func maxAbsBitsAVX2(a *float32, n int) uint32

//go:noescape
func quantRowAVX2(q *int16, a *float32, n int, inv float32)

//go:noescape
func maxAbsBitsAVX512(a *float32, n int) uint32

//go:noescape
func quantRowAVX512(q *int16, a *float32, n int, inv float32)

// maxAbsAVX512 is maxAbsAVX2 at AVX-512 width (32 floats an iteration).
func maxAbsAVX512(a []float32) float32 {
	n := len(a) &^ 31
	var mx float32
	if n > 0 {
		mx = math.Float32frombits(maxAbsBitsAVX512(unsafe.SliceData(a), n))
	}
	return max(mx, maxAbsAVX2(a[n:]))
}

// quantizeRowAVX512 is quantizeRowAVX2 at AVX-512 width.
func quantizeRowAVX512(q []int16, a []float32, inv float32) {
	n := len(a) &^ 15
	q = q[:len(a)]
	if n > 0 {
		quantRowAVX512(unsafe.SliceData(q), unsafe.SliceData(a), n, inv)
	}
	quantizeRowGeneric(q[n:], a[n:], inv)
}

// maxAbsAVX2 is maxAbsGeneric with AVX2 (NaN if a holds a NaN).
func maxAbsAVX2(a []float32) float32 {
	n := len(a) &^ 7
	var mx float32
	if n > 0 {
		mx = math.Float32frombits(maxAbsBitsAVX2(unsafe.SliceData(a), n))
	}
	return max(mx, maxAbsGeneric(a[n:]))
}

// quantizeRowAVX2 is quantizeRowGeneric with AVX2 (VCVTPS2DQ rounds half to even as math.RoundToEven does).
func quantizeRowAVX2(q []int16, a []float32, inv float32) {
	n := len(a) &^ 15
	q = q[:len(a)]
	if n > 0 {
		quantRowAVX2(unsafe.SliceData(q), unsafe.SliceData(a), n, inv)
	}
	quantizeRowGeneric(q[n:], a[n:], inv)
}

// sumInt16AVX2 is sumInt16Generic with AVX2: VPMADDWD by ones adds the pairs into 8 int32 lanes, flushed to
// int64 every 2¹⁶ values (a lane then holds at most 2¹²·2·32768 = 2²⁸).
func sumInt16AVX2(q []int16) int64 {
	ones := archsimd.BroadcastInt16x16(1)
	var s int64
	for len(q) >= 16 {
		n := min(len(q), 1<<16) &^ 15
		var acc archsimd.Int32x8
		for i := 0; i < n; i += 16 {
			acc = acc.Add(archsimd.LoadInt16x16Array((*[16]int16)(q[i : i+16])).DotProductPairs(ones))
		}
		var lanes [8]int32
		acc.StoreArray(&lanes)
		for _, v := range lanes {
			s += int64(v)
		}
		q = q[n:]
	}
	return s + sumInt16Generic(q)
}

// maxAbsBitsIntoAVX2 is maxAbsBitsIntoGeneric with AVX2 (VPMAXUD on the bits with the sign cleared).
func maxAbsBitsIntoAVX2(mx []uint32, v []float32) {
	n := len(v) &^ 7
	mx = mx[:len(v)]
	abs := archsimd.BroadcastUint32x8(1<<31 - 1)
	for d := 0; d < n; d += 8 {
		m := (*[8]uint32)(mx[d : d+8])
		x := archsimd.LoadFloat32x8Array((*[8]float32)(v[d : d+8])).AsUint32x8().And(abs)
		archsimd.LoadUint32x8Array(m).Max(x).StoreArray(m)
	}
	archsimd.ClearAVXUpperBits()
	maxAbsBitsIntoGeneric(mx[n:], v[n:])
}

// pairLevelsAVX2 is pairLevelsGeneric with AVX2: each pair (q0[d], q1[d]) is the little-endian int16
// q0[d]&0xff | q1[d]<<8, 16 at a time.
func pairLevelsAVX2(dst []int8, q0, q1 []int16) {
	w := len(q0)
	q1 = q1[:w]
	dst = dst[:2*w]
	n := w &^ 15
	lo := archsimd.BroadcastInt16x16(0xff)
	for d := 0; d < n; d += 16 {
		a := archsimd.LoadInt16x16Array((*[16]int16)(q0[d : d+16])).And(lo)
		b := archsimd.LoadInt16x16Array((*[16]int16)(q1[d : d+16])).ShiftAllLeft(8)
		a.Or(b).StoreArray((*[16]int16)(unsafe.Pointer(unsafe.SliceData(dst[2*d : 2*d+32]))))
	}
	archsimd.ClearAVXUpperBits()
	pairLevelsGeneric(dst[2*n:], q0[n:], q1[n:])
}

var (
	hasInt8AVX2    = archsimd.X86.AVX2()
	hasInt8AVXVNNI = archsimd.X86.AVX2() && archsimd.X86.AVXVNNI()
	hasInt8VNNI    = archsimd.X86.AVX512() && archsimd.X86.AVX512VNNI()
)

// The tier registers its int8 kernels before any init runs (tier.go's init installs the tier).
var _ = func() bool {
	if hasInt8AVX2 {
		quantizeRow, maxAbsRow, sumInt16 = quantizeRowAVX2, maxAbsAVX2, sumInt16AVX2
		maxAbsBitsInto, pairLevels = maxAbsBitsIntoAVX2, pairLevelsAVX2
		int8Tiers = append([]int8Kernel{asmInt8Tier("avx2", 4, 16, int8KernAVX2)}, int8Tiers...)
	}
	if hasInt8AVXVNNI {
		int8Tiers = append([]int8Kernel{asmInt8Tier("avx-vnni", 6, 16, int8KernAVXVNNI)}, int8Tiers...)
	}
	if archsimd.X86.AVX512() {
		quantizeRow, maxAbsRow = quantizeRowAVX512, maxAbsAVX512
	}
	if hasInt8VNNI {
		int8Tiers = append([]int8Kernel{asmInt8Tier("avx512-vnni", 8, 32, int8KernVNNI)}, int8Tiers...)
	}
	return true
}()
