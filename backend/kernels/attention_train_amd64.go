//go:build goexperiment.simd && amd64

package kernels

import "simd/archsimd"

func installTrainAVX2() {
	vsoftmaxGrad = softmaxGradAVX2
	vscaleFlush = scaleFlushAVX2
	bwdRow = bwdRowAVX2
	vsoftmaxGradDot = softmaxGradDotAVX2
}

// dotBlockAVX2 returns Σ a[i]·b[i] over len(a) (a multiple of 8) values, in float64.
func dotBlockAVX2(a, b []float32) float64 {
	acc := f8{}
	for i := 0; i+8 <= len(a); i += 8 {
		acc = ld(a, i).MulAdd(ld(b, i), acc)
	}
	return hsum64(acc)
}

func softmaxGradAVX2(ds, p, dp []float32) {
	n := len(ds)
	p, dp = p[:n], dp[:n]
	n8 := n &^ 7
	var dot float64
	for i := 0; i < n8; i += sumBlock {
		e := min(n8, i+sumBlock)
		dot += dotBlockAVX2(p[i:e], dp[i:e])
	}
	for i := n8; i < n; i++ {
		dot += float64(p[i]) * float64(dp[i])
	}
	d := float32(dot)
	if n8 > 0 {
		scaleDiffAVX2(ds[:n8], p[:n8], dp[:n8], d)
	}
	for i := n8; i < n; i++ {
		ds[i] = flush(p[i] * (dp[i] - d))
	}
}

// scaleDiffAVX2 sets ds[i] = p[i]·(dp[i] − d) (0 where subnormal) over len(ds) (a multiple of 8) values.
func scaleDiffAVX2(ds, p, dp []float32, d float32) {
	dv, tiny := splat(d), splat(tinyF32)
	for i := 0; i+8 <= len(ds); i += 8 {
		v := ld(p, i).Mul(ld(dp, i).Sub(dv))
		st(f8{}.IfElse(v.Abs().Less(tiny), v), ds, i)
	}
	archsimd.ClearAVXUpperBits()
}

func scaleFlushAVX2(dst, src []float32, s float32) {
	n := len(dst)
	src = src[:n]
	n8 := n &^ 7
	if n8 > 0 {
		scaleFlushLoopAVX2(dst[:n8], src[:n8], s)
	}
	for i := n8; i < n; i++ {
		dst[i] = flush(src[i] * s)
	}
}

func scaleFlushLoopAVX2(dst, src []float32, s float32) {
	sv, tiny := splat(s), splat(tinyF32)
	for i := 0; i+8 <= len(dst); i += 8 {
		v := ld(src, i).Mul(sv)
		st(f8{}.IfElse(v.Abs().Less(tiny), v), dst, i)
	}
	archsimd.ClearAVXUpperBits()
}

func softmaxGradDotAVX2(ds, p, dp []float32, dot float32) {
	n := len(ds)
	p, dp = p[:n], dp[:n]
	n8 := n &^ 7
	if n8 > 0 {
		scaleDiffAVX2(ds[:n8], p[:n8], dp[:n8], dot)
	}
	for i := n8; i < n; i++ {
		ds[i] = flush(p[i] * (dp[i] - dot))
	}
}

// bwdRowAVX2 is bwdRow with ldk a multiple of 8: every loop vectorised over keys.
func bwdRowAVX2(dq, q, do, prow, dsrow, vt, kt, dkt, dvt []float32, hd, ldk int) {
	prow, dsrow = prow[:ldk], dsrow[:ldk]
	_, _, _, _ = vt[hd*ldk-1], kt[hd*ldk-1], dkt[hd*ldk-1], dvt[hd*ldk-1]
	var dot float64
	for j0 := 0; j0 < ldk; j0 += sumBlock {
		dot += bwdScoresAVX2(do, prow, dsrow, vt, hd, ldk, j0, min(ldk, j0+sumBlock))
	}
	scaleDiffAVX2(dsrow, prow, dsrow, float32(dot))
	for d := 0; d < hd; d++ {
		dq[d] = float32(bwdAccumAVX2(q[d], do[d], prow, dsrow, kt[d*ldk:(d+1)*ldk], dkt[d*ldk:(d+1)*ldk], dvt[d*ldk:(d+1)*ldk]))
	}
}

// bwdScoresAVX2 sets dsrow[j] = Σ_d do[d]·vt[d][j] for j in [j0, j1) and returns Σ dsrow[j]·prow[j] there.
func bwdScoresAVX2(do, prow, dsrow, vt []float32, hd, ldk, j0, j1 int) float64 {
	dotv := f8{}
	for j := j0; j < j1; j += 8 {
		acc := splat(do[0]).Mul(ld(vt, j))
		for d := 1; d < hd; d++ {
			acc = splat(do[d]).MulAdd(ld(vt, d*ldk+j), acc)
		}
		st(acc, dsrow, j)
		dotv = acc.MulAdd(ld(prow, j), dotv)
	}
	return hsum64(dotv)
}

// bwdAccumAVX2 adds qd·ds to dk and od·p to dv and returns Σ ds·k (one head dim of bwdRow).
func bwdAccumAVX2(qd, od float32, p, ds, k, dk, dv []float32) float64 {
	n := len(ds)
	p, k, dk, dv = p[:n], k[:n], dk[:n], dv[:n]
	qv, ov := splat(qd), splat(od)
	acc := f8{}
	for j := 0; j+8 <= n; j += 8 {
		g := ld(ds, j)
		acc = g.MulAdd(ld(k, j), acc)
		st(qv.MulAdd(g, ld(dk, j)), dk, j)
		st(ov.MulAdd(ld(p, j), ld(dv, j)), dv, j)
	}
	return hsum64(acc)
}
