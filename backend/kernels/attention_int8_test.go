package kernels

import (
	"math"
	"math/rand"
	"testing"
)

// refAttentionInt8 is the integer attention written out naively: K per key and V per head dimension as
// symmetric int8, Q and P per row as the int8 GEMM's int16 A (quantizeRows), exact integer sums, the path's exp
// (expOneExact, checked against math.Exp by TestExpSubSumExactBits), P's levels normalised by their sum.
func refAttentionInt8(a *Attention) []float64 {
	B, H, lq, lk, hd := a.Batch, a.Heads, a.Lq, a.Lk, a.HeadDim
	out := make([]float64, B*H*lq*hd)
	hd2, lk2 := (hd+1)&^1, (lk+1)&^1
	q8 := func(x, inv float32) int64 { return int64(math.RoundToEven(float64(x * inv))) }
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			kq, ks := make([]int64, lk*hd), make([]float32, lk)
			for j := 0; j < lk; j++ {
				row := a.K.at(b, j, h)[:hd]
				var inv float32
				ks[j], inv = symScale(maxAbsGeneric(row), 127)
				for d, v := range row {
					kq[j*hd+d] = q8(v, inv)
				}
			}
			vq, vs := make([]int64, lk*hd), make([]float32, hd)
			for d := 0; d < hd; d++ {
				var mx float32
				for j := 0; j < lk; j++ {
					v := a.V.at(b, j, h)[d]
					mx = max(mx, v, -v)
				}
				var inv float32
				vs[d], inv = symScale(mx, 127)
				for j := 0; j < lk; j++ {
					vq[j*hd+d] = q8(a.V.at(b, j, h)[d], inv)
				}
			}
			for i := 0; i < lq; i++ {
				qq, qs := make([]int16, hd2), make([]float32, 1)
				quantizeRows(qq, qs, a.Q.at(b, i, h), 0, 1, hd, hd2, Int8QMax(hd2))
				rq := qs[0] * a.Scale
				s := make([]float32, lk)
				m := float32(math.Inf(-1))
				for j := range s {
					var acc int64
					for d := 0; d < hd; d++ {
						acc += int64(qq[d]) * kq[j*hd+d]
					}
					s[j] = float32(acc) * rq * ks[j]
					m = max(m, s[j])
				}
				for j := range s {
					s[j] = expOneExact(s[j] - m)
				}
				pq, ps := make([]int16, lk2), make([]float32, 1)
				quantizeRows(pq, ps, s, 0, 1, lk, lk2, Int8QMax(lk2))
				var levels int64
				for _, l := range pq {
					levels += int64(l)
				}
				rp := pRowScale(levels, ps[0] != ps[0])
				for d := 0; d < hd; d++ {
					var acc int64
					for j := 0; j < lk; j++ {
						acc += int64(pq[j]) * vq[j*hd+d]
					}
					out[((b*H+h)*lq+i)*hd+d] = float64(float32(acc) * rp * vs[d])
				}
			}
		}
	}
	return out
}

// Every int8 tier this build and CPU run takes the integer path, against the naive integer reference (to
// float rounding) and against float attention (to int8's error), on awkward shapes and strides, serial and on
// 3 threads.
func TestAttentionInt8Tiers(t *testing.T) {
	defer func(kt int8Kernel) { int8Cur = kt }(int8Cur)
	type ac struct {
		b, h, lq, lk, hd int
		scale            float32
	}
	cases := []ac{{1, 1, 1, 32, 1, 1}, {2, 3, 7, 33, 8, 0.35}, {1, 2, 37, 197, 64, 0.125}, {2, 1, 5, 40, 7, 0.4},
		{1, 3, 70, 1568, 64, 0.125}, {3, 2, 9, 196, 32, 0.18}, {1, 1, 4, 64, 65, 0.12}, {1, 2, 130, 129, 20, 0.2}}
	defer func(f func(*Attention) bool) { attnInt8Strip = f }(attnInt8Strip)
	strip := attnInt8Strip
	type variant struct {
		kt    int8Kernel
		strip func(*Attention) bool
		name  string
	}
	var variants []variant
	for _, kt := range int8Tiers {
		variants = append(variants, variant{kt, strip, kt.name})
		if kt.ilv && strip != nil {
			// the generic runInt8 over the tier's interleaved layout, without its strip path
			variants = append(variants, variant{kt, nil, kt.name + "/generic"})
		}
	}
	for _, v := range variants {
		kt := v.kt
		kt.name = v.name
		int8Cur, attnInt8Strip = v.kt, v.strip
		for _, th := range []int{1, 3} {
			old := SetThreads(th)
			r := rand.New(rand.NewSource(int64(th)))
			for _, c := range cases {
				L, w := max(c.lq, c.lk), c.h*c.hd
				qkv := randSlice(r, c.b*L*3*w)
				for i := range qkv {
					if r.Intn(40) == 0 {
						qkv[i] *= 8 // outliers
					}
				}
				out := randSlice(r, c.b*c.lq*w)
				at := &Attention{Batch: c.b, Heads: c.h, Lq: c.lq, Lk: c.lk, HeadDim: c.hd, Scale: c.scale, Int8: true,
					Q:   Strided{qkv, L * 3 * w, 3 * w, c.hd},
					K:   Strided{qkv[w:], L * 3 * w, 3 * w, c.hd},
					V:   Strided{qkv[2*w:], L * 3 * w, 3 * w, c.hd},
					Out: Strided{out, c.lq * w, w, c.hd},
				}
				if !at.useInt8() {
					t.Fatalf("%+v: the integer path is not taken", c)
				}
				want, exact := refAttentionInt8(at), refAttention(at)
				at.Run()
				var dd, nn, di, ni float64
				for b := 0; b < c.b; b++ {
					for h := 0; h < c.h; h++ {
						for i := 0; i < c.lq; i++ {
							for d := 0; d < c.hd; d++ {
								got := float64(out[b*c.lq*w+i*w+h*c.hd+d])
								wi := want[((b*c.h+h)*c.lq+i)*c.hd+d]
								if e := math.Abs(got - wi); !(e <= 1e-5*(1+math.Abs(wi))) {
									t.Fatalf("tier %s threads %d %+v (b%d h%d i%d d%d): %g, integer reference %g", kt.name, th, c, b, h, i, d, got, wi)
								}
								di += (got - wi) * (got - wi)
								ni += wi * wi
								x := exact[b*c.lq*w+i*w+h*c.hd+d]
								dd += (got - x) * (got - x)
								nn += x * x
							}
						}
					}
				}
				if rel := math.Sqrt(di / ni); rel > 1e-6 {
					t.Errorf("tier %s %+v: relative L2 error %.2e against the integer reference > 1e-6", kt.name, c, rel)
				}
				// int8 K and V on random values with outliers (the scale of a key or channel is set by its largest)
				if rel := math.Sqrt(dd / nn); rel > 0.04 {
					t.Errorf("tier %s %+v: relative L2 error %.3f%% against float attention > 4%%", kt.name, c, 100*rel)
				} else if th == 1 {
					t.Logf("tier %s %+v: relative L2 error %.3f%% against float attention", kt.name, c, 100*rel)
				}
			}
			SetThreads(old)
		}
	}
}

// The integer path is for inference: with Probs, or fewer than Int8AttnMinLk keys, the float paths run.
func TestAttentionInt8Scope(t *testing.T) {
	a := &Attention{Batch: 1, Heads: 1, Lq: 4, Lk: 64, HeadDim: 8, Int8: true}
	if !a.useInt8() {
		t.Fatal("Int8 with 64 keys: the integer path is not taken")
	}
	for name, b := range map[string]Attention{
		"no Int8": {Batch: 1, Heads: 1, Lq: 4, Lk: 64, HeadDim: 8},
		"Probs":   {Batch: 1, Heads: 1, Lq: 4, Lk: 64, HeadDim: 8, Int8: true, Probs: make([]float32, 4*64)},
		"8 keys":  {Batch: 1, Heads: 1, Lq: 4, Lk: 8, HeadDim: 8, Int8: true},
	} {
		if b.useInt8() {
			t.Errorf("%s: the integer path is taken", name)
		}
	}
}

// Zero and constant operands: a zero key row or V column (scale 0) and a zero query give the exact uniform
// average; a NaN in K makes the outputs NaN, as float attention does.
func TestAttentionInt8Extremes(t *testing.T) {
	const lq, lk, hd = 5, 40, 16
	q, k, v := randSlice(rand.New(rand.NewSource(3)), lq*hd), make([]float32, lk*hd), make([]float32, lk*hd)
	clear(q[:hd]) // query 0: zero
	for j := 0; j < lk; j++ {
		for d := 1; d < hd; d++ { // V column 0 zero; column d constant d
			v[j*hd+d] = float32(d)
		}
	}
	out := make([]float32, lq*hd)
	a := &Attention{Batch: 1, Heads: 1, Lq: lq, Lk: lk, HeadDim: hd, Scale: 0.25, Int8: true,
		Q: Strided{q, 0, hd, 0}, K: Strided{k, 0, hd, 0}, V: Strided{v, 0, hd, 0}, Out: Strided{out, 0, hd, 0}}
	a.Run()
	for i := 0; i < lq; i++ {
		for d := 0; d < hd; d++ {
			if got := out[i*hd+d]; math.Abs(float64(got)-float64(d)) > 1e-4*float64(d+1) {
				t.Fatalf("zero K, constant V: out[%d][%d] = %g, want %d", i, d, got, d)
			}
		}
	}
	k[7*hd+3] = float32(math.NaN())
	a.Run()
	for i, x := range out {
		if x == x {
			t.Fatalf("NaN in K: out[%d] = %g, want NaN", i, x)
		}
	}
}
