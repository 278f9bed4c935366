package kernels

import (
	"math"
	"sync"
	"unsafe"
)

// The int8 GEMM: C = Epilogue(A·B) for a symmetric per-column int8 B (PackBInt8) with integer arithmetic.
//
//   - B is packed once into panels of nr columns: K2 = K rounded up to even, stored as K2/2 rows of nr column
//     pairs (w[2p][j], w[2p+1][j]), i.e. the operand layout of a pairwise int16 dot product (VPMADDWD,
//     VPDPWSSD, i32x4.dot_i16x8_s), kept as int8 (sign-extended to int16 as it is loaded). A panel is K2·nr
//     bytes (24 KiB at K=768 and 96 KiB at K=3072 with AVX-512's nr=32, 48 KiB with AVX2's 16): it stays in
//     L2 while every row of an M block meets it, not in L1.
//   - A is quantized per row, dynamically, one M block at a time (the only copy: int16, ≈192 KiB a block):
//     q = round(a·qmax/max|a|), symmetric int16 with qmax = min(32767, (2³¹−1)/(K2·128)) so that no int32
//     sum can overflow whatever the values (qmax is 32767 up to K=512, 21845 at K=768, 5461 at K=3072: at
//     least 12 bits, against int8's 7). 16-bit activations keep the int8 model's accuracy; the cost against
//     u8×s8 (VPDPBUSD) is half the multiply rate on AVX-512 VNNI, and nothing on AVX2 (VPMADDWD) or wasm
//     (dot_i16x8_s is the only integer dot product it has).
//   - A micro-kernel accumulates an mr×nr tile of int32 over the whole K, then writes acc·rowScale·colScale
//     as float32; the fp32 path's storeTile applies the epilogue.
//
// Every tier computes the same int32 sums from the same quantized A, so tiers agree to float rounding.

// int8Kernel is one tier of the int8 GEMM.
type int8Kernel struct {
	name   string
	mr, nr int // tile rows and panel width
	cw     int // the tile is written as nr/cw column chunks of mr rows of cw floats
	// ilv: the quantized A rows are interleaved by tile (wasm): the mr rows of a tile hold, pair after pair,
	// the mr rows' int16 pairs (q[t·mr·k2 + p·2mr + 2r + 0/1], the same mr·k2 values at the same offset as
	// row-major), so the kernel reads A through one pointer. Else A is row-major (row stride k2).
	ilv bool
	// micro computes the mr×nr tile of the int16 rows a (row stride lda, kp pairs each; interleaved if ilv) times panel b,
	// tile[(j/cw)·mr·cw + r·cw + j%cw] = float32(Σ a·b)·rs[r]·sc[j].
	micro func(kp int, a []int16, lda int, b []int8, rs, sc []float32, tile []float32)
	// strip, if set (with ilv and cw == nr), computes nt tiles of consecutive rows in one call:
	// tile[t·mr·nr + r·nr + j] for tile t, as micro would for the rows of tile t; the GEMM then stores up to
	// tileMax/nr rows with one storeTile (fewer calls, which cost much in wasm).
	strip func(nt, kp int, a []int16, b []int8, rs, sc []float32, tile []float32)
}

// int8TileMax bounds mr·nr of every int8 tier.
const int8TileMax = 512

var int8Portable = int8Kernel{name: "portable", mr: 2, nr: 4, cw: 4, micro: int8MicroGeneric}

// int8Tiers lists the tiers this build and CPU can run, best first (the architecture files' init prepends).
var int8Tiers = []int8Kernel{int8Portable}

// int8Cur is the tier in use: installed with the kernel tier (a tier hook), as int8ForTier chooses.
var int8Cur = int8Portable

var _ = func() bool {
	tierHooks = append(tierHooks, func(tier string) { int8Cur = int8ForTier(tier) })
	return true
}()

// int8ForTier returns the int8 GEMM tier that goes with the kernel tier named tier (see Tier): the AVX-512 VNNI
// kernel with avx512-vnni, the AVX-VNNI one (VEX, YMM) with avx2 and avx512 on a CPU that has AVX-VNNI, else
// the AVX2 one there, the SIMD128 one in wasm, else the portable one; each the best one this build and CPU run
// at or below that level.
func int8ForTier(tier string) int8Kernel {
	rank := map[string]int{"portable": 0, "avx2": 1, "wasm-simd128": 1, "avx-vnni": 2, "avx512-vnni": 3}
	limit := map[string]int{"portable": 0, "avx2": 2, "avx512": 2, "avx512-vnni": 3, "wasm-simd128": 1}[tier]
	for _, t := range int8Tiers {
		if rank[t.name] <= limit {
			return t
		}
	}
	return int8Portable
}

func curInt8() int8Kernel { return int8Cur }

// Int8Kernels names the int8 GEMM tier in use ("avx512-vnni", "avx-vnni", "avx2", "wasm-simd128" or "portable").
func Int8Kernels() string { return curInt8().name }

func packBInt8(w []int8, scale []float32, k, n int) *PackedB {
	kt := curInt8()
	p := packBInt8For(w, scale, k, n, kt.nr)
	p.i8k = &kt
	return p
}

// packBInt8For packs w (n rows of k) into panels of nr column pairs (see above).
func packBInt8For(w []int8, scale []float32, k, n, nr int) *PackedB {
	k2 := (k + 1) &^ 1
	np := (n + nr - 1) / nr
	p := &PackedB{K: k, N: n, nr: nr, i8: make([]int8, np*k2*nr), sc: make([]float32, np*nr)}
	copy(p.sc, scale[:n])
	for j := 0; j < n; j++ {
		putColumn(p, j, w[j*k:j*k+k])
	}
	return p
}

// putColumn writes column j of an int8 PackedB (its k values, each narrowed to int8) into its panel: value kk at
// pair row kk/2, column pair slot 2·(j mod nr) + kk mod 2.
func putColumn[T int8 | int16](p *PackedB, j int, col []T) {
	nr := p.nr
	k2 := (p.K + 1) &^ 1
	panel := p.i8[(j/nr)*k2*nr : (j/nr+1)*k2*nr]
	jj := 2 * (j % nr)
	for kk, v := range col {
		panel[(kk>>1)*2*nr+jj+kk&1] = int8(v)
	}
}

// Int8QMax is the largest activation level for inner dimension k2 (see above).
func Int8QMax(k2 int) float32 {
	return float32(max(1, min(32767, (1<<31-1)/(k2*128))))
}

// quantizeRows quantizes rows of a (row stride lda, k values) into q (row stride k2, zero padded) and writes
// each row's scale max|a|/qmax into rs. A row with a non-finite value gets scale NaN (its outputs are NaN).
func quantizeRows(q []int16, rs []float32, a []float32, lda, rows, k, k2 int, qmax float32) {
	for r := 0; r < rows; r++ {
		row := a[r*lda : r*lda+k]
		qr := q[r*k2 : r*k2+k2]
		var inv float32
		rs[r], inv = symScale(maxAbsRow(row), qmax)
		if inv == 0 {
			clear(qr)
			continue
		}
		quantizeRow(qr[:k], row, inv)
		if k < k2 {
			qr[k] = 0
		}
	}
}

// symScale returns the scale and inverse scale of symmetric quantization to ±qmax for values of largest
// magnitude mx: (mx/qmax, qmax/mx); (0, 0) for mx 0 and (NaN, 0) for a non-finite mx (the values quantize to 0,
// the products to NaN).
func symScale(mx, qmax float32) (scale, inv float32) {
	switch {
	case mx == 0:
		return 0, 0
	case mx != mx || mx > math.MaxFloat32:
		return float32(math.NaN()), 0
	}
	return mx / qmax, qmax / mx
}

// quantizeRowGeneric sets q[i] = round-half-even(a[i]·inv) (|a[i]·inv| ≤ 32767 by construction).
func quantizeRowGeneric(q []int16, a []float32, inv float32) {
	q = q[:len(a)]
	for i, v := range a {
		q[i] = int16(math.RoundToEven(float64(v * inv)))
	}
}

// maxAbsGeneric returns max |a[i]| (0 for none; NaN if a holds a NaN).
func maxAbsGeneric(a []float32) float32 {
	var mx float32
	for _, v := range a {
		mx = max(mx, v, -v)
	}
	return mx
}

// The row quantizer's two passes, replaced by vectorised versions where the build has them.
var (
	quantizeRow = quantizeRowGeneric
	maxAbsRow   = maxAbsGeneric
)

// quantizeRowsIlv4, where a tier sets it (wasm), is quantizeRows writing tiles of 4 interleaved rows directly
// (int8Kernel.ilv with mr = 4), rows up to a multiple of 4 zeroed: the same values as quantizeRows then
// interleaveRows.
var quantizeRowsIlv4 func(q []int16, rs []float32, a []float32, lda, rows, k, k2 int, qmax float32)

var int16Pool sync.Pool // *[]int16

func getScratch16(n int) *[]int16 {
	if p, ok := int16Pool.Get().(*[]int16); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]int16, n)
	return &s
}

// int8ABlockBytes is the size of the quantized A block that meets every panel of a unit (kept in L2).
const int8ABlockBytes = 192 << 10

// gemmInt8 is Gemm for an int8 PackedB.
func gemmInt8(m int, a []float32, lda int, b *PackedB, c []float32, ldc int, ep *Epilogue, par bool) {
	kt := curInt8()
	if b.i8k != nil {
		kt = *b.i8k // the tier it was packed for, even if the tier changed since (tests switch tiers)
	}
	if b.nr != kt.nr {
		panic("kernels: int8 PackedB packed for another panel width")
	}
	gemmInt8With(kt, m, a, lda, b, c, ldc, ep, par && m*b.N*b.K >= serialFlops)
}

func gemmInt8With(kt int8Kernel, m int, a []float32, lda int, b *PackedB, c []float32, ldc int, ep *Epilogue, par bool) {
	k, n, nr, mr := b.K, b.N, b.nr, kt.mr
	k2 := (k + 1) &^ 1
	np := (n + nr - 1) / nr
	unit := func(i0, i1, p0, p1 int) {
		rows := i1 - i0
		rp := (rows + mr - 1) / mr * mr
		qs := getScratch16(rp*k2 + mr*k2)
		defer int16Pool.Put(qs)
		rsBuf := getScratch(rp)
		defer putScratch(rsBuf)
		quantizeA(kt, *qs, *rsBuf, a[i0*lda:], lda, rows, k)
		int8Panels(kt, (*qs)[:rp*k2], *rsBuf, rows, b, p0, p1, c, ldc, i0, ep)
	}
	// M blocks of ≈ int8ABlockBytes of quantized A, each meeting every panel of its unit (also when serial).
	mc := max(int8ABlockBytes/(2*k2), 2*mr)
	mc -= mc % mr
	mc = min(mc, m)
	mb := (m + mc - 1) / mc
	t := Threads()
	if !par || t <= 1 {
		for ib := 0; ib < mb; ib++ {
			unit(ib*mc, min(m, ib*mc+mc), 0, np)
		}
		return
	}
	nch := 1
	if mb < 4*t {
		nch = min(np, (4*t+mb-1)/mb)
	}
	pc := (np + nch - 1) / nch
	nch = (np + pc - 1) / pc
	parallelRun(mb*nch, 1, func(lo, hi int) {
		for u := lo; u < hi; u++ {
			ib, pb := u/nch, u%nch
			unit(ib*mc, min(m, ib*mc+mc), pb*pc, min(np, pb*pc+pc))
		}
	})
}

// quantizeA quantizes rows of a (row stride lda, k values) for the tier kt: into q, rows rounded up to kt.mr
// (row stride k2 = k rounded up to even; zero rows and padding past rows; interleaved by tile if kt.ilv),
// with each row's scale in rs (zero past rows). q holds at least (rows rounded up to mr + mr)·k2 values (the
// last mr·k2 are interleaving scratch), rs at least rows rounded up to mr.
func quantizeA(kt int8Kernel, q []int16, rs []float32, a []float32, lda, rows, k int) {
	mr := kt.mr
	k2 := (k + 1) &^ 1
	rp := (rows + mr - 1) / mr * mr
	if kt.ilv && mr == 4 && quantizeRowsIlv4 != nil {
		quantizeRowsIlv4(q, rs, a, lda, rows, k, k2, Int8QMax(k2))
		clear(rs[rows:rp])
		return
	}
	quantizeRows(q, rs, a, lda, rows, k, k2, Int8QMax(k2))
	clear(q[rows*k2 : rp*k2])
	clear(rs[rows:rp])
	if kt.ilv {
		interleaveRows(q[:rp*k2], q[rp*k2:rp*k2+mr*k2], mr, k2)
	}
}

// int8Panels computes C rows [i0, i0+rows) × the columns of panels [p0, p1) of b from the quantized rows q and
// their scales rs (quantizeA), through the tier's micro- or strip kernel and storeTile (with ep).
func int8Panels(kt int8Kernel, q []int16, rs []float32, rows int, b *PackedB, p0, p1 int, c []float32, ldc, i0 int, ep *Epilogue) {
	k, n, nr, mr := b.K, b.N, b.nr, kt.mr
	k2 := (k + 1) &^ 1
	var tile [int8TileMax + tileMax]float32
	cw := kt.cw
	rpc := tileMax / cw // rows per storeTile call
	for p := p0; p < p1; p++ {
		bp := b.i8[p*k2*nr : (p+1)*k2*nr]
		sc := b.sc[p*nr : (p+1)*nr]
		j0 := p * nr
		if kt.strip != nil {
			w := min(nr, n-j0)
			for i := 0; i < rows; i += rpc {
				tr := min(rpc, rows-i)
				kt.strip((tr+mr-1)/mr, k2/2, q[i*k2:], bp, rs[i:], sc, tile[:])
				storeTile((*[tileMax]float32)(tile[:]), nr, tr, w, c, ldc, i0+i, j0, ep)
			}
			continue
		}
		for i := 0; i < rows; i += mr {
			kt.micro(k2/2, q[i*k2:], k2, bp, rs[i:i+mr], sc, tile[:])
			tr := min(mr, rows-i)
			for ch := 0; ch*cw < nr; ch++ {
				jc := j0 + ch*cw
				w := min(cw, n-jc)
				if w <= 0 {
					break
				}
				for r0 := 0; r0 < tr; r0 += rpc {
					t := (*[tileMax]float32)(tile[ch*mr*cw+r0*cw:])
					storeTile(t, cw, min(rpc, tr-r0), w, c, ldc, i0+i+r0, jc, ep)
				}
			}
		}
	}
}

// interleaveRows rewrites q (row-major rows of k2 int16, a multiple of mr rows) in place so that each tile of
// mr rows holds its rows' pairs pair after pair (int8Kernel.ilv); tmp holds mr·k2 values. A pair moves as one
// 32-bit word.
func interleaveRows(q, tmp []int16, mr, k2 int) {
	kp := k2 / 2
	if len(q) < mr*k2 || kp == 0 {
		return
	}
	q32 := unsafe.Slice((*uint32)(unsafe.Pointer(&q[0])), len(q)/2)
	t32 := unsafe.Slice((*uint32)(unsafe.Pointer(&tmp[0])), mr*kp)
	for t := 0; t+mr*kp <= len(q32); t += mr * kp {
		g := q32[t : t+mr*kp]
		copy(t32, g)
		for r := 0; r < mr; r++ {
			src := t32[r*kp : r*kp+kp]
			for p, v := range src {
				g[p*mr+r] = v
			}
		}
	}
}

// int8MicroGeneric is the portable 2×4 int8 micro-kernel (nr = cw = 4).
func int8MicroGeneric(kp int, a []int16, lda int, b []int8, rs, sc []float32, tile []float32) {
	a0 := a[:2*kp]
	a1 := a[lda : lda+2*kp]
	b = b[:8*kp]
	var c00, c01, c02, c03, c10, c11, c12, c13 int32
	for p := 0; p < kp; p++ {
		x0, y0 := int32(a0[2*p]), int32(a0[2*p+1])
		x1, y1 := int32(a1[2*p]), int32(a1[2*p+1])
		w := b[8*p : 8*p+8 : 8*p+8]
		c00 += x0*int32(w[0]) + y0*int32(w[1])
		c10 += x1*int32(w[0]) + y1*int32(w[1])
		c01 += x0*int32(w[2]) + y0*int32(w[3])
		c11 += x1*int32(w[2]) + y1*int32(w[3])
		c02 += x0*int32(w[4]) + y0*int32(w[5])
		c12 += x1*int32(w[4]) + y1*int32(w[5])
		c03 += x0*int32(w[6]) + y0*int32(w[7])
		c13 += x1*int32(w[6]) + y1*int32(w[7])
	}
	s := sc[:4]
	r0, r1 := rs[0], rs[1]
	tile[0], tile[1], tile[2], tile[3] = float32(c00)*r0*s[0], float32(c01)*r0*s[1], float32(c02)*r0*s[2], float32(c03)*r0*s[3]
	tile[4], tile[5], tile[6], tile[7] = float32(c10)*r1*s[0], float32(c11)*r1*s[1], float32(c12)*r1*s[2], float32(c13)*r1*s[3]
}
