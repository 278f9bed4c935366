package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"sync"
	"testing"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func maxAbs(s []float32) float64 {
	var m float64
	for _, v := range s {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

type gemmCase struct {
	m, k, n    int
	lda, ldc   int // 0: tight
	transposed bool
	int8       bool
}

func checkClose(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	for i := range want {
		if got[i] == want[i] || (got[i] != got[i] && want[i] != want[i]) {
			continue
		}
		if d := math.Abs(float64(got[i]) - float64(want[i])); !(d <= tol) {
			t.Fatalf("%s: element %d: got %g want %g (|diff| %g > tol %g)", name, i, got[i], want[i], d, tol)
		}
	}
}

func runGemmCase(t *testing.T, r *rand.Rand, tc gemmCase, ep *Epilogue, epName string) {
	t.Helper()
	m, k, n := tc.m, tc.k, tc.n
	lda, ldc := max(tc.lda, k), max(tc.ldc, n)
	a := randSlice(r, max(0, (m-1)*lda+k))
	if m == 0 {
		a = nil
	}
	// B as k×n (reference layout).
	bkn := make([]float32, k*n)
	var pb *PackedB
	if tc.int8 {
		w := make([]int8, n*k)
		sc := make([]float32, n)
		for j := 0; j < n; j++ {
			sc[j] = float32(0.01 + 0.02*r.Float64())
			for kk := 0; kk < k; kk++ {
				w[j*k+kk] = int8(r.Intn(255) - 127)
				bkn[kk*n+j] = float32(w[j*k+kk]) * sc[j]
			}
		}
		pb = PackBInt8(w, sc, k, n)
	} else {
		bkn = randSlice(r, k*n)
		if tc.transposed {
			ldb := k + 3
			bt := make([]float32, n*ldb)
			for j := 0; j < n; j++ {
				for kk := 0; kk < k; kk++ {
					bt[j*ldb+kk] = bkn[kk*n+j]
				}
			}
			pb = PackB(nil, bt, ldb, k, n, true)
		} else {
			ldb := n + 5
			bb := make([]float32, k*ldb)
			for kk := 0; kk < k; kk++ {
				copy(bb[kk*ldb:], bkn[kk*n:kk*n+n])
			}
			pb = PackB(nil, bb, ldb, k, n, false)
		}
	}
	c0 := randSlice(r, max(0, m*ldc))
	want := append([]float32(nil), c0...)
	got := append([]float32(nil), c0...)
	var epw, epg *Epilogue
	if ep != nil {
		e1, e2 := *ep, *ep
		if ep.Residual != nil {
			if ep.LdRes == -1 { // alias C
				e1.Residual, e1.LdRes = want, ldc
				e2.Residual, e2.LdRes = got, ldc
			}
		}
		epw, epg = &e1, &e2
	}
	refGemm(m, k, n, a, lda, bkn, want, ldc, epw)
	Gemm(m, a, lda, pb, got, ldc, epg)
	tol := 2e-5 * math.Sqrt(float64(k)+1) * (maxAbs(a) + 1) * (maxAbs(bkn) + 1) * 4
	checkClose(t, fmt.Sprintf("%+v %s", tc, epName), got, want, tol)
}

func epilogues(r *rand.Rand, m, n int) map[string]*Epilogue {
	bias := randSlice(r, n)
	res := randSlice(r, max(1, m*(n+2)))
	return map[string]*Epilogue{
		"nil":        nil,
		"zero":       {},
		"alpha":      {Alpha: 0.125},
		"bias":       {Bias: bias},
		"gelu":       {Bias: bias, Act: ActGELU},
		"quickgelu":  {Alpha: 0.5, Bias: bias, Act: ActQuickGELU, PostScale: 3},
		"residual":   {Bias: bias, Residual: res, LdRes: n + 2},
		"resAliasC":  {Bias: bias, PostScale: 0.5, Residual: []float32{}, LdRes: -1},
		"accumulate": {Act: ActGELU, Accumulate: true},
		"everything": {Alpha: 2, Bias: bias, Act: ActGELU, PostScale: 0.25, Residual: res, LdRes: n + 2, Accumulate: true},
	}
}

func TestGemm(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	shapes := []gemmCase{
		{m: 1, k: 1, n: 1}, {m: 7, k: 31, n: 13}, {m: 0, k: 5, n: 5}, {m: 5, k: 0, n: 3},
		{m: 3, k: 7, n: 1}, {m: 1, k: 64, n: 17}, {m: 13, k: 29, n: 37, lda: 40, ldc: 50},
		{m: 33, k: 67, n: 71, transposed: true}, {m: 6, k: 16, n: 16}, {m: 25, k: 3072, n: 19},
		{m: 197, k: 32, n: 32, transposed: true}, {m: 50, k: 40, n: 33, lda: 41, ldc: 35, transposed: true},
		{m: 7, k: 31, n: 13, int8: true}, {m: 29, k: 200, n: 45, int8: true, lda: 210, ldc: 47},
		{m: 130, k: 257, n: 70}, {m: 300, k: 300, n: 100, transposed: true}, {m: 301, k: 129, n: 97, int8: true},
	}
	for _, tc := range shapes {
		for name, ep := range epilogues(r, tc.m, tc.n) {
			if ep != nil && ep.Residual != nil && ep.LdRes != -1 && tc.n+2 != ep.LdRes {
				continue
			}
			runGemmCase(t, r, tc, ep, name)
		}
	}
}

func TestGemmThreads(t *testing.T) {
	for _, th := range []int{1, 2, 3, 7} {
		old := SetThreads(th)
		r := rand.New(rand.NewSource(int64(th)))
		for _, tc := range []gemmCase{{m: 200, k: 300, n: 200}, {m: 97, k: 500, n: 300, int8: true}, {m: 500, k: 64, n: 100, transposed: true}} {
			runGemmCase(t, r, tc, &Epilogue{Bias: randSlice(r, tc.n), Act: ActGELU}, "gelu")
		}
		SetThreads(old)
	}
}

// Gemm called concurrently and from inside ParallelFor must neither deadlock nor race.
func TestNested(t *testing.T) {
	old := SetThreads(4)
	defer SetThreads(old)
	r := rand.New(rand.NewSource(3))
	m, k, n := 150, 200, 170
	a, bkn := randSlice(r, m*k), randSlice(r, k*n)
	pb := PackB(nil, bkn, n, k, n, false)
	want := make([]float32, m*n)
	refGemm(m, k, n, a, k, bkn, want, n, nil)
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ParallelFor(8, 1, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					c := make([]float32, m*n)
					Gemm(m, a, k, pb, c, n, nil)
					for j := range c {
						if math.Abs(float64(c[j]-want[j])) > 1e-3 {
							panic("nested gemm mismatch")
						}
					}
				}
			})
		}()
	}
	wg.Wait()
	var mu sync.Mutex
	seen := make([]int, 1000)
	ParallelFor(1000, 7, func(lo, hi int) {
		mu.Lock()
		for i := lo; i < hi; i++ {
			seen[i]++
		}
		mu.Unlock()
	})
	for i, v := range seen {
		if v != 1 {
			t.Fatalf("ParallelFor covered %d %d times", i, v)
		}
	}
}

func unaryInputs() []float32 {
	xs := []float32{0, -0, 1, -1, 1e-8, -1e-8, 0.5, -0.5, 0.624, 0.626, 2, -2, 5, -5, 10, -10, 20, -20, 80, -80,
		87, -87, 88.5, 88.8, -88, -100, -103, -105, -200, 200, 1e30, -1e30, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	for x := float32(-12); x <= 12; x += 0.01 {
		xs = append(xs, x)
	}
	r := rand.New(rand.NewSource(4))
	for i := 0; i < 3000; i++ {
		xs = append(xs, float32(r.NormFloat64()*30))
	}
	return xs
}

func TestUnary(t *testing.T) {
	xs := unaryInputs()
	type fn struct {
		name   string
		f      func(dst, src []float32)
		ref    func(float64) float64
		relTol float64
		absTol float64
	}
	fns := []fn{
		{"Exp", Exp, math.Exp, 3e-7, 0},
		{"Erf", Erf, math.Erf, 0, 1e-6},
		{"Tanh", Tanh, math.Tanh, 2e-6, 1e-7},
		{"Logistic", Logistic, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }, 2e-6, 0},
		{"GELU", GELU, func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }, 2e-6, 1e-6},
		{"QuickGELU", QuickGELU, func(x float64) float64 { return x / (1 + math.Exp(-1.702*x)) }, 1e-5, 1e-30},
	}
	for _, f := range fns {
		for _, n := range []int{len(xs), 1, 3, 8, 13, 16, 17, 33, 300} {
			dst := make([]float32, n)
			f.f(dst, xs[:n])
			for i := 0; i < n; i++ {
				x := float64(xs[i])
				want := float64(float32(f.ref(x)))
				got := float64(dst[i])
				if math.IsInf(want, 0) || math.IsNaN(want) {
					if got != want && !(math.IsNaN(want) && math.IsNaN(got)) {
						t.Fatalf("%s(%g) = %g, want %g", f.name, x, got, want)
					}
					continue
				}
				if math.Abs(want) < 1e-37 && math.Abs(got) < 1e-37 {
					continue
				}
				if d := math.Abs(got - want); d > f.absTol+f.relTol*math.Abs(want) {
					t.Fatalf("%s(%g) = %g, want %g (diff %g)", f.name, x, got, want, d)
				}
			}
		}
		// in place
		d := append([]float32(nil), xs[:100]...)
		f.f(d, d)
		e := make([]float32, 100)
		f.f(e, xs[:100])
		checkClose(t, f.name+" in place", d, e, 0)
	}
}

func TestBinary(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 100} {
		a, b := randSlice(r, n), randSlice(r, n)
		dst := make([]float32, n)
		ops := []struct {
			f   func(dst, a, b []float32)
			ref func(x, y float32) float32
		}{
			{Add, func(x, y float32) float32 { return x + y }},
			{Sub, func(x, y float32) float32 { return x - y }},
			{Mul, func(x, y float32) float32 { return x * y }},
			{Div, func(x, y float32) float32 { return x / y }},
		}
		for oi, op := range ops {
			op.f(dst, a, b)
			for i := range dst {
				if w := op.ref(a[i], b[i]); dst[i] != w {
					t.Fatalf("op %d n %d [%d]: %g want %g", oi, n, i, dst[i], w)
				}
			}
		}
		AddScalar(dst, a, 1.5)
		for i := range dst {
			if dst[i] != a[i]+1.5 {
				t.Fatal("AddScalar")
			}
		}
		MulScalar(dst, a, 1.5)
		for i := range dst {
			if dst[i] != a[i]*1.5 {
				t.Fatal("MulScalar")
			}
		}
		var s float64
		for _, v := range a {
			s += float64(v)
		}
		if got := Sum(a); math.Abs(float64(got)-s) > 1e-5*float64(n+1) {
			t.Fatalf("Sum %g want %g", got, s)
		}
	}
}

func TestSoftmaxLayerNorm(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	for _, n := range []int{1, 2, 7, 8, 9, 15, 16, 17, 33, 197, 768, 1568} {
		rows, ld := 3, n+3
		x := randSlice(r, rows*ld)
		for i := range x {
			x[i] *= 5
		}
		if n > 3 {
			x[2] = float32(math.Inf(-1))
		}
		orig := append([]float32(nil), x...)
		SoftmaxRows(x, rows, n, ld)
		for rr := 0; rr < rows; rr++ {
			row := make([]float64, n)
			for j := range row {
				row[j] = float64(orig[rr*ld+j])
			}
			refSoftmax(row)
			for j := range row {
				if d := math.Abs(float64(x[rr*ld+j]) - row[j]); d > 1e-6*row[j]+1e-9 {
					t.Fatalf("softmax n=%d [%d,%d]: %g want %g", n, rr, j, x[rr*ld+j], row[j])
				}
			}
			for j := n; j < ld; j++ {
				if x[rr*ld+j] != orig[rr*ld+j] {
					t.Fatal("softmax wrote past n")
				}
			}
		}
		// layer norm
		x = randSlice(r, rows*ld)
		for i := range x {
			x[i] = x[i]*3 + 10
		}
		gamma, beta := randSlice(r, n), randSlice(r, n)
		for _, gb := range [][2][]float32{{gamma, beta}, {nil, nil}, {gamma, nil}, {nil, beta}} {
			for _, inPlace := range []bool{false, true} {
				src := append([]float32(nil), x...)
				dst := make([]float32, rows*(n+1))
				ldd := n + 1
				if inPlace {
					dst, ldd = src, ld
				}
				LayerNormRows(dst, ldd, src, ld, rows, n, gb[0], gb[1], 1e-5)
				for rr := 0; rr < rows; rr++ {
					var mean, v float64
					for j := 0; j < n; j++ {
						mean += float64(x[rr*ld+j])
					}
					mean /= float64(n)
					for j := 0; j < n; j++ {
						d := float64(x[rr*ld+j]) - mean
						v += d * d
					}
					v /= float64(n)
					inv := 1 / math.Sqrt(v+1e-5)
					for j := 0; j < n; j++ {
						want := (float64(x[rr*ld+j]) - mean) * inv
						if gb[0] != nil {
							want *= float64(gb[0][j])
						}
						if gb[1] != nil {
							want += float64(gb[1][j])
						}
						got := float64(dst[rr*ldd+j])
						if d := math.Abs(got - want); d > 2e-6*(math.Abs(want)+1)*math.Max(1, math.Abs(mean)/math.Sqrt(v+1e-5)) {
							t.Fatalf("layernorm n=%d [%d,%d]: %g want %g", n, rr, j, got, want)
						}
					}
				}
			}
		}
	}
}

func TestAttention(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	type ac struct{ b, h, lq, lk, hd int }
	for _, th := range []int{1, 2} {
		old := SetThreads(th)
		for _, c := range []ac{{1, 1, 1, 1, 1}, {2, 3, 7, 7, 8}, {2, 2, 13, 5, 16}, {3, 2, 8, 8, 32}, {1, 12, 197, 197, 64}, {1, 2, 5, 300, 12}, {2, 1, 100, 40, 9}, {196, 4, 2, 2, 4}, {2, 4, 197, 197, 8}, {1, 3, 37, 19, 1}, {2, 2, 9, 300, 16}, {3, 2, 17, 17, 3}, {1, 2, 5, 1, 5}, {5, 3, 8, 8, 32}, {2, 2, 7, 16, 64}, {2, 2, 9, 13, 24}, {2, 1, 3, 11, 20}, {1, 2, 6, 1500, 4}, {1, 2, 37, 1100, 64}, {2, 3, 45, 1029, 20}, {1, 1, 3, 1025, 33}, {1, 2, 130, 1024, 64}} {
			// fused qkv [B, L, 3, H, hd] for q, k (L = max) and separate v, out [B, H, L, hd] (head-major).
			L := max(c.lq, c.lk)
			qkv := randSlice(r, c.b*L*3*c.h*c.hd)
			v := randSlice(r, c.b*c.h*c.lk*c.hd+5)
			out := randSlice(r, c.b*c.h*c.lq*c.hd)
			at := &Attention{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Scale: 1 / float32(math.Sqrt(float64(c.hd))),
				Q:   Strided{qkv, L * 3 * c.h * c.hd, 3 * c.h * c.hd, c.hd},
				K:   Strided{qkv[c.h*c.hd:], L * 3 * c.h * c.hd, 3 * c.h * c.hd, c.hd},
				V:   Strided{v[5:], c.h * c.lk * c.hd, c.hd, c.lk * c.hd},
				Out: Strided{out, c.h * c.lq * c.hd, c.hd, c.lq * c.hd},
			}
			want := refAttention(at)
			at.Run()
			for i := range want {
				if d := math.Abs(float64(out[i]) - want[i]); d > 1e-5*(1+math.Abs(want[i])) {
					t.Fatalf("attention %+v threads %d [%d]: %g want %g", c, th, i, out[i], want[i])
				}
			}
		}
		SetThreads(old)
	}
}

// The portable micro-kernels are checked whatever tier the build selected.
func TestGemmPortableKernels(t *testing.T) {
	mr, nr, kern, store, strip := gemmMR, gemmNR, microKernel, storeTile, stripKernel
	defer func() { gemmMR, gemmNR, microKernel, storeTile, stripKernel = mr, nr, kern, store, strip }()
	stripKernel = nil
	for _, c := range []struct {
		mr int
		f  microFn
	}{{2, microGeneric2x4}, {4, microGeneric}} {
		gemmMR, gemmNR, microKernel, storeTile = c.mr, 4, c.f, storeTileGeneric
		r := rand.New(rand.NewSource(9))
		for _, tc := range []gemmCase{{m: 1, k: 1, n: 1}, {m: 7, k: 31, n: 13}, {m: 13, k: 29, n: 37, lda: 40, ldc: 50, transposed: true}, {m: 29, k: 200, n: 45, int8: true}} {
			runGemmCase(t, r, tc, &Epilogue{Bias: randSlice(r, tc.n), Act: ActGELU, Residual: randSlice(r, tc.m*(tc.n+2)), LdRes: tc.n + 2}, "mr"+fmt.Sprint(c.mr))
		}
	}
}

// The flash path (online softmax over key blocks) against the reference, with small blocks so that many
// query and key blocks (and partial ones) occur; -Inf-free random scores and one large-magnitude case.
func TestAttentionFlash(t *testing.T) {
	defer func(on bool, minLk, br, bk int) { flashOn, flashMinLk, flashBr, flashBk = on, minLk, br, bk }(flashOn, flashMinLk, flashBr, flashBk)
	defer func(f func(*Attention) bool) { attnStrip = f }(attnStrip)
	attnStrip = nil // the tier's own path (wasm: the strip path) would take these shapes
	r := rand.New(rand.NewSource(11))
	type ac struct {
		b, h, lq, lk, hd int
		br, bk           int
		scale            float32
	}
	for _, th := range []int{1, 2} {
		old := SetThreads(th)
		for _, c := range []ac{{1, 1, 1, 17, 17, 16, 64, 0.2}, {2, 3, 37, 300, 20, 16, 64, 0.2}, {1, 2, 70, 129, 64, 32, 128, 0.125},
			{1, 1, 33, 1100, 33, 64, 256, 0.17}, {2, 2, 19, 200, 24, 8, 32, 3}} {
			flashOn, flashMinLk, flashBr, flashBk = true, 0, c.br, c.bk
			qkv := randSlice(r, c.b*max(c.lq, c.lk)*3*c.h*c.hd)
			L := max(c.lq, c.lk)
			out := randSlice(r, c.b*c.lq*c.h*c.hd)
			w := c.h * c.hd
			at := &Attention{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Scale: c.scale,
				Q:   Strided{qkv, L * 3 * w, 3 * w, c.hd},
				K:   Strided{qkv[w:], L * 3 * w, 3 * w, c.hd},
				V:   Strided{qkv[2*w:], L * 3 * w, 3 * w, c.hd},
				Out: Strided{out, c.lq * w, w, c.hd},
			}
			if at.useSmall() || !at.useFlash() {
				t.Fatalf("%+v: the flash path is not taken", c)
			}
			want := refAttention(at)
			at.Run()
			for i := range want {
				if d := math.Abs(float64(out[i]) - want[i]); d > 2e-5*(1+math.Abs(want[i])) {
					t.Fatalf("flash attention %+v threads %d [%d]: %g want %g", c, th, i, out[i], want[i])
				}
			}
		}
		SetThreads(old)
	}
}
