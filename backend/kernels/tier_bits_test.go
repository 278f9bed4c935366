package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// TestTierBits checks that the tier in use (TestMain runs every tier this build and CPU can run, natively and
// under wasm) computes what an int8 model needs with the portable tier's bits: the elementwise kernels, the
// canonical sums (Sum, layer norm, softmax), the GEMM epilogue, the int8 GEMM, the integer attention and the
// direct attention of few keys (B-CAST's). Values must be equal as float32 (±0 and NaN payloads aside). So an
// int8 model gives the same outputs on every tier, natively and in WASM.
func TestTierBits(t *testing.T) {
	cur := Tier()
	r := rand.New(rand.NewSource(11))
	type bitCase struct {
		name string
		run  func() []float32 // deterministic: the same inputs on every call
	}
	var cases []bitCase
	add := func(name string, run func() []float32) { cases = append(cases, bitCase{name, run}) }

	xs := unaryInputs()
	lengths := []int{1, 3, 4, 5, 8, 13, 15, 16, 17, 31, 33, 127, 128, 129, 192, 197, 300, 768, 1568, 3072, len(xs)}
	for _, f := range []struct {
		name string
		fn   func(dst, src []float32)
	}{{"Exp", Exp}, {"Erf", Erf}, {"Tanh", Tanh}, {"Logistic", Logistic}, {"GELU", GELU}, {"QuickGELU", QuickGELU}} {
		for _, n := range []int{len(xs), 1, 3, 8, 13, 16, 17, 33, 300} {
			add(fmt.Sprintf("%s/%d", f.name, n), func() []float32 {
				dst := make([]float32, n)
				f.fn(dst, xs[:n])
				return dst
			})
		}
	}
	for _, n := range lengths {
		x := randSlice(r, n)
		for i := range x {
			x[i] = x[i]*4 + 3 // an offset mean, as layer norm inputs have
		}
		gamma, beta := randSlice(r, n), randSlice(r, n)
		add(fmt.Sprintf("Sum/%d", n), func() []float32 { return []float32{Sum(x)} })
		add(fmt.Sprintf("meanVar/%d", n), func() []float32 { m, v := vmeanVar(x); return []float32{m, v} })
		add(fmt.Sprintf("LayerNorm/%d", n), func() []float32 {
			var out []float32
			for _, gb := range [][2][]float32{{gamma, beta}, {nil, nil}, {gamma, nil}, {nil, beta}} {
				dst := make([]float32, n)
				LayerNormRows(dst, n, x, n, 1, n, gb[0], gb[1], 1e-6)
				out = append(out, dst...)
			}
			return out
		})
		add(fmt.Sprintf("Softmax/%d", n), func() []float32 {
			row := append([]float32(nil), x...)
			if n > 4 {
				row[n/2] = float32(math.Inf(-1))
			}
			SoftmaxRows(row, 1, n, n)
			return row
		})
	}

	// The GEMM epilogue on each tile width a tier uses (others take the portable path in every tier).
	for _, nr := range []int{8, 16, 32} {
		rows := tileMax / nr
		ldc := nr + 5
		tile := randSlice(r, tileMax)
		bias, res, c0 := randSlice(r, nr), randSlice(r, rows*ldc), randSlice(r, rows*ldc)
		for i := range tile {
			tile[i] *= 3
		}
		for name, ep := range map[string]*Epilogue{
			"none":  nil,
			"bias":  {Bias: bias},
			"gelu":  {Bias: bias, Act: ActGELU},
			"quick": {Alpha: 0.7, Act: ActQuickGELU, PostScale: 0.5},
			"all":   {Alpha: 1.5, Bias: bias, Act: ActGELU, PostScale: 0.25, Residual: res, LdRes: ldc, Accumulate: true},
			"res":   {Alpha: 0.125, Bias: bias, Residual: res, LdRes: ldc},
		} {
			add(fmt.Sprintf("storeTile/nr%d/%s", nr, name), func() []float32 {
				var tl [tileMax]float32
				copy(tl[:], tile)
				c := append([]float32(nil), c0...)
				storeTile(&tl, nr, rows, nr, c, ldc, 0, 0, ep)
				return c
			})
		}
	}

	// The int8 GEMM with a GELU epilogue and a residual, on awkward shapes.
	for _, s := range [][3]int{{1, 3, 5}, {7, 33, 17}, {37, 192, 70}, {100, 768, 40}, {9, 3072, 33}} {
		m, k, n := s[0], s[1], s[2]
		a := randSlice(r, m*k)
		w := make([]int8, n*k)
		for i := range w {
			w[i] = int8(r.Intn(255) - 127)
		}
		scale, bias, res := randSlice(r, n), randSlice(r, n), randSlice(r, m*n)
		for i := range scale {
			scale[i] = float32(math.Abs(float64(scale[i]))) / 64
		}
		add(fmt.Sprintf("GemmInt8/%dx%dx%d", m, k, n), func() []float32 {
			c := make([]float32, m*n)
			Gemm(m, a, k, PackBInt8(w, scale, k, n), c, n, &Epilogue{Bias: bias, Act: ActGELU, Residual: res, LdRes: n})
			return c
		})
	}

	// Attentions of an int8 model: the integer path (≥ Int8AttnMinLk keys) and the direct one (B-CAST's few keys).
	for _, s := range [][4]int{{3, 40, 16, 2}, {5, 197, 64, 1}, {2, 2, 8, 4}, {8, 8, 32, 2}, {16, 16, 64, 2}, {9, 8, 16, 3}, {7, 20, 64, 2}, {6, 8, 12, 2}, {5, 24, 16, 1}, {4, 31, 36, 2}} {
		lq, lk, hd, heads := s[0], s[1], s[2], s[3]
		q, k, v := randSlice(r, lq*heads*hd), randSlice(r, lk*heads*hd), randSlice(r, lk*heads*hd)
		for i := range q {
			q[i] *= 3
		}
		add(fmt.Sprintf("Attention/int8/lq%d/lk%d/hd%d", lq, lk, hd), func() []float32 {
			out := make([]float32, lq*heads*hd)
			a := &Attention{Batch: 1, Heads: heads, Lq: lq, Lk: lk, HeadDim: hd, Scale: 1 / float32(math.Sqrt(float64(hd))),
				Q: Strided{Data: q, RowStride: heads * hd, HeadStride: hd}, K: Strided{Data: k, RowStride: heads * hd, HeadStride: hd},
				V: Strided{Data: v, RowStride: heads * hd, HeadStride: hd}, Out: Strided{Data: out, RowStride: heads * hd, HeadStride: hd},
				Int8: true}
			a.Run()
			return out
		})
	}

	// Each case in the portable tier, then in the tier under test.
	want := make([][]float32, len(cases))
	if err := setTier("portable"); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		want[i] = c.run()
	}
	if err := setTier(cur); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		got := c.run()
		if j := sameValues(got, want[i]); j >= 0 {
			t.Errorf("tier %s, %s: [%d] = %g (%#x), portable %g (%#x)", cur, c.name, j, got[j], math.Float32bits(got[j]),
				want[i][j], math.Float32bits(want[i][j]))
		}
	}
}

// sameValues returns the first index where a and b hold different float32 values (±0 equal, any NaN equal to any
// NaN), or -1.
func sameValues(a, b []float32) int {
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if x != y && !(x != x && y != y) {
			return i
		}
	}
	return -1
}

// TestInt8KernelsBits checks every int8 GEMM kernel this build and CPU have (also those the tier under test does
// not choose, e.g. AVX2's beside AVX-VNNI's) against the portable one, bit for bit, with the GEMM's epilogue.
func TestInt8KernelsBits(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	for _, s := range [][3]int{{1, 3, 5}, {7, 33, 17}, {13, 192, 70}, {45, 768, 40}} {
		m, k, n := s[0], s[1], s[2]
		a := randSlice(r, m*k)
		w := make([]int8, n*k)
		for i := range w {
			w[i] = int8(r.Intn(255) - 127)
		}
		scale, bias := randSlice(r, n), randSlice(r, n)
		run := func(kt int8Kernel) []float32 {
			b := packBInt8For(w, scale, k, n, kt.nr)
			b.i8k = &kt
			c := make([]float32, m*n)
			gemmInt8With(kt, m, a, k, b, c, n, &Epilogue{Bias: bias, Act: ActQuickGELU}, false)
			return c
		}
		want := run(int8Portable)
		for _, kt := range int8Tiers {
			if got := run(kt); sameValues(got, want) >= 0 {
				j := sameValues(got, want)
				t.Errorf("int8 kernel %s, %dx%dx%d: [%d] = %g, portable %g", kt.name, m, k, n, j, got[j], want[j])
			}
		}
	}
}
