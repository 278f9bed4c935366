//go:build goexperiment.simd && wasm

package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
	"time"
	"unsafe"
)

// sameBits reports the first index where got and want differ in their bits (NaNs of any payload match), or -1.
func sameBits(got, want []float32) int {
	for i := range want {
		g, w := got[i], want[i]
		if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
			return i
		}
	}
	return -1
}

// epiTestValues is a tile's worth of inputs for the epilogue and exp tests: random values of several scales and
// the edge cases (±0, ±Inf, NaN, the exp clamps, values whose exp is subnormal or overflows).
func epiTestValues(r *rand.Rand, n int) []float32 {
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), 88.7, 89.5, -87.4, -103.9, -104.5, 1e-30, -1e-30, 6, -6, 0.5, -0.5}
	x := make([]float32, n)
	for i := range x {
		switch i % 5 {
		case 0:
			x[i] = special[r.Intn(len(special))]
		case 1:
			x[i] = float32(r.NormFloat64() * 30)
		default:
			x[i] = float32(r.NormFloat64() * 2)
		}
	}
	return x
}

// TestStoreTileWasmAsm checks the assembly epilogue (storeTileWasm) against its archsimd twin (storeTileWasmGo)
// bit for bit: every epilogue of TestGemm's set and the GELU/QuickGELU ones with everything on, every row count
// 1–32, a row stride past the tile, a residual aliasing C, on values with the edge cases.
func TestStoreTileWasmAsm(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	const ldc, j0 = 21, 8
	for rows := 1; rows <= tileMax/8; rows++ {
		i0 := r.Intn(3)
		m := i0 + rows
		eps := epilogues(r, m, j0+8+ldc)
		bias := epiTestValues(r, j0+8)
		res := epiTestValues(r, m*(ldc+3))
		eps["gelu-all"] = &Epilogue{Alpha: 1.5, Bias: bias, Act: ActGELU, PostScale: 0.75, Residual: res, LdRes: ldc + 3, Accumulate: true}
		eps["quick-all"] = &Epilogue{Alpha: 0.5, Bias: bias, Act: ActQuickGELU, PostScale: 2, Residual: res, LdRes: ldc + 3, Accumulate: true}
		eps["quick-alias"] = &Epilogue{Bias: bias, Act: ActQuickGELU, Residual: []float32{}, LdRes: -1, Accumulate: true}
		for name, ep := range eps {
			var tile [tileMax]float32
			copy(tile[:], epiTestValues(r, 8*rows))
			c0 := epiTestValues(r, m*ldc+j0+8)
			got := append([]float32(nil), c0...)
			want := append([]float32(nil), c0...)
			var eg, ew *Epilogue
			if ep != nil {
				e1, e2 := *ep, *ep
				if ep.LdRes == -1 {
					e1.Residual, e1.LdRes = got, ldc
					e2.Residual, e2.LdRes = want, ldc
				} else if ep.Residual != nil && ep.LdRes != ldc+3 {
					e1.Residual, e1.LdRes = res, ldc+3
					e2.Residual, e2.LdRes = res, ldc+3
				}
				eg, ew = &e1, &e2
			}
			tw := tile
			storeTileWasm(&tile, 8, rows, 8, got, ldc, i0, j0, eg)
			storeTileWasmGo(&tw, 8, rows, 8, want, ldc, i0, j0, ew)
			if i := sameBits(got, want); i >= 0 {
				t.Fatalf("rows %d %s: c[%d] = %g (%#x), want %g (%#x)", rows, name, i, got[i],
					math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
		}
	}
}

// TestStoreTileWasmSweep checks GELU and QuickGELU in the assembly epilogue against storeTileWasmGo bit for bit
// on a sweep of float32 values of both signs: every 997th bit pattern from 0 (subnormals included) to +Inf,
// so every exponent and the region where EXPNEG's clamp differs from exp4's (|x| > 13.2).
func TestStoreTileWasmSweep(t *testing.T) {
	var xs []float32
	for b := uint32(0); b <= 0x7f800000; b += 997 {
		xs = append(xs, math.Float32frombits(b), -math.Float32frombits(b))
	}
	const rows = tileMax / 8
	for _, act := range []Activation{ActGELU, ActQuickGELU} {
		ep := &Epilogue{Act: act}
		got := make([]float32, 8*rows)
		want := make([]float32, 8*rows)
		for i := 0; i < len(xs); i += 8 * rows {
			var tile, tw [tileMax]float32
			n := copy(tile[:], xs[i:])
			tw = tile
			storeTileWasm(&tile, 8, rows, 8, got, 8, 0, 0, ep)
			storeTileWasmGo(&tw, 8, rows, 8, want, 8, 0, 0, ep)
			if j := sameBits(got[:n], want[:n]); j >= 0 {
				t.Fatalf("act %v: f(%g) = %g (%#x), want %g (%#x)", act, xs[i+j], got[j], math.Float32bits(got[j]),
					want[j], math.Float32bits(want[j]))
			}
		}
	}
}

// TestAttnExpWasmAsm checks the assembly exp pass (attnExpWasm) bit for bit against its definition: each value
// expOneExact(x − m) (the exact exp of exp_exact.go, which wasm's float code computes with the same rounded
// operations, having no FMA), the sum four float32 lane sums added in float64 as hsum64 does; on every length up
// to 64 and a long row, with −Inf padding and the edge cases. The floats past n must not change.
func TestAttnExpWasmAsm(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for _, n := range append([]int{1024, 4 * 197}, func() (s []int) {
		for n := 4; n <= 64; n += 4 {
			s = append(s, n)
		}
		return s
	}()...) {
		for _, m := range []float32{0, 3.5, -2, 40} {
			x := epiTestValues(r, n+4)
			for i := range x {
				if x[i] > m {
					x[i] = m - x[i]/3
				}
			}
			x[r.Intn(n)] = float32(math.Inf(-1))
			got := append([]float32(nil), x...)
			want := append([]float32(nil), x...)
			sg := attnExpWasm(unsafe.Pointer(&got[0]), n, m)
			sw := attnExpWasmRef(want, n, m)
			if i := sameBits(got, want); i >= 0 {
				t.Fatalf("n %d m %g: p[%d] = %g, want %g", n, m, i, got[i], want[i])
			}
			if sg != sw && !(sg != sg && sw != sw) {
				t.Fatalf("n %d m %g: sum %g, want %g", n, m, sg, sw)
			}
		}
	}
	if s := attnExpWasm(nil, 0, 0); s != 0 {
		t.Fatalf("n 0: sum %g, want 0", s)
	}
}

// attnExpWasmRef is attnExpWasm's definition, scalar: x[i] = expOneExact(x[i] − m) for i < n, and the sum of four
// float32 lane sums (lane i mod 4) in hsum64's order.
func attnExpWasmRef(x []float32, n int, m float32) float64 {
	var lanes [4]float32
	for i := range n {
		x[i] = expOneExact(x[i] - m)
		lanes[i%4] += x[i]
	}
	return (float64(lanes[0]) + float64(lanes[1])) + (float64(lanes[2]) + float64(lanes[3]))
}

// BenchmarkStoreTileWasm times the GEMM epilogue on whole strips (32 rows of 8, one storeTile) for each kind of
// epilogue: the archsimd one (go) against the assembly one (asm), back to back. ns/row is per tile row.
func BenchmarkStoreTileWasm(b *testing.B) {
	r := rand.New(rand.NewSource(5))
	const rows, ldc = tileMax / 8, 64
	bias := randSlice(r, ldc)
	res := randSlice(r, rows*ldc)
	for _, e := range []struct {
		name string
		ep   *Epilogue
	}{
		{"copy", nil},
		{"bias", &Epilogue{Bias: bias}},
		{"bias+res", &Epilogue{Bias: bias, Residual: res, LdRes: ldc}},
		{"gelu", &Epilogue{Bias: bias, Act: ActGELU}},
		{"quickgelu", &Epilogue{Bias: bias, Act: ActQuickGELU}},
	} {
		for _, f := range []struct {
			name string
			fn   func(*[tileMax]float32, int, int, int, []float32, int, int, int, *Epilogue)
		}{{"go", storeTileWasmGo}, {"asm", storeTileWasm}} {
			b.Run(fmt.Sprintf("%s/%s", e.name, f.name), func(b *testing.B) {
				var tile [tileMax]float32
				copy(tile[:], randSlice(r, tileMax))
				c := make([]float32, rows*ldc)
				t0 := time.Now()
				for i := 0; i < b.N; i++ {
					f.fn(&tile, 8, rows, 8, c, ldc, 0, 8*(i&7), e.ep)
				}
				b.ReportMetric(float64(time.Since(t0).Nanoseconds())/float64(b.N*rows), "ns/row")
			})
		}
	}
}

// BenchmarkAttnExpWasm times the attention's exp pass on rows of 197 (CLIP) and 1568 (VideoMAE) keys, padded to
// a multiple of 4 and cut in blocks of expBlock as attnRowsWasm does: the scalar reference (go) against the
// assembly (asm).
func BenchmarkAttnExpWasm(b *testing.B) {
	r := rand.New(rand.NewSource(6))
	for _, lk := range []int{200, 1568} {
		for _, f := range []struct {
			name string
			fn   func(unsafe.Pointer, int, float32) float64
		}{{"go", func(p unsafe.Pointer, n int, m float32) float64 {
			return attnExpWasmRef(unsafe.Slice((*float32)(p), n), n, m)
		}}, {"asm", attnExpWasm}} {
			b.Run(fmt.Sprintf("%d/%s", lk, f.name), func(b *testing.B) {
				src := randSlice(r, lk)
				p := make([]float32, lk)
				t0 := time.Now()
				for i := 0; i < b.N; i++ {
					copy(p, src)
					for j := 0; j < lk; j += expBlock {
						f.fn(unsafe.Pointer(&p[j]), min(expBlock, lk-j), 1)
					}
				}
				b.ReportMetric(float64(time.Since(t0).Nanoseconds())/float64(b.N*lk), "ns/value")
			})
		}
	}
}
