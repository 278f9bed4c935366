package kernels

import "math"

// expSubSumExact sets x[i] = exp(x[i] − m) (for x[i] ≤ m) and returns their sum, with the same bits in every
// tier: the integer attention quantizes the exps of P to int16, and a one-ulp difference between tiers (a fused
// multiply-add natively, none in wasm) would move a probability to the neighbouring level now and then, which
// the WASM-equals-native bound notices. So each tier does the same float32 operations, each rounded (no fused
// multiply-add):
//
//	x = max(x − m, −87.33654)          (exp's smallest normal; −Inf scores give ≈1.2e-38, not 0)
//	t = x·log2e + 1.5·2²³, n = t − 1.5·2²³   (n = x·log2e rounded to even)
//	r = x + n·(−ln2Hi), r = r + n·(−ln2Lo)
//	p = Cephes' degree-5 polynomial in r (Horner, mul then add), e = p·r² + (r + 1)
//	e = e·2ⁿ                           (the exponent bits built from t's low bits)
//
// A NaN in x gives NaN. The sums may differ between tiers in their last bits (lanes are added in other orders).
var expSubSumExact = expSubSumExactGeneric

// expExactLo is where expSubSumExact clamps x − m.
const expExactLo = -87.33654

// expMagic is 1.5·2²³: adding it rounds a float32 of magnitude < 2²² to an integer, kept in the low mantissa bits.
const expMagic = 12582912

var _ = func() bool {
	tierHooks = append(tierHooks, func(tier string) {
		expSubSumExact = expSubSumExactGeneric
		if f := expExactTiers[tier]; f != nil {
			expSubSumExact = f
		}
	})
	return true
}()

// expExactTiers holds the vector versions of expSubSumExact by kernel tier (the architecture files fill it).
var expExactTiers = map[string]func(x []float32, m float32) float64{}

// expOneExact is one value of expSubSumExact: exp(x) for x = s − m ≤ 0 (each operation rounded to float32).
func expOneExact(x float32) float32 {
	if x < expExactLo {
		x = expExactLo
	}
	t := float32(float32(x*log2e) + expMagic)
	n := float32(t - expMagic)
	r := float32(x + float32(n*-ln2Hi))
	r = float32(r + float32(n*-ln2Lo))
	p := float32(float32(expP0*r) + expP1)
	p = float32(float32(p*r) + expP2)
	p = float32(float32(p*r) + expP3)
	p = float32(float32(p*r) + expP4)
	p = float32(float32(p*r) + expP5)
	e := float32(float32(p*float32(r*r)) + float32(r+1))
	return e * math.Float32frombits(math.Float32bits(t)<<23+127<<23)
}

func expSubSumExactGeneric(x []float32, m float32) float64 {
	var sum float64
	for i, v := range x {
		e := expOneExact(v - m)
		x[i] = e
		sum += float64(e)
	}
	return sum
}
