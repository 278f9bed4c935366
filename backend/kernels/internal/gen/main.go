// Command gen writes the vector elementwise and row kernels of package kernels (exp, erf, tanh, logistic,
// GELU, QuickGELU, the arithmetic ops, sum, max, softmax's exp-sum, layer norm's moments and affine) for each
// SIMD tier from one template, math.tmpl: AVX2 (8 lanes), AVX-512 (16 lanes) and WebAssembly SIMD128 (4 lanes).
// The tiers differ only in lane count, type names, rounding, the bit casts and AVX's VZEROUPPER.
//
// Run it through go generate in backend/kernels:
//
//	//go:generate go run ./internal/gen
package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"go/format"
	"os"
	"strings"
	"text/template"
)

//go:embed math.tmpl
var mathTmpl string

// tier is what the template needs to know about one vector tier.
type tier struct {
	File    string // output file
	Build   string // build constraint
	Suffix  string // of the kernels' names (vexpAVX2…)
	Desc    string // for the doc comment
	W       int    // lanes
	Vec     string // archsimd float type
	V       string // its short alias in package kernels
	Int     string // archsimd int32 type of W lanes
	Uint    string // archsimd uint32 type of W lanes
	Ld, St  string // load / store helpers: f(s []float32, i int) V, f(v V, s []float32, i int)
	Bc      string // broadcast helper
	Hsum    string // float64 lane sum helper
	Round   string // method call rounding to nearest
	AsFloat string // method call turning the int vector's bits into floats
	Clear   string // statement clearing dirty upper vector state, or ""
	// ExpExact: generate expSubSumExact{{Suffix}} (exp_exact.go's bit-exact exp); wasm's is exp_wasm.s's assembly
	ExpExact bool
}

var tiers = []tier{
	{File: "math_avx2_amd64.go", Build: "goexperiment.simd && amd64", Suffix: "AVX2", Desc: "AVX2+FMA", W: 8,
		Vec: "Float32x8", V: "f8", Int: "Int32x8", Uint: "Uint32x8", Ld: "ld", St: "st", Bc: "splat", Hsum: "hsum64",
		Round: "Round()", AsFloat: "AsFloat32x8()", Clear: "archsimd.ClearAVXUpperBits()", ExpExact: true},
	{File: "math_avx512_amd64.go", Build: "goexperiment.simd && amd64", Suffix: "AVX512", Desc: "AVX-512", W: 16,
		Vec: "Float32x16", V: "f16", Int: "Int32x16", Uint: "Uint32x16", Ld: "ldz", St: "stz", Bc: "splatz",
		Hsum: "hsumz64", Round: "RoundScaled(0)", AsFloat: "AsFloat32x16()", Clear: "archsimd.ClearAVXUpperBits()",
		ExpExact: true},
	{File: "math_wasm.go", Build: "goexperiment.simd && wasm", Suffix: "Wasm", Desc: "WebAssembly SIMD128", W: 4,
		Vec: "Float32x4", V: "f4", Int: "Int32x4", Uint: "Uint32x4", Ld: "ld", St: "st", Bc: "splat", Hsum: "hsum64",
		Round: "Round()", AsFloat: "ToBits().BitsToFloat32()"},
}

// binOp is one of the arithmetic kernels (dst = a op b, or a op s for a scalar s).
type binOp struct {
	Name, Method string
	Scalar       bool
	Params       string
	Reslice      string
}

var binOps = []binOp{
	{Name: "add", Method: "Add", Params: "dst, a, b []float32", Reslice: "a, b = a[:len(dst)], b[:len(dst)]"},
	{Name: "sub", Method: "Sub", Params: "dst, a, b []float32", Reslice: "a, b = a[:len(dst)], b[:len(dst)]"},
	{Name: "mul", Method: "Mul", Params: "dst, a, b []float32", Reslice: "a, b = a[:len(dst)], b[:len(dst)]"},
	{Name: "div", Method: "Div", Params: "dst, a, b []float32", Reslice: "a, b = a[:len(dst)], b[:len(dst)]"},
	{Name: "addScalar", Method: "Add", Scalar: true, Params: "dst, a []float32, s float32", Reslice: "a = a[:len(dst)]"},
	{Name: "mulScalar", Method: "Mul", Scalar: true, Params: "dst, a []float32, s float32", Reslice: "a = a[:len(dst)]"},
}

// tree writes a pairwise reduction of a[0..w-1] with op ("+" or "max"), wrapping each term with conv.
func tree(op, conv string, lo, hi int) string {
	if hi-lo == 1 {
		if conv == "" {
			return fmt.Sprintf("a[%d]", lo)
		}
		return fmt.Sprintf("%s(a[%d])", conv, lo)
	}
	mid := (lo + hi) / 2
	l, r := tree(op, conv, lo, mid), tree(op, conv, mid, hi)
	if op == "max" {
		return "max(" + l + ", " + r + ")"
	}
	return "(" + l + " + " + r + ")"
}

func main() {
	for _, tr := range tiers {
		src, err := render(tr)
		if err != nil {
			fail(err)
		}
		if err := os.WriteFile(tr.File, src, 0o644); err != nil {
			fail(err)
		}
	}
}

// render returns the gofmt'ed source of one tier's file.
func render(tr tier) ([]byte, error) {
	t, err := template.New("math").Funcs(template.FuncMap{
		"sumTree": func(w int) string { return tree("+", "float64", 0, w) },
		"maxTree": func(w int) string { return tree("max", "", 0, w) },
		"mask":    func(w int) int { return w - 1 },
		// groups: the offsets of the vectors that hold a 16-value group's lanes; groupsN: how many
		"groups": func(w int) []int {
			var g []int
			for o := 0; o < 16; o += w {
				g = append(g, o)
			}
			return g
		},
		"groupsN": func(w int) int { return 16 / w },
		"ops":     func() []binOp { return binOps },
		"unary":   func() []string { return []string{"tanh", "logistic"} },
	}).Parse(mathTmpl)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, tr); err != nil {
		return nil, fmt.Errorf("%s: %w", tr.File, err)
	}
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s: gofmt: %w\n%s", tr.File, err, numbered(b.String()))
	}
	return src, nil
}

func numbered(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(s, "\n") {
		fmt.Fprintf(&b, "%4d %s\n", i+1, l)
	}
	return b.String()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gen:", err)
	os.Exit(1)
}
