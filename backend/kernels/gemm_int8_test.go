package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// refGemmInt8 is the naive int8 GEMM: A quantized per row by quantizeRows, exact integer sums, then
// acc·rowScale·colScale and the epilogue.
func refGemmInt8(m, k, n int, a []float32, lda int, w []int8, sc []float32, c []float32, ldc int, ep *Epilogue) {
	k2 := (k + 1) &^ 1
	q := make([]int16, max(1, m)*k2)
	rs := make([]float32, max(1, m))
	quantizeRows(q, rs, a, lda, m, k, k2, Int8QMax(k2))
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s int64
			for kk := 0; kk < k; kk++ {
				s += int64(q[i*k2+kk]) * int64(w[j*k+kk])
			}
			c[i*ldc+j] = refApply(ep, float32(s)*rs[i]*sc[j], i, j, c[i*ldc+j])
		}
	}
}

var int8Shapes = []gemmCase{
	{m: 1, k: 1, n: 1}, {m: 3, k: 7, n: 1}, {m: 5, k: 1, n: 9}, {m: 7, k: 31, n: 13}, {m: 2, k: 2, n: 33},
	{m: 13, k: 29, n: 37, lda: 40, ldc: 50}, {m: 33, k: 67, n: 71}, {m: 25, k: 3072, n: 19},
	{m: 130, k: 257, n: 70}, {m: 301, k: 129, n: 97, lda: 130, ldc: 99}, {m: 9, k: 768, n: 33}, {m: 64, k: 64, n: 64},
}

// Every int8 tier this build and CPU run, against the naive integer reference, on awkward shapes, with every
// epilogue, serial and on 1 and 3 threads.
func TestGemmInt8Tiers(t *testing.T) {
	if len(int8Tiers) == 0 || int8Tiers[len(int8Tiers)-1].name != "portable" {
		t.Fatalf("int8Tiers must end with the portable tier: %v", int8Tiers)
	}
	for _, kt := range int8Tiers {
		t.Logf("tier %s: %d×%d tiles", kt.name, kt.mr, kt.nr)
		for _, th := range []int{1, 3} {
			old := SetThreads(th)
			r := rand.New(rand.NewSource(int64(th)))
			for _, tc := range int8Shapes {
				m, k, n := tc.m, tc.k, tc.n
				lda, ldc := max(tc.lda, k), max(tc.ldc, n)
				a := randSlice(r, (m-1)*lda+k)
				for i := range a {
					if r.Intn(50) == 0 {
						a[i] *= 30 // outliers
					}
				}
				w := make([]int8, n*k)
				for i := range w {
					w[i] = int8(r.Intn(256) - 128)
				}
				sc := make([]float32, n)
				for j := range sc {
					sc[j] = float32(0.001 + 0.02*r.Float64())
				}
				pb := packBInt8For(w, sc, k, n, kt.nr)
				for name, ep := range epilogues(r, m, n) {
					if ep != nil && ep.Residual != nil && ep.LdRes != -1 && n+2 != ep.LdRes {
						continue
					}
					c0 := randSlice(r, m*ldc)
					want := append([]float32(nil), c0...)
					got := append([]float32(nil), c0...)
					var epw, epg *Epilogue
					if ep != nil {
						e1, e2 := *ep, *ep
						if ep.LdRes == -1 {
							e1.Residual, e1.LdRes = want, ldc
							e2.Residual, e2.LdRes = got, ldc
						}
						epw, epg = &e1, &e2
					}
					refGemmInt8(m, k, n, a, lda, w, sc, want, ldc, epw)
					gemmInt8With(kt, m, a, lda, pb, got, ldc, epg, th > 1)
					scale := 1e-5 * (maxAbs(want) + 1)
					checkClose(t, fmt.Sprintf("%s threads %d %+v %s", kt.name, th, tc, name), got, want, scale)
				}
			}
			SetThreads(old)
		}
	}
}

// The quantizer: |q·s − a| ≤ s/2 (round to nearest), |q| ≤ qmax, reached by the largest |a|, zero padding,
// zero rows, and NaN scales for non-finite rows.
func TestQuantizeRows(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	k, k2, rows := 301, 302, 5
	a := randSlice(r, rows*k)
	clear(a[2*k : 3*k])
	a[3*k+7] = float32(math.Inf(1))
	a[4*k+1] = -100
	q := make([]int16, rows*k2)
	for i := range q {
		q[i] = 99
	}
	rs := make([]float32, rows)
	qmax := Int8QMax(k2)
	if qmax != 32767 || Int8QMax(3072) != 5461 || Int8QMax(768) != 21845 {
		t.Fatalf("Int8QMax: %v %v %v", qmax, Int8QMax(3072), Int8QMax(768))
	}
	quantizeRows(q, rs, a, k, rows, k, k2, qmax)
	for i := 0; i < rows; i++ {
		if q[i*k2+k] != 0 {
			t.Fatalf("row %d: padding %d", i, q[i*k2+k])
		}
		switch i {
		case 2:
			if rs[i] != 0 {
				t.Fatalf("zero row: scale %g", rs[i])
			}
			continue
		case 3:
			if !math.IsNaN(float64(rs[i])) {
				t.Fatalf("row with Inf: scale %g, want NaN", rs[i])
			}
			continue
		}
		var top int16
		for kk := 0; kk < k; kk++ {
			v := q[i*k2+kk]
			top = max(top, v, -v)
			if d := math.Abs(float64(v)*float64(rs[i]) - float64(a[i*k+kk])); d > 0.501*float64(rs[i]) {
				t.Fatalf("row %d col %d: q %d·%g vs %g", i, kk, v, rs[i], a[i*k+kk])
			}
		}
		if float32(top) != qmax {
			t.Fatalf("row %d: max |q| %d, want %g", i, top, qmax)
		}
	}
}

// An int8 PackedB holds the int8 weight (in panels, K rounded up to even, N to the panel width) and its
// scales: no float32 copy.
func TestPackBInt8Bytes(t *testing.T) {
	for _, s := range []struct{ k, n int }{{768, 3072}, {3072, 768}, {31, 13}} {
		w := make([]int8, s.k*s.n)
		sc := make([]float32, s.n)
		p := PackBInt8(w, sc, s.k, s.n)
		nr := curInt8().nr
		np := (s.n + nr - 1) / nr
		want := np*nr*((s.k+1)&^1) + 4*np*nr
		if p.Bytes() != want || p.f32 != nil {
			t.Fatalf("%dx%d: Bytes() = %d, want %d (int8 panels + scales), f32 %d", s.k, s.n, p.Bytes(), want, len(p.f32))
		}
		if s.n%nr == 0 && s.k%2 == 0 && p.Bytes() != s.k*s.n+4*s.n {
			t.Fatalf("%dx%d: Bytes() = %d, want k·n + 4n = %d", s.k, s.n, p.Bytes(), s.k*s.n+4*s.n)
		}
	}
}

// The int8 GEMM follows the kernel tier (CAST_KERNELS included): the portable tier runs the portable int8
// kernel, and the one in use is the one int8ForTier gives for the tier installed.
func TestInt8FollowsTier(t *testing.T) {
	if got := int8ForTier("portable").name; got != "portable" {
		t.Fatalf("portable kernel tier: int8 tier %q", got)
	}
	if got, want := Int8Kernels(), int8ForTier(Tier()).name; got != want {
		t.Fatalf("kernel tier %s runs the int8 tier %q, want %q", Tier(), got, want)
	}
}

// The tier's row quantizer passes (vectorised where the build has them) equal the portable ones, ties
// (x.5, rounded half to even) and NaN included, on lengths around the vector widths.
func TestQuantizeRowPasses(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	for _, n := range []int{1, 7, 8, 15, 16, 17, 31, 33, 64, 100, 768} {
		a := randSlice(r, n)
		for i := range a {
			if r.Intn(4) == 0 {
				a[i] = float32(r.Intn(200)-100) + 0.5 // a tie once scaled by 1
			}
		}
		if got, want := maxAbsRow(a), maxAbsGeneric(a); got != want {
			t.Fatalf("n %d: maxAbsRow %g, maxAbsGeneric %g", n, got, want)
		}
		for _, inv := range []float32{1, 37.25} {
			got, want := make([]int16, n), make([]int16, n)
			quantizeRow(got, a, inv)
			quantizeRowGeneric(want, a, inv)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("n %d inv %g: q[%d] = %d, want %d (a %g)", n, inv, i, got[i], want[i], a[i])
				}
			}
		}
		a[r.Intn(n)] = float32(math.NaN())
		if mx := maxAbsRow(a); mx == mx {
			t.Fatalf("n %d: maxAbsRow of a row with NaN is %g", n, mx)
		}
	}
}
