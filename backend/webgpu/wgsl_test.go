package webgpu

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/castvideo/castgo/backend/plan"
)

// TestGemmShaderFragments checks the GEMM kernels: float weights take gemm.wgsl alone, int8 weights the
// quantization of A's rows into a scratch slot and the integer GEMM reading it; every kernel is completed from
// its fragments (no placeholder left, no fragment comment line spliced in).
func TestGemmShaderFragments(t *testing.T) {
	lhs := &plan.Node{ID: 0}
	w := &plan.Node{ID: 1}
	addr := func(n *plan.Node) (int, int, error) { return n.ID, 0, nil }
	for _, int8 := range []bool{false, true} {
		g := &plan.Gemm{M: 4, K: 7, N: 16, LHS: lhs, W: w, Transposed: true}
		want := []string{"return W[wOff + j * K + k];"}
		if int8 {
			g.Scale = &plan.Node{ID: 2}
			want = []string{"fn divRN(", "extractBits(bitcast<i32>(W[idx / 4u]), (idx % 4u) * 8u, 8u)"}
		}
		p := &gpuProgram{slots: make([]gpuSlot, 3)}
		ds, err := gemmDispatch(p, g, addr)
		if err != nil {
			t.Fatal(err)
		}
		var all string
		for _, d := range ds {
			all += d.kernel
			if !strings.Contains(d.kernel, "fn store(") && !d.ownOut {
				t.Errorf("int8=%v: the GEMM kernel lacks the epilogue", int8)
			}
		}
		for _, bad := range []string{"{{", "}}", "Fragment of"} {
			if strings.Contains(all, bad) {
				t.Errorf("int8=%v: a kernel holds %q", int8, bad)
			}
		}
		for _, x := range want {
			if !strings.Contains(all, x) {
				t.Errorf("int8=%v: the kernels lack %q", int8, x)
			}
		}
		if !int8 {
			if len(ds) != 1 || len(p.slots) != 3 {
				t.Errorf("float GEMM: %d dispatches, %d slots; want 1 and no scratch", len(ds), len(p.slots))
			}
			continue
		}
		// 4 rows of ⌈7/2⌉ words of levels, then 4 row scales; qmax of K = 7 (8 rounded up to even): 32767
		if len(ds) != 2 || !ds[0].ownOut || ds[0].out != 3 || p.slots[3].bytes != 4*(4*4+4) || !slices.Equal(ds[1].ins[:1], []int{3}) {
			t.Errorf("int8 GEMM: %d dispatches, scratch slot %v; want A quantized into slot 3 of %d bytes, read by the GEMM", len(ds), p.slots[3:], 4*(4*4+4))
		} else if q := math.Float32frombits(ds[0].meta[3]); q != 32767 || ds[1].meta[12] != 16 {
			t.Errorf("int8 GEMM: qmax %v, row scales at word %d; want 32767, 16", q, ds[1].meta[12])
		}
	}
}

// attnStep returns an attention step of B=2, H=3, Lq=50, lk keys and head dimension hd over contiguous
// [B, L, H, hd] views of nodes 0 (Q), 1 (K) and 2 (V).
func attnStep(lk, hd int) *plan.Attention {
	view := func(id, l int) plan.View {
		return plan.View{Root: &plan.Node{ID: id}, Strides: []int{l * 3 * hd, 3 * hd, hd}}
	}
	return &plan.Attention{B: 2, H: 3, Lq: 50, Lk: lk, HD: hd, Scale: 0.125, Q: view(0, 50), K: view(1, lk), V: view(2, lk),
		Out: plan.HeadStrides{Batch: 50 * 3 * hd, Row: 3 * hd, Head: hd}}
}

// TestAttentionInt8Dispatch checks that an int8 program's attention of at least 32 keys takes the integer
// kernels (K and V quantized into a scratch slot, then the attention reading it), with every placeholder filled,
// the scratch slot sized for the levels and scales and returned to the pool; that its attentions of fewer keys
// take the CPU's few-key path where the CPU does (kernels.Int8FewKeys: head dims up to 64); and that float
// programs keep the float kernel.
func TestAttentionInt8Dispatch(t *testing.T) {
	addr := func(n *plan.Node) (int, int, error) { return n.ID, 0, nil }
	for _, c := range []struct {
		int8     bool
		lk, hd   int
		integer  bool
		few      bool
		hd4, tk  int
		lastLine string
	}{
		{int8: false, lk: 1568, hd: 64},
		{int8: false, lk: 8, hd: 64},
		{int8: true, lk: 31, hd: 64, few: true},
		{int8: true, lk: 8, hd: 8, few: true},
		{int8: true, lk: 20, hd: 128},
		{int8: true, lk: 32, hd: 64, integer: true, hd4: 16, tk: 16, lastLine: "OUT[o + 63u] = opq(f32(a15.w) * rl) * bitcast<f32>(S[vSc + 63u]);"},
		{int8: true, lk: 1568, hd: 6, integer: true, hd4: 2, tk: 16, lastLine: "OUT[o + 5u] = opq(f32(a1.y) * rl) * bitcast<f32>(S[vSc + 5u]);"},
		{int8: true, lk: 40, hd: 128, integer: true, hd4: 32, tk: 8, lastLine: "OUT[o + 127u] = opq(f32(a31.w) * rl) * bitcast<f32>(S[vSc + 127u]);"},
	} {
		name := fmt.Sprintf("int8=%v lk=%d hd=%d", c.int8, c.lk, c.hd)
		p := &gpuProgram{int8Attn: c.int8, slots: make([]gpuSlot, 4)}
		ds, err := attentionDispatch(p, attnStep(c.lk, c.hd), addr)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.few {
			if len(ds) != 1 || ds[0].kernel != wgslAttentionFew(c.hd) || len(p.slots) != 4 || len(ds[0].meta) != 21 || ds[0].meta[20] != 0 {
				t.Errorf("%s: %d dispatches, %d slots; want the few-key kernel alone, with opq's 0 at word 20", name, len(ds), len(p.slots))
			}
			if k := ds[0].kernel; strings.Contains(k, "{{") || !strings.Contains(k, fmt.Sprintf("const HD: u32 = %du;", c.hd)) || !strings.Contains(k, "fn expx(") {
				t.Errorf("%s: the few-key kernel lacks its head dim or f32exact.wgsl, or holds a placeholder", name)
			}
			continue
		}
		if !c.integer {
			if len(ds) != 1 || ds[0].kernel != wgslAttention(c.hd) || len(p.slots) != 4 {
				t.Errorf("%s: %d dispatches, %d slots; want the float kernel alone", name, len(ds), len(p.slots))
			}
			continue
		}
		if len(ds) != 2 {
			t.Fatalf("%s: %d dispatches, want 2", name, len(ds))
		}
		quant, att := ds[0], ds[1]
		hdp := 4 * c.hd4
		wantBytes := 4 * (2*6*c.lk*hdp + 6*c.lk + 6*hdp)
		if len(p.slots) != 5 || !quant.ownOut || quant.out != 4 || p.slots[4].bytes != wantBytes {
			t.Errorf("%s: quantization writes slot %d (own %v) of %d slots; want a new scratch slot 4 of %d bytes", name, quant.out, quant.ownOut, len(p.slots), wantBytes)
		} else if l := p.pool[wantBytes]; len(l) != 1 || l[0] != 4 {
			t.Errorf("%s: the scratch slot is not back in the pool: %v", name, p.pool)
		}
		if !slices.Equal(quant.ins, []int{1, 2}) || !slices.Equal(att.ins, []int{0, 4}) || att.ownOut {
			t.Errorf("%s: quantization reads %v, attention reads %v (own out %v); want [1 2], [0 4]", name, quant.ins, att.ins, att.ownOut)
		}
		for i, d := range ds {
			if strings.Contains(d.kernel, "{{") || strings.Contains(d.kernel, "}}") {
				t.Errorf("%s: dispatch %d's kernel holds a placeholder", name, i)
			}
			if !strings.Contains(d.kernel, "fn divRN(") || strings.Contains(d.kernel, "Fragment of") {
				t.Errorf("%s: dispatch %d's kernel lacks the quantization fragment (or holds its comment line)", name, i)
			}
		}
		for _, want := range []string{fmt.Sprintf("const HD4: u32 = %du;", c.hd4), fmt.Sprintf("const TK: u32 = %du;", c.tk), c.lastLine} {
			if !strings.Contains(att.kernel, want) {
				t.Errorf("%s: the attention kernel lacks %q", name, want)
			}
		}
		// qmax of Q (k2 = hd rounded up to even) and of P (k2 = Lk rounded up to even), as the CPU's kernels.Int8QMax
		wantQ, wantP := float32(min(32767, (1<<31-1)/(((c.hd+1)&^1)*128))), float32(min(32767, (1<<31-1)/(((c.lk+1)&^1)*128)))
		if gotQ, gotP := math.Float32frombits(att.meta[12]), math.Float32frombits(att.meta[13]); gotQ != wantQ || gotP != wantP {
			t.Errorf("%s: qmax Q %v, P %v; want %v, %v", name, gotQ, gotP, wantQ, wantP)
		}
		if c.lk == 1568 && wantP != 10699 {
			t.Errorf("qmax of P at 1568 keys is %v, want 10699", wantP)
		}
	}
}

// TestF32ExactConstants checks that the float32 constants of f32exact.wgsl (exp32, expx, erf, tanh, GELU and
// QuickGELU) are those of the CPU's (backend/kernels/math_generic.go and exp_exact.go: the literals below are
// theirs).
func TestF32ExactConstants(t *testing.T) {
	want := map[string]float32{
		"EXP_HI": 89, "EXP_LO32": -104,
		"EXP_LO": -87.33654, "LOG2E": 1.44269504088896341, "NEG_LN2_HI": -0.693359375, "NEG_LN2_LO": 2.12194440e-4,
		"EXP_P0": 1.9875691500e-4, "EXP_P1": 1.3981999507e-3, "EXP_P2": 8.3334519073e-3, "EXP_P3": 4.1665795894e-2,
		"EXP_P4": 1.6666665459e-1, "EXP_P5": 5.0000001201e-1,
		"ERF_P": 0.3275911, "ERF_A1": 0.254829592, "ERF_A2": -0.284496736, "ERF_A3": 1.421413741, "ERF_A4": -1.453152027,
		"ERF_A5": 1.061405429, "TANH_T0": -5.70498872745e-3, "TANH_T1": 2.06390887954e-2, "TANH_T2": -5.37397155531e-2,
		"TANH_T3": 1.33314422036e-1, "TANH_T4": -3.33332819422e-1, "SQRT_HALF": 0.70710678118654752, "QGELU_K": -1.702,
	}
	re := regexp.MustCompile(`(?m)^const (\w+): f32 = (\S+)f;$`)
	got := map[string]float32{}
	for _, m := range re.FindAllStringSubmatch(wgslAttentionInt8(64), -1) { // f32exact.wgsl, spliced in
		v, err := strconv.ParseFloat(m[2], 32)
		if err != nil {
			t.Fatalf("%s: %v", m[1], err)
		}
		got[m[1]] = float32(v)
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("%s = %v (found %v), want %v", name, g, ok, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("constants %v, want those of %v", got, want)
	}
}

// TestHasInt8Gemm checks the int8 program test: a GEMM with a weight scale makes the program int8.
func TestHasInt8Gemm(t *testing.T) {
	g := &plan.Gemm{M: 1, K: 1, N: 1}
	pl := &plan.Plan{Steps: []*plan.Step{{Kind: attnStep(32, 8)}, {Kind: g}}}
	if hasInt8Gemm(pl) {
		t.Error("a float GEMM made the program int8")
	}
	g.Scale = &plan.Node{ID: 9}
	if !hasInt8Gemm(pl) {
		t.Error("an int8 GEMM did not make the program int8")
	}
}

// TestF32Math checks the two fragments of float functions: an int8 program splices in f32exact.wgsl (opq
// through the zero word, the integer long division), a float program f32fast.wgsl, and both define the same
// functions, so every kernel compiles with either.
func TestF32Math(t *testing.T) {
	exact, fast := (&gpuProgram{int8Attn: true}).f32Math(), (&gpuProgram{}).f32Math()
	if !strings.Contains(exact, "bitcast<u32>(x) ^ zero") || !strings.Contains(exact, "for (var i = 0; i < 24; i++)") {
		t.Error("the int8 program's fragment is not f32exact.wgsl")
	}
	if !strings.Contains(fast, "fn opq(x: f32) -> f32 { return x; }") || !strings.Contains(fast, "fn exp32(x: f32) -> f32 { return exp(x); }") {
		t.Error("the float program's fragment is not f32fast.wgsl")
	}
	fns := func(src string) []string {
		var names []string
		for _, m := range regexp.MustCompile(`(?m)^fn (\w+)\(`).FindAllStringSubmatch(src, -1) {
			names = append(names, m[1])
		}
		slices.Sort(names)
		return names
	}
	// f32fast has no expPoly, expx or withSignOf: helpers of f32exact's functions that no kernel of a float program calls
	want := slices.DeleteFunc(fns(exact), func(n string) bool { return n == "expPoly" || n == "expx" || n == "withSignOf" })
	if got := fns(fast); !slices.Equal(got, want) {
		t.Errorf("f32fast.wgsl defines %v, f32exact.wgsl %v", got, want)
	}
}
