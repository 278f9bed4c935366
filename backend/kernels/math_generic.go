package kernels

import "math"

// Elementwise kernels. The portable versions below are float32 polynomials (no float64 libm calls); the
// architecture files replace the function variables with vector versions of the same algorithms.

var (
	vexp       = vexpGeneric
	verf       = verfGeneric
	vlogistic  = vlogisticGeneric
	vtanh      = vtanhGeneric
	vgelu      = vgeluGeneric
	vquickgelu = vquickgeluGeneric
	vadd       = vaddGeneric
	vsub       = vsubGeneric
	vmul       = vmulGeneric
	vdiv       = vdivGeneric
	vaddScalar = vaddScalarGeneric
	vmulScalar = vmulScalarGeneric
	vsum       = vsumGeneric
	vmax       = vmaxGeneric
	// vexpSubSum sets x[i] = exp(x[i]-m) and returns their sum.
	vexpSubSum = vexpSubSumGeneric
	// vmeanVar returns the mean and (biased) variance of x (two passes).
	vmeanVar = vmeanVarGeneric
	// vnormAffine sets dst[i] = (x[i]-mean)·inv·gamma[i] + beta[i] (gamma, beta may be nil).
	vnormAffine = vnormAffineGeneric
)

// sumBlock: the vector tiers flush float32 lane sums into a float64 total every sumBlock elements, which
// keeps sums of thousands of values within ~1e-7 relative.
const sumBlock = 128

// exp constants (Cephes expf): exp(x) = 2ⁿ·exp(r), r = x - n·ln2 in [-ln2/2, ln2/2].
const (
	expHi    = 89.0
	expLo    = -104.0
	log2e    = 1.44269504088896341
	ln2Hi    = 0.693359375
	ln2Lo    = -2.12194440e-4
	expP0    = 1.9875691500e-4
	expP1    = 1.3981999507e-3
	expP2    = 8.3334519073e-3
	expP3    = 4.1665795894e-2
	expP4    = 1.6666665459e-1
	expP5    = 5.0000001201e-1
	erfP     = 0.3275911
	erfA1    = 0.254829592
	erfA2    = -0.284496736
	erfA3    = 1.421413741
	erfA4    = -1.453152027
	erfA5    = 1.061405429
	tanhT0   = -5.70498872745e-3
	tanhT1   = 2.06390887954e-2
	tanhT2   = -5.37397155531e-2
	tanhT3   = 1.33314422036e-1
	tanhT4   = -3.33332819422e-1
	sqrtHalf = 0.70710678118654752
)

func exp32(x float32) float32 {
	if x != x {
		return x
	}
	x = min(max(x, expLo), expHi)
	n := float32(math.Round(float64(x * log2e)))
	r := x - n*ln2Hi
	r -= n * ln2Lo
	p := float32(expP0)
	p = p*r + expP1
	p = p*r + expP2
	p = p*r + expP3
	p = p*r + expP4
	p = p*r + expP5
	e := p*r*r + r + 1
	ni := int32(n)
	n1 := ni >> 1
	n2 := ni - n1
	return e * math.Float32frombits(uint32(n1+127)<<23) * math.Float32frombits(uint32(n2+127)<<23)
}

// erf32 is Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7) with the float32 exp above.
func erf32(x float32) float32 {
	ax := float32(math.Abs(float64(x)))
	t := 1 / (1 + erfP*ax)
	p := float32(erfA5)
	p = p*t + erfA4
	p = p*t + erfA3
	p = p*t + erfA2
	p = p*t + erfA1
	y := 1 - p*t*exp32(-ax*ax)
	if x < 0 {
		return -y
	}
	return y
}

func tanh32(x float32) float32 {
	ax := float32(math.Abs(float64(x)))
	if ax < 0.625 {
		z := x * x
		p := float32(tanhT0)
		p = p*z + tanhT1
		p = p*z + tanhT2
		p = p*z + tanhT3
		p = p*z + tanhT4
		return x + x*z*p
	}
	y := 1 - 2/(exp32(2*ax)+1)
	if x < 0 {
		return -y
	}
	return y
}

func logistic32(x float32) float32  { return 1 / (1 + exp32(-x)) }
func gelu32(x float32) float32      { return 0.5 * x * (1 + erf32(x*sqrtHalf)) }
func quickgelu32(x float32) float32 { return x / (1 + exp32(-1.702*x)) }

func vexpGeneric(dst, src []float32) {
	for i, v := range src[:len(dst)] {
		dst[i] = exp32(v)
	}
}

func verfGeneric(dst, src []float32) {
	for i, v := range src[:len(dst)] {
		dst[i] = erf32(v)
	}
}

func vlogisticGeneric(dst, src []float32) {
	for i, v := range src[:len(dst)] {
		dst[i] = logistic32(v)
	}
}

func vtanhGeneric(dst, src []float32) {
	for i, v := range src[:len(dst)] {
		dst[i] = tanh32(v)
	}
}

func vgeluGeneric(dst, src []float32) {
	for i, v := range src[:len(dst)] {
		dst[i] = gelu32(v)
	}
}

func vquickgeluGeneric(dst, src []float32) {
	for i, v := range src[:len(dst)] {
		dst[i] = quickgelu32(v)
	}
}

func vaddGeneric(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

func vsubGeneric(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] - b[i]
	}
}

func vmulGeneric(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] * b[i]
	}
}

func vdivGeneric(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] / b[i]
	}
}

func vaddScalarGeneric(dst, a []float32, s float32) {
	a = a[:len(dst)]
	for i := range dst {
		dst[i] = a[i] + s
	}
}

func vmulScalarGeneric(dst, a []float32, s float32) {
	a = a[:len(dst)]
	for i := range dst {
		dst[i] = a[i] * s
	}
}

func vsumGeneric(x []float32) float32 {
	var s0, s1 float64
	i := 0
	for ; i+2 <= len(x); i += 2 {
		s0 += float64(x[i])
		s1 += float64(x[i+1])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return float32(s0 + s1)
}

func vmaxGeneric(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}

func vexpSubSumGeneric(x []float32, m float32) float32 {
	var s float64
	for i, v := range x {
		e := exp32(v - m)
		x[i] = e
		s += float64(e)
	}
	return float32(s)
}

func vmeanVarGeneric(x []float32) (mean, variance float32) {
	n := float64(len(x))
	mean = float32(float64(vsumGeneric(x)) / n)
	var v0, v1 float64
	i := 0
	for ; i+2 <= len(x); i += 2 {
		d0, d1 := x[i]-mean, x[i+1]-mean
		v0 += float64(d0 * d0)
		v1 += float64(d1 * d1)
	}
	for ; i < len(x); i++ {
		d := x[i] - mean
		v0 += float64(d * d)
	}
	return mean, float32((v0 + v1) / n)
}

func vnormAffineGeneric(dst, x []float32, mean, inv float32, gamma, beta []float32) {
	x = x[:len(dst)]
	switch {
	case gamma != nil && beta != nil:
		gamma, beta = gamma[:len(dst)], beta[:len(dst)]
		for i, v := range x {
			dst[i] = (v-mean)*inv*gamma[i] + beta[i]
		}
	case gamma != nil:
		gamma = gamma[:len(dst)]
		for i, v := range x {
			dst[i] = (v - mean) * inv * gamma[i]
		}
	case beta != nil:
		beta = beta[:len(dst)]
		for i, v := range x {
			dst[i] = (v-mean)*inv + beta[i]
		}
	default:
		for i, v := range x {
			dst[i] = (v - mean) * inv
		}
	}
}

func softmaxRow(x []float32) {
	if len(x) == 0 {
		return
	}
	m := vmax(x)
	if math.IsInf(float64(m), -1) {
		m = 0 // every entry -Inf: exp gives 0s and the division NaN, as the reference does
	}
	s := vexpSubSum(x, m)
	vmulScalar(x, x, 1/s)
}

func layerNormRow(dst, x, gamma, beta []float32, eps float32) {
	if len(x) == 0 {
		return
	}
	mean, variance := vmeanVar(x)
	inv := float32(1 / math.Sqrt(float64(variance+eps)))
	vnormAffine(dst, x, mean, inv, gamma, beta)
}
