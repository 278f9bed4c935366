//go:build !js

package webgpu

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/castvideo/castgo/backend/kernels"
	"github.com/castvideo/castgo/backend/plan"
)

var int8Cases = flag.String("int8-cases", "", "write the integer GEMM and attention cases (dispatches, inputs, the CPU's outputs) to this JSON file, for site/test/webgpu.test.mjs")

// int8Case is one problem for the browser test: the slots (bytes) of its program, the words of its input slots,
// its dispatches, and the CPU's outputs (float32 bits) in slot OutSlot.
type int8Case struct {
	Name       string
	Slots      []int
	Words      map[int][]uint32
	Dispatches []int8Dispatch
	OutSlot    int
	Want       []uint32
}

// f32Words returns the bits of x.
func f32Words(x []float32) []uint32 {
	w := make([]uint32, len(x))
	for i, v := range x {
		w[i] = math.Float32bits(v)
	}
	return w
}

// caseOf completes a case from the program p and its dispatches ds (the step's output in slot out).
func caseOf(name string, p *gpuProgram, ds []gpuDispatch, out int, words map[int][]uint32, want []float32) int8Case {
	tc := int8Case{Name: name, Words: words, OutSlot: out, Want: f32Words(want)}
	for _, s := range p.slots {
		tc.Slots = append(tc.Slots, s.bytes)
	}
	for _, d := range ds {
		o := d.out
		if !d.ownOut {
			o = out
		}
		tc.Dispatches = append(tc.Dispatches, int8Dispatch{Kernel: d.kernel, Ins: d.ins, Out: o, Meta: d.meta, Groups: d.groups})
	}
	return tc
}

type int8Dispatch struct {
	Kernel string
	Ins    []int
	Out    int
	Meta   []uint32
	Groups [3]int
}

// TestInt8Cases builds random int8 GEMMs (int8GemmCases) and attention problems (Q, K and V strided views into
// one buffer, as the model's fused QKV projection gives them), runs the attentions through the CPU's integer
// attention (kernels.Attention with Int8) and checks them against the float attention (relative L2 ≤ 3 %: int8
// K and V), and translates each into the WebGPU program's integer dispatches. With -int8-cases=FILE it writes them all to FILE: the browser test
// runs the dispatches on WebGPU and requires the CPU's outputs bit for bit.
func TestInt8Cases(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	var cases []int8Case
	for _, c := range []struct {
		name          string
		b, h, lq, lk  int
		hd            int
		scale, spread float32
	}{
		{"hd 64, 50 keys", 2, 3, 50, 50, 64, 0.125, 1.5},
		{"hd 64, 197 keys (a CAST frame)", 1, 2, 197, 197, 64, 0.125, 1},
		{"hd 6, 40 keys", 1, 2, 33, 40, 6, 0.4, 2},
		{"hd 128, 32 keys", 1, 1, 70, 32, 128, 0.088, 2},
	} {
		// one buffer of [B, L, 3, H, hd] (Q at 0, K at H·hd, V at 2·H·hd) when Lq = Lk, else Q, K, V one after another
		hd, h := c.hd, c.h
		var q, k, v kernels.Strided
		var qv, kv, vv plan.View
		root := &plan.Node{ID: 0}
		var data []float32
		if c.lq == c.lk {
			data = make([]float32, c.b*c.lq*3*h*hd)
			bs, rs := c.lq*3*h*hd, 3*h*hd
			for i, off := range []int{0, h * hd, 2 * h * hd} {
				s := kernels.Strided{Data: data[off:], BatchStride: bs, RowStride: rs, HeadStride: hd}
				pv := plan.View{Root: root, Off: off, Strides: []int{bs, rs, hd}}
				switch i {
				case 0:
					q, qv = s, pv
				case 1:
					k, kv = s, pv
				default:
					v, vv = s, pv
				}
			}
		} else {
			nq, nk := c.b*c.lq*h*hd, c.b*c.lk*h*hd
			data = make([]float32, nq+2*nk)
			q = kernels.Strided{Data: data, BatchStride: c.lq * h * hd, RowStride: h * hd, HeadStride: hd}
			k = kernels.Strided{Data: data[nq:], BatchStride: c.lk * h * hd, RowStride: h * hd, HeadStride: hd}
			v = kernels.Strided{Data: data[nq+nk:], BatchStride: c.lk * h * hd, RowStride: h * hd, HeadStride: hd}
			qv = plan.View{Root: root, Strides: []int{q.BatchStride, q.RowStride, hd}}
			kv = plan.View{Root: root, Off: nq, Strides: []int{k.BatchStride, k.RowStride, hd}}
			vv = plan.View{Root: root, Off: nq + nk, Strides: []int{v.BatchStride, v.RowStride, hd}}
		}
		for i := range data {
			data[i] = float32(rng.NormFloat64()) * c.spread
		}
		n := c.b * c.lq * h * hd
		out := kernels.Strided{Data: make([]float32, n), BatchStride: c.lq * h * hd, RowStride: h * hd, HeadStride: hd}
		a := kernels.Attention{Batch: c.b, Heads: h, Lq: c.lq, Lk: c.lk, HeadDim: hd, Scale: c.scale, Q: q, K: k, V: v, Out: out, Int8: true}
		a.Run()
		ref := a
		ref.Int8, ref.Out.Data = false, make([]float32, n)
		ref.Run()
		var num, den float64
		for i, w := range ref.Out.Data {
			num += float64(out.Data[i]-w) * float64(out.Data[i]-w)
			den += float64(w) * float64(w)
		}
		if r := math.Sqrt(num / den); !(r <= 0.03) {
			t.Errorf("%s: the CPU's integer attention is %.3g (relative L2) from the float one", c.name, r)
		}
		g := &plan.Attention{B: c.b, H: h, Lq: c.lq, Lk: c.lk, HD: hd, Scale: c.scale, Q: qv, K: kv, V: vv,
			Out: plan.HeadStrides{Batch: out.BatchStride, Row: out.RowStride, Head: hd}}
		p := &gpuProgram{int8Attn: true, slots: []gpuSlot{{bytes: 4 * len(data)}, {bytes: 4 * n}}}
		ds, err := attentionDispatch(p, g, func(x *plan.Node) (int, int, error) { return x.ID, 0, nil })
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(ds) != 2 {
			t.Fatalf("%s: %d dispatches, want the integer attention's 2", c.name, len(ds))
		}
		tc := caseOf("attention: "+c.name, p, ds, 1, map[int][]uint32{0: f32Words(data)}, out.Data)
		cases = append(cases, tc)
	}
	cases = append(cases, int8GemmCases(t)...)
	if *int8Cases == "" {
		return
	}
	b, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*int8Cases, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// int8GemmCases builds random int8 GEMMs (weights [N, K] with a scale per output channel, as cast quantize
// writes them), runs them through the CPU's int8 GEMM (kernels.PackBInt8, kernels.Gemm) and checks them against
// the float product of the dequantized weights (relative L2 ≤ 1e-3: int16 activations), and translates each into
// the WebGPU program's integer dispatches; with a bias and a residual (added in float32 after the product, as on
// the CPU) or without an epilogue, so that the outputs are the CPU's bit for bit.
func int8GemmCases(t *testing.T) []int8Case {
	rng := rand.New(rand.NewPCG(3, 5))
	var cases []int8Case
	for _, c := range []struct {
		m, k, n int
		epi     bool
	}{{70, 64, 96, false}, {33, 75, 40, true}, {197, 256, 64, true}} {
		a := make([]float32, c.m*c.k)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		w := make([]int8, c.n*c.k)
		for i := range w {
			w[i] = int8(rng.IntN(255) - 127)
		}
		sc, bias, res := make([]float32, c.n), make([]float32, c.n), make([]float32, c.m*c.n)
		for j := range sc {
			sc[j] = float32(0.001 + 0.01*rng.Float64())
			bias[j] = float32(rng.NormFloat64())
		}
		for i := range res {
			res[i] = float32(rng.NormFloat64())
		}
		out, ref := make([]float32, c.m*c.n), make([]float32, c.m*c.n)
		ep := &kernels.Epilogue{}
		if c.epi {
			ep.Bias, ep.Residual, ep.LdRes = bias, res, c.n
		}
		kernels.Gemm(c.m, a, c.k, kernels.PackBInt8(w, sc, c.k, c.n), out, c.n, ep)
		var num, den float64
		for i := range c.m {
			for j := range c.n {
				var s float64
				for k := range c.k {
					s += float64(a[i*c.k+k]) * float64(w[j*c.k+k]) * float64(sc[j])
				}
				if c.epi {
					s += float64(bias[j]) + float64(res[i*c.n+j])
				}
				ref[i*c.n+j] = float32(s)
				num += (float64(out[i*c.n+j]) - s) * (float64(out[i*c.n+j]) - s)
				den += s * s
			}
		}
		name := fmt.Sprintf("int8 GEMM %d×%d×%d (bias and residual %v)", c.m, c.k, c.n, c.epi)
		if r := math.Sqrt(num / den); !(r <= 1e-3) {
			t.Errorf("%s: the CPU's int8 GEMM is %.3g (relative L2) from the float product", name, r)
		}
		// slots: 0 A, 1 W (int8, four to a word), 2 scales, 3 bias, 4 residual, 5 output
		wb := make([]uint32, (len(w)+3)/4)
		for i, v := range w {
			wb[i/4] |= uint32(uint8(v)) << (8 * (i % 4))
		}
		g := &plan.Gemm{M: c.m, K: c.k, N: c.n, LHS: &plan.Node{ID: 0}, W: &plan.Node{ID: 1}, Scale: &plan.Node{ID: 2}, Transposed: true}
		if c.epi {
			g.Bias, g.Residual = &plan.Node{ID: 3}, &plan.Node{ID: 4}
		}
		p := &gpuProgram{slots: []gpuSlot{{bytes: 4 * len(a)}, {bytes: 4 * len(wb)}, {bytes: 4 * c.n}, {bytes: 4 * c.n}, {bytes: 4 * len(res)}, {bytes: 4 * len(out)}}}
		ds, err := gemmDispatch(p, g, func(x *plan.Node) (int, int, error) { return x.ID, 0, nil })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(ds) != 2 {
			t.Fatalf("%s: %d dispatches, want the integer GEMM's 2", name, len(ds))
		}
		cases = append(cases, caseOf(name, p, ds, 5, map[int][]uint32{0: f32Words(a), 1: wb, 2: f32Words(sc), 3: f32Words(bias), 4: f32Words(res)}, out))
	}
	return cases
}
