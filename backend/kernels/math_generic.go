package kernels

import "math"

// Elementwise kernels. The portable versions below are float32 polynomials (no float64 libm calls); the
// architecture files replace the function variables with vector versions of the same algorithms.
//
// Every tier gives the same bits as these portable versions (TestTierBits): the vector versions do the same
// float32 operations in the same order, each rounded — a multiply then an add, never a fused multiply-add,
// which wasm lacks — and the sums (vsum, vmeanVar, vexpSubSum) add their values in one canonical order
// (vsumGeneric). The portable code writes float32(…) around products that are added, since Go may fuse x·y + z
// where the target has FMA (arm64, amd64 at GOAMD64=v3) and an explicit conversion forbids it. So an int8 model,
// whose GEMMs and attentions are integer, gives the same outputs bit for bit on every tier, native or WASM.

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
	vsum       = vsumGeneric // the canonical sum (below)
	vmax       = vmaxGeneric
	// vexpSubSum sets x[i] = exp(x[i]-m) and returns their sum.
	vexpSubSum = vexpSubSumGeneric
	// vmeanVar returns the mean and (biased) variance of x (two passes).
	vmeanVar = vmeanVarGeneric
	// vnormAffine sets dst[i] = (x[i]-mean)·inv·gamma[i] + beta[i] (gamma, beta may be nil).
	vnormAffine = vnormAffineGeneric
)

// The canonical sum (vsumGeneric) of n values, all in float32 so that WGSL can do the same (it has no float64):
// blocks of sumBlock values; in a block, value i is added to lane i mod sumLanes (lanes start at 0; one AVX-512
// vector, two AVX2 ones or four SIMD128 ones, a last partial group padded with zeros), the block's lanes are
// added by tree16's fixed pairwise tree, and the block sums in order. Layer norm's rows (≤ 24 blocks) and the
// attention's few keys (one block) keep ~1e-7 relative.
const (
	sumBlock = 128
	sumLanes = 16
)

// tree16 adds the 16 lanes of a block, pairwise.
func tree16(l *[sumLanes]float32) float32 {
	return (((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))) +
		(((l[8] + l[9]) + (l[10] + l[11])) + ((l[12] + l[13]) + (l[14] + l[15])))
}

// vsumGeneric is the canonical sum of x (above).
func vsumGeneric(x []float32) float32 {
	var total float32
	for b := 0; b < len(x); b += sumBlock {
		var l [sumLanes]float32
		for i, v := range x[b:min(len(x), b+sumBlock)] {
			l[i%sumLanes] += v
		}
		total += tree16(&l)
	}
	return total
}

// sqDevGeneric is the canonical sum of (x[i] − mean)².
func sqDevGeneric(x []float32, mean float32) float32 {
	var total float32
	for b := 0; b < len(x); b += sumBlock {
		var l [sumLanes]float32
		for i, v := range x[b:min(len(x), b+sumBlock)] {
			d := v - mean
			l[i%sumLanes] += float32(d * d)
		}
		total += tree16(&l)
	}
	return total
}

// withSignOf32 is y with x's sign bit ORed in (the vector versions' withSignOf).
func withSignOf32(y, x float32) float32 {
	return math.Float32frombits(math.Float32bits(y) | math.Float32bits(x)&(1<<31))
}

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

// exp32 is exp: 2ⁿ·exp(r) with n = x·log2e rounded to even, r = n·(−ln2Hi) + x, r = n·(−ln2Lo) + r, Cephes'
// polynomial p (Horner) and exp(r) ≈ p·r² + (r + 1); x is clamped to [expLo, expHi] and 2ⁿ applied as two factors.
func exp32(x float32) float32 {
	if x != x {
		return x
	}
	x = min(max(x, expLo), expHi)
	n := float32(math.RoundToEven(float64(x * log2e)))
	r := x + float32(n*-ln2Hi)
	r += float32(n * -ln2Lo)
	p := float32(expP0)
	p = float32(p*r) + expP1
	p = float32(p*r) + expP2
	p = float32(p*r) + expP3
	p = float32(p*r) + expP4
	p = float32(p*r) + expP5
	e := float32(p*float32(r*r)) + (r + 1)
	ni := int32(n)
	n1 := ni >> 1
	n2 := ni - n1
	return e * math.Float32frombits(uint32(n1+127)<<23) * math.Float32frombits(uint32(n2+127)<<23)
}

// erf32 is Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7) with the float32 exp above.
func erf32(x float32) float32 {
	ax := float32(math.Abs(float64(x)))
	t := 1 / (float32(ax*erfP) + 1)
	p := float32(erfA5)
	p = float32(p*t) + erfA4
	p = float32(p*t) + erfA3
	p = float32(p*t) + erfA2
	p = float32(p*t) + erfA1
	return withSignOf32(1-float32(float32(p*t)*exp32(-(ax*ax))), x)
}

func tanh32(x float32) float32 {
	ax := float32(math.Abs(float64(x)))
	if ax < 0.625 {
		z := x * x
		p := float32(tanhT0)
		p = float32(p*z) + tanhT1
		p = float32(p*z) + tanhT2
		p = float32(p*z) + tanhT3
		p = float32(p*z) + tanhT4
		return float32(float32(x*z)*p) + x
	}
	return withSignOf32(1-2/(exp32(ax+ax)+1), x)
}

func logistic32(x float32) float32 { return 1 / (1 + exp32(-x)) }

// gelu32 is h·erf(x/√2) + h with h = x/2.
func gelu32(x float32) float32 {
	h := x * 0.5
	return float32(h*erf32(x*sqrtHalf)) + h
}

func quickgelu32(x float32) float32 { return x / (1 + exp32(x*-1.702)) }

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
	for i, v := range x {
		x[i] = exp32(v - m)
	}
	return vsumGeneric(x)
}

func vmeanVarGeneric(x []float32) (mean, variance float32) {
	n := float32(len(x))
	mean = vsumGeneric(x) / n
	return mean, sqDevGeneric(x, mean) / n
}

func vnormAffineGeneric(dst, x []float32, mean, inv float32, gamma, beta []float32) {
	x = x[:len(dst)]
	switch {
	case gamma != nil && beta != nil:
		gamma, beta = gamma[:len(dst)], beta[:len(dst)]
		for i, v := range x {
			dst[i] = float32((v-mean)*inv*gamma[i]) + beta[i]
		}
	case gamma != nil:
		gamma = gamma[:len(dst)]
		for i, v := range x {
			dst[i] = (v - mean) * inv * gamma[i]
		}
	case beta != nil:
		beta = beta[:len(dst)]
		for i, v := range x {
			dst[i] = float32((v-mean)*inv) + beta[i]
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
	inv := 1 / float32(math.Sqrt(float64(variance+eps))) // the float32 square root, correctly rounded
	vnormAffine(dst, x, mean, inv, gamma, beta)
}
