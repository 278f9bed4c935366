package kernels

import "math"

// Naive references (the bodies the API contract shipped with), used by the tests.

func refGemm(m, k, n int, a []float32, lda int, bkn []float32, c []float32, ldc int, ep *Epilogue) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for kk := 0; kk < k; kk++ {
				s += float64(a[i*lda+kk]) * float64(bkn[kk*n+j])
			}
			c[i*ldc+j] = refApply(ep, float32(s), i, j, c[i*ldc+j])
		}
	}
}

func refApply(ep *Epilogue, s float32, i, j int, old float32) float32 {
	if ep == nil {
		return s
	}
	if ep.Alpha != 0 {
		s *= ep.Alpha
	}
	if ep.Bias != nil {
		s += ep.Bias[j]
	}
	switch ep.Act {
	case ActGELU:
		s = float32(0.5 * float64(s) * (1 + math.Erf(float64(s)/math.Sqrt2)))
	case ActQuickGELU:
		s = s * float32(1/(1+math.Exp(-1.702*float64(s))))
	}
	if ep.PostScale != 0 {
		s *= ep.PostScale
	}
	if ep.Residual != nil {
		s += ep.Residual[i*ep.LdRes+j]
	}
	if ep.Accumulate {
		return old + s
	}
	return s
}

func refSoftmax(x []float64) {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	var s float64
	for i, v := range x {
		x[i] = math.Exp(v - m)
		s += x[i]
	}
	for i := range x {
		x[i] /= s
	}
}

func refAttention(a *Attention) []float64 {
	out := make([]float64, len(a.Out.Data))
	for i := range out {
		out[i] = float64(a.Out.Data[i])
	}
	sc := make([]float64, a.Lk)
	for b := 0; b < a.Batch; b++ {
		for h := 0; h < a.Heads; h++ {
			for i := 0; i < a.Lq; i++ {
				q := a.Q.at(b, i, h)[:a.HeadDim]
				for j := 0; j < a.Lk; j++ {
					k := a.K.at(b, j, h)[:a.HeadDim]
					var s float64
					for d := range q {
						s += float64(q[d]) * float64(k[d])
					}
					sc[j] = s * float64(a.Scale)
				}
				refSoftmax(sc)
				o := b*a.Out.BatchStride + i*a.Out.RowStride + h*a.Out.HeadStride
				for d := 0; d < a.HeadDim; d++ {
					var s float64
					for j := 0; j < a.Lk; j++ {
						s += sc[j] * float64(a.V.at(b, j, h)[d])
					}
					out[o+d] = s
				}
			}
		}
	}
	return out
}
