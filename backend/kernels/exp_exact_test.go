package kernels

import (
	"math"
	"math/rand"
	"testing"
)

// The tier's expSubSumExact gives the scalar version's bits (the test binary runs once per tier), on lengths
// with tails, scores far below the maximum, −Inf padding and NaN; the values are exp to float32 accuracy.
func TestExpSubSumExactBits(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, n := range []int{1, 3, 4, 7, 8, 15, 16, 17, 31, 33, 200, 1568, 2051} {
		x := make([]float32, n)
		for i := range x {
			switch r.Intn(20) {
			case 0:
				x[i] = float32(math.Inf(-1))
			case 1:
				x[i] = -200 * r.Float32()
			default:
				x[i] = 30 * (r.Float32() - 0.5)
			}
		}
		m := float32(15)
		want, got := append([]float32(nil), x...), append([]float32(nil), x...)
		ws, gs := expSubSumExactGeneric(want, m), expSubSumExact(got, m)
		for i := range x {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("tier %s n %d: exp(%g − %g) = %g (%08x), scalar %g (%08x)", Tier(), n, x[i], m, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
			e := math.Exp(max(float64(x[i]-m), expExactLo))
			if d := math.Abs(float64(want[i]) - e); d > 3e-7*e {
				t.Fatalf("exp(%g) = %g, want %g", x[i]-m, want[i], e)
			}
		}
		if math.Abs(gs-ws) > 1e-6*ws {
			t.Fatalf("tier %s n %d: sum %g, scalar %g", Tier(), n, gs, ws)
		}
		x[n/2] = float32(math.NaN())
		expSubSumExact(x, m)
		if v := x[n/2]; v == v {
			t.Fatalf("tier %s: exp(NaN) = %g", Tier(), v)
		}
	}
}
