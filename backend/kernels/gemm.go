package kernels

import "sync"

// The GEMM: B is packed in panels of gemmNR columns (K rows of gemmNR values each, zero-padded), and a
// micro-kernel computes a gemmMR×gemmNR tile of C = A·B over the whole K with the tile in registers, reading
// gemmMR rows of A in place and one B panel. The driver blocks M so that an A block stays in L2 while it meets
// every panel of its unit, and each panel stays in L1/L2 while every tile row of the block uses it. The
// epilogue is applied to the tile as it is stored.

const tileMax = 256 // ≥ gemmMR·gemmNR of every tier

// microFn computes tile[r·nr+j] = Σ_kk a[r·lda+kk]·bp[kk·nr+j] for r < mr, j < nr, where rows of A past
// rows-1 (rows ≥ 1) are read as row rows-1 (their results are ignored).
type microFn func(k int, a []float32, lda, rows int, bp []float32, tile *[tileMax]float32)

// The tier in use (tier.go installs them).
var (
	gemmMR              = 4
	gemmNR              = 4
	microKernel microFn = microGeneric
	storeTile           = storeTileGeneric
	// stripKernel, if set, replaces microKernel in the GEMM: it computes up to tileMax/gemmNR rows (whole
	// mr-row tiles, the last one partial) in one call, tile[r·nr+j], stored with one storeTile (wasm: Go calls
	// cost much there).
	stripKernel microFn
)

func packB(dst *PackedB, b []float32, ldb, k, n int, transposed bool, nr int) {
	np := (n + nr - 1) / nr
	size := np * k * nr
	dst.K, dst.N, dst.nr, dst.i8, dst.sc = k, n, nr, nil, nil
	if cap(dst.f32) < size {
		dst.f32 = make([]float32, size)
	}
	dst.f32 = dst.f32[:size]
	panels := func(lo, hi int) {
		for p := lo; p < hi; p++ {
			packPanel(dst.f32[p*k*nr:(p+1)*k*nr], b, ldb, k, n, p*nr, transposed, nr)
		}
	}
	// Large operands (training's weight gradients pack activations of every token) are packed in parallel.
	if size >= 1<<17 && np > 1 && Threads() > 1 {
		parallelRun(np, max(1, np/(4*Threads())), panels)
		return
	}
	panels(0, np)
}

// packPanel packs columns j0… (nr of them, zero padded) of B into panel.
func packPanel(panel, b []float32, ldb, k, n, j0 int, transposed bool, nr int) {
	w := min(nr, n-j0)
	if transposed {
		if w < nr {
			clear(panel)
		}
		for jj := 0; jj < w; jj++ {
			row := b[(j0+jj)*ldb : (j0+jj)*ldb+k]
			for kk, v := range row {
				panel[kk*nr+jj] = v
			}
		}
		return
	}
	if w == nr {
		// whole rows of the panel: fixed-size copies (copy would call memmove for every 16 values)
		switch nr {
		case 16:
			for kk := 0; kk < k; kk++ {
				*(*[16]float32)(panel[kk*16:]) = *(*[16]float32)(b[kk*ldb+j0:])
			}
			return
		case 8:
			for kk := 0; kk < k; kk++ {
				*(*[8]float32)(panel[kk*8:]) = *(*[8]float32)(b[kk*ldb+j0:])
			}
			return
		}
	}
	for kk := 0; kk < k; kk++ {
		dstRow := panel[kk*nr : kk*nr+nr]
		src := b[kk*ldb+j0 : kk*ldb+j0+w]
		copy(dstRow, src)
		clear(dstRow[w:])
	}
}

var scratchPool sync.Pool // *[]float32

func getScratch(n int) *[]float32 {
	if p, ok := scratchPool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

func putScratch(p *[]float32) { scratchPool.Put(p) }

// serialFlops: problems below this many multiply-adds run on the calling goroutine.
const serialFlops = 1 << 18

// aBlockFloats is the size of the A block that meets every panel of a unit (kept in L2).
var aBlockFloats = 96 << 10

func gemm(m int, a []float32, lda int, b *PackedB, c []float32, ldc int, ep *Epilogue, par bool) {
	k, n := b.K, b.N
	if m <= 0 || n <= 0 {
		return
	}
	if k == 0 {
		var zero [tileMax]float32
		for i := 0; i < m; i++ {
			for j0 := 0; j0 < n; j0 += tileMax {
				w := min(tileMax, n-j0)
				acc := zero[:w]
				clear(acc)
				epRow(c[i*ldc+j0:i*ldc+j0+w], acc, i, j0, ep)
			}
		}
		return
	}
	if b.i8 != nil {
		gemmInt8(m, a, lda, b, c, ldc, ep, par)
		return
	}
	nr := b.nr
	if nr != gemmNR {
		panic("kernels: PackedB packed for another panel width")
	}
	np := (n + nr - 1) / nr
	splitGemm(m, k, np, !par || m*n*k < serialFlops, func(i0, i1, p0, p1 int) {
		gemmUnit(i0, i1, p0, p1, k, n, a, lda, b, c, ldc, ep)
	})
}

// splitGemm runs unit over the rows [0, m) of C and its np panels (inner dimension k) in M blocks whose A
// block (mc×k floats) is about aBlockFloats, so that it stays in L2 while every panel of its unit passes. Serial
// (or with one thread, as in wasm) the blocks run one after the other over all the panels; else each is split
// further into runs of panels, enough units for every worker.
func splitGemm(m, k, np int, serial bool, unit func(i0, i1, p0, p1 int)) {
	mc := aBlockFloats / max(k, 1)
	mc -= mc % gemmMR
	mc = max(mc, 4*gemmMR)
	mc = min(mc, m)
	mb := (m + mc - 1) / mc
	t := Threads()
	if serial || t <= 1 {
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

// gemmUnit computes rows [i0, i1) and panels [p0, p1) of C.
func gemmUnit(i0, i1, p0, p1, k, n int, a []float32, lda int, b *PackedB, c []float32, ldc int, ep *Epilogue) {
	nr, mr := b.nr, gemmMR
	var tile [tileMax]float32
	kern := microKernel
	if strip := stripKernel; strip != nil {
		rpc := tileMax / nr // rows per call, a multiple of mr
		for p := p0; p < p1; p++ {
			bp := b.f32[p*k*nr : (p+1)*k*nr]
			j0 := p * nr
			w := min(nr, n-j0)
			for i := i0; i < i1; i += rpc {
				rows := min(rpc, i1-i)
				strip(k, a[i*lda:], lda, rows, bp, &tile)
				storeTile(&tile, nr, rows, w, c, ldc, i, j0, ep)
			}
		}
		return
	}
	for p := p0; p < p1; p++ {
		bp := b.f32[p*k*nr : (p+1)*k*nr]
		j0 := p * nr
		w := min(nr, n-j0)
		for i := i0; i < i1; i += mr {
			rows := min(mr, i1-i)
			kern(k, a[i*lda:], lda, rows, bp, &tile)
			storeTile(&tile, nr, rows, w, c, ldc, i, j0, ep)
		}
	}
}

func storeTileGeneric(tile *[tileMax]float32, nr, rows, w int, c []float32, ldc, i0, j0 int, ep *Epilogue) {
	for r := 0; r < rows; r++ {
		acc := tile[r*nr : r*nr+w]
		dst := c[(i0+r)*ldc+j0 : (i0+r)*ldc+j0+w]
		if ep == nil {
			copy(dst, acc)
			continue
		}
		epRow(dst, acc, i0+r, j0, ep)
	}
}

// epRow applies the epilogue to acc (row i, columns j0…) and stores it into dst.
func epRow(dst, acc []float32, i, j0 int, ep *Epilogue) {
	if ep == nil {
		copy(dst, acc)
		return
	}
	w := len(acc)
	if ep.Alpha != 0 && ep.Alpha != 1 {
		vmulScalar(acc, acc, ep.Alpha)
	}
	if ep.Bias != nil {
		vadd(acc, acc, ep.Bias[j0:j0+w])
	}
	switch ep.Act {
	case ActGELU:
		vgelu(acc, acc)
	case ActQuickGELU:
		vquickgelu(acc, acc)
	}
	if ep.PostScale != 0 && ep.PostScale != 1 {
		vmulScalar(acc, acc, ep.PostScale)
	}
	if ep.Residual != nil {
		o := i*ep.LdRes + j0
		vadd(acc, acc, ep.Residual[o:o+w])
	}
	if ep.Accumulate {
		vadd(dst, dst, acc)
	} else {
		copy(dst, acc)
	}
}

// microGeneric is the portable 4×4 micro-kernel (gemmNR = 4): 16 accumulators, B values loaded one by one
// so that the live floats fit the registers of most targets.
func microGeneric(k int, a []float32, lda, rows int, bp []float32, tile *[tileMax]float32) {
	r1, r2, r3 := min(1, rows-1)*lda, min(2, rows-1)*lda, min(3, rows-1)*lda
	a0 := a[:k]
	a1 := a[r1 : r1+k]
	a2 := a[r2 : r2+k]
	a3 := a[r3 : r3+k]
	bp = bp[:4*k]
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	for kk := 0; kk < len(a0); kk++ {
		b := bp[4*kk : 4*kk+4 : 4*kk+4]
		x0, x1, x2, x3 := a0[kk], a1[kk], a2[kk], a3[kk]
		b0 := b[0]
		c00 += x0 * b0
		c10 += x1 * b0
		c20 += x2 * b0
		c30 += x3 * b0
		b1 := b[1]
		c01 += x0 * b1
		c11 += x1 * b1
		c21 += x2 * b1
		c31 += x3 * b1
		b2 := b[2]
		c02 += x0 * b2
		c12 += x1 * b2
		c22 += x2 * b2
		c32 += x3 * b2
		b3 := b[3]
		c03 += x0 * b3
		c13 += x1 * b3
		c23 += x2 * b3
		c33 += x3 * b3
	}
	tile[0], tile[1], tile[2], tile[3] = c00, c01, c02, c03
	tile[4], tile[5], tile[6], tile[7] = c10, c11, c12, c13
	tile[8], tile[9], tile[10], tile[11] = c20, c21, c22, c23
	tile[12], tile[13], tile[14], tile[15] = c30, c31, c32, c33
}

// microGeneric2x4 is the portable 2×4 micro-kernel (gemmNR = 4) for targets with 16 float registers (amd64
// without GOEXPERIMENT=simd, and wasm, whose JIT maps onto the host's): 8 accumulators, 2 A values and a
// temporary fit where the 4×4's 16 accumulators spill.
func microGeneric2x4(k int, a []float32, lda, rows int, bp []float32, tile *[tileMax]float32) {
	r1 := min(1, rows-1) * lda
	a0 := a[:k]
	a1 := a[r1 : r1+k]
	bp = bp[:4*k]
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	for kk := 0; kk < len(a0); kk++ {
		b := bp[4*kk : 4*kk+4 : 4*kk+4]
		x0, x1 := a0[kk], a1[kk]
		c00 += x0 * b[0]
		c10 += x1 * b[0]
		c01 += x0 * b[1]
		c11 += x1 * b[1]
		c02 += x0 * b[2]
		c12 += x1 * b[2]
		c03 += x0 * b[3]
		c13 += x1 * b[3]
	}
	tile[0], tile[1], tile[2], tile[3] = c00, c01, c02, c03
	tile[4], tile[5], tile[6], tile[7] = c10, c11, c12, c13
}

// microStrided, where the tier has one, is microFn reading B in place: k rows of gemmNR values with row stride
// ldb (a whole panel's width of columns of a row-major B).
var microStrided func(k int, a []float32, lda, rows int, b []float32, ldb int, tile *[tileMax]float32)

// gemmStrided is GemmStrided: the blocking of gemm, whole panels read in place by microStrided, a last
// partial panel packed.
func gemmStrided(m int, a []float32, lda int, b []float32, ldb, k, n int, c []float32, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	if microStrided == nil || k == 0 {
		pk := PackB(nil, b, ldb, k, n, false)
		Gemm(m, a, lda, pk, c, ldc, nil)
		return
	}
	nr, mr := gemmNR, gemmMR
	np := (n + nr - 1) / nr
	unit := func(i0, i1, p0, p1 int) {
		var tile [tileMax]float32
		for p := p0; p < p1; p++ {
			j0 := p * nr
			w := min(nr, n-j0)
			var bp []float32
			if w < nr {
				s := getScratch(k * nr)
				defer putScratch(s)
				bp = *s
				packPanel(bp, b, ldb, k, n, j0, false, nr)
			}
			for i := i0; i < i1; i += mr {
				rows := min(mr, i1-i)
				if bp == nil {
					microStrided(k, a[i*lda:], lda, rows, b[j0:], ldb, &tile)
				} else {
					microKernel(k, a[i*lda:], lda, rows, bp, &tile)
				}
				storeTile(&tile, nr, rows, w, c, ldc, i, j0, nil)
			}
		}
	}
	splitGemm(m, k, np, m*n*k < serialFlops, unit)
}
