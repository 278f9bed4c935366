package kernels

import "math"

func unaryScalar(dst, src []float32, f func(float32) float32) {
	for i, v := range src[:len(dst)] {
		dst[i] = f(v)
	}
}

func expScalar(x float32) float32      { return float32(math.Exp(float64(x))) }
func erfScalar(x float32) float32      { return float32(math.Erf(float64(x))) }
func tanhScalar(x float32) float32     { return float32(math.Tanh(float64(x))) }
func logisticScalar(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }
func geluScalar(x float32) float32 {
	return float32(0.5 * float64(x) * (1 + math.Erf(float64(x)/math.Sqrt2)))
}
func quickGELUScalar(x float32) float32 { return x * logisticScalar(1.702*x) }

func softmaxScalar(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	var s float32
	for i, v := range x {
		e := expScalar(v - m)
		x[i] = e
		s += e
	}
	inv := 1 / s
	for i := range x {
		x[i] *= inv
	}
}

func layerNormScalar(dst, x, gamma, beta []float32, eps float32) {
	n := len(x)
	var mean float32
	for _, v := range x {
		mean += v
	}
	mean /= float32(n)
	var variance float32
	for _, v := range x {
		d := v - mean
		variance += d * d
	}
	variance /= float32(n)
	inv := 1 / float32(math.Sqrt(float64(variance+eps)))
	for i, v := range x {
		y := (v - mean) * inv
		if gamma != nil {
			y *= gamma[i]
		}
		if beta != nil {
			y += beta[i]
		}
		dst[i] = y
	}
}
