package backend_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/castvideo/castgo/backend"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

var (
	sgBackend backends.Backend
	cgBackend backends.Backend
)

func backendsForTest(t *testing.T) (backends.Backend, backends.Backend) {
	t.Helper()
	if sgBackend == nil {
		var err error
		if sgBackend, err = simplego.New("ops_sequential"); err != nil {
			t.Fatal(err)
		}
		if cgBackend, err = backend.New(""); err != nil {
			t.Fatal(err)
		}
	}
	return sgBackend, cgBackend
}

func randTensor(rng *rand.Rand, positive bool, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
		if positive {
			v[i] = float32(math.Abs(float64(v[i]))) + 0.1
		}
	}
	return tensors.FromFlatDataAndDimensions(v, dims...)
}

// compareOnBackends runs fn on simplego and castgo with the same inputs and compares every output.
func compareOnBackends(t *testing.T, name string, fn func(xs []*Node) []*Node, inputs ...*tensors.Tensor) {
	t.Helper()
	sg, cg := backendsForTest(t)
	run := func(b backends.Backend) [][]float32 {
		e, err := NewExecAny(b, fn)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		args := make([]any, len(inputs))
		for i, in := range inputs {
			c, err := in.LocalClone() // a tensor may live on one backend instance only
			if err != nil {
				t.Fatal(err)
			}
			args[i] = c
		}
		outs, err := e.Exec(args...)
		if err != nil {
			t.Fatalf("%s on %s: %v", name, b.Name(), err)
		}
		var res [][]float32
		for _, o := range outs {
			if o.DType() != dtypes.Float32 {
				conv, err := ExecOnce(sg, func(x *Node) *Node { return ConvertDType(x, dtypes.Float32) }, o)
				if err != nil {
					t.Fatal(err)
				}
				o = conv
			}
			res = append(res, tensors.MustCopyFlatData[float32](o))
		}
		return res
	}
	want, got := run(sg), run(cg)
	if len(want) != len(got) {
		t.Fatalf("%s: %d outputs, want %d", name, len(got), len(want))
	}
	for i := range want {
		if len(want[i]) != len(got[i]) {
			t.Errorf("%s output %d: %d values, want %d", name, i, len(got[i]), len(want[i]))
			continue
		}
		for j := range want[i] {
			w, g := float64(want[i][j]), float64(got[i][j])
			if math.Abs(w-g) > 1e-5*math.Max(1, math.Abs(w)) || math.IsNaN(g) != math.IsNaN(w) {
				t.Errorf("%s output %d[%d]: got %g, want %g", name, i, j, g, w)
				break
			}
		}
	}
}

func one(f func(xs []*Node) *Node) func(xs []*Node) []*Node {
	return func(xs []*Node) []*Node { return []*Node{f(xs)} }
}

func TestBinaryBroadcast(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ops := map[string]func(a, b *Node) *Node{"Add": Add, "Sub": Sub, "Mul": Mul, "Div": Div, "Max": Max, "Min": Min}
	shapes := [][2][]int{{{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {1, 3, 1}}, {{2, 1, 4}, {2, 3, 1}}, {{5, 7}, {}}, {{}, {5, 7}}, {{1, 300}, {2, 300}}}
	for name, op := range ops {
		for _, sh := range shapes {
			a, b := randTensor(rng, name == "Div", sh[0]...), randTensor(rng, name == "Div", sh[1]...)
			compareOnBackends(t, name, one(func(xs []*Node) *Node { return op(xs[0], xs[1]) }), a, b)
			// also with the inputs through a transpose and a unary op, so the fused loop reads strided leaves
			if len(sh[0]) == 3 && len(sh[1]) == 3 && sh[0][0] == sh[1][0] {
				compareOnBackends(t, name+"-chain", one(func(xs []*Node) *Node {
					x := Exp(MulScalar(xs[0], 0.5))
					return Neg(op(x, Logistic(xs[1])))
				}), a, b)
			}
		}
	}
	a := randTensor(rng, false, 3, 4, 5)
	b := randTensor(rng, false, 5, 4, 3)
	compareOnBackends(t, "transposed-operand", one(func(xs []*Node) *Node {
		return Mul(Add(xs[0], TransposeAllDims(xs[1], 2, 1, 0)), Erf(xs[0]))
	}), a, b)
}

func TestUnary(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ops := map[string]func(x *Node) *Node{"Exp": Exp, "Erf": Erf, "Logistic": Logistic, "Tanh": Tanh, "Sqrt": Sqrt,
		"Rsqrt": Rsqrt, "Neg": Neg, "Abs": Abs, "Log": Log}
	for name, op := range ops {
		x := randTensor(rng, name == "Sqrt" || name == "Rsqrt" || name == "Log", 3, 333)
		compareOnBackends(t, name, one(func(xs []*Node) *Node { return op(xs[0]) }), x)
		compareOnBackends(t, name+"-alone-output", func(xs []*Node) []*Node { return []*Node{op(xs[0]), xs[0]} }, x)
	}
}

func TestLayoutOps(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := randTensor(rng, false, 2, 3, 4, 5)
	for _, perm := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {0, 2, 1, 3}, {1, 0, 3, 2}, {2, 3, 0, 1}} {
		compareOnBackends(t, "transpose", one(func(xs []*Node) *Node { return TransposeAllDims(xs[0], perm...) }), x)
		compareOnBackends(t, "transpose-reshape", one(func(xs []*Node) *Node {
			return Reshape(TransposeAllDims(xs[0], perm...), 6, 20)
		}), x)
	}
	compareOnBackends(t, "reshape", one(func(xs []*Node) *Node { return Reshape(xs[0], 6, 4, 5) }), x)
	compareOnBackends(t, "broadcast", one(func(xs []*Node) *Node {
		return BroadcastToDims(Reshape(ReduceSum(xs[0], 1), 2, 1, 4, 5), 2, 7, 4, 5)
	}), x)
	compareOnBackends(t, "slice", one(func(xs []*Node) *Node {
		return Slice(xs[0], AxisRange(), AxisRange(1, 3), AxisRange().Stride(2), AxisRange(1))
	}), x)
	compareOnBackends(t, "concat", one(func(xs []*Node) *Node {
		return Concatenate([]*Node{xs[0], MulScalar(xs[0], 2), Slice(xs[0], AxisRange(), AxisRange(), AxisRange(0, 1))}, 2)
	}), x)
	for _, axis := range []int{0, 1, 2, 3} {
		for _, r := range [][2]int{{0, 1}, {1, 2}, {0, 2}} {
			compareOnBackends(t, "gather-slice", one(func(xs []*Node) *Node { return sliceRangeLike(xs[0], axis, r[0], r[1]) }), x)
		}
	}
	// general Gather with unsorted, repeated indices
	compareOnBackends(t, "gather", one(func(xs []*Node) *Node {
		idx := Const(xs[0].Graph(), [][]int32{{2}, {0}, {2}, {1}})
		return Gather(TransposeAllDims(xs[0], 1, 0, 2, 3), idx)
	}), x)
	compareOnBackends(t, "gather2", one(func(xs []*Node) *Node {
		idx := Const(xs[0].Graph(), [][]int64{{1, 2}, {0, 0}, {1, 1}})
		return Gather(xs[0], idx)
	}), x)
	compareOnBackends(t, "iota-where", one(func(xs []*Node) *Node {
		io := Iota(xs[0].Graph(), xs[0].Shape(), 3)
		return Where(GreaterThan(ConvertDType(io, dtypes.Float32), xs[0]), xs[0], Neg(xs[0]))
	}), x)
	q := make([]int8, 60)
	for i := range q {
		q[i] = int8(rng.IntN(255) - 127)
	}
	compareOnBackends(t, "convert-int8", one(func(xs []*Node) *Node {
		return Mul(ConvertDType(xs[0], dtypes.Float32), Const(xs[0].Graph(), float32(0.5)))
	}), tensors.FromFlatDataAndDimensions(q, 6, 10))
}

// sliceRangeLike is cast's sliceRange: a Gather along axis moved first.
func sliceRangeLike(x *Node, axis, start, end int) *Node {
	rank := x.Rank()
	perm := []int{axis}
	for i := 0; i < rank; i++ {
		if i != axis {
			perm = append(perm, i)
		}
	}
	inv := make([]int, rank)
	for i, p := range perm {
		inv[p] = i
	}
	xt := x
	if axis != 0 {
		xt = TransposeAllDims(x, perm...)
	}
	idx := make([][]int32, end-start)
	for i := range idx {
		idx[i] = []int32{int32(start + i)}
	}
	y := Gather(xt, Const(x.Graph(), idx), true)
	if axis != 0 {
		y = TransposeAllDims(y, inv...)
	}
	return y
}

func TestReduce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	x := randTensor(rng, false, 3, 4, 5)
	for _, axes := range [][]int{{0}, {1}, {2}, {0, 2}, {0, 1, 2}} {
		compareOnBackends(t, "sum", one(func(xs []*Node) *Node { return ReduceSum(xs[0], axes...) }), x)
		compareOnBackends(t, "max", one(func(xs []*Node) *Node { return ReduceMax(xs[0], axes...) }), x)
		compareOnBackends(t, "mean", one(func(xs []*Node) *Node { return ReduceMean(xs[0], axes...) }), x)
	}
	compareOnBackends(t, "softmax", one(func(xs []*Node) *Node { return Softmax(xs[0], -1) }), x)
	compareOnBackends(t, "softmax0", one(func(xs []*Node) *Node { return Softmax(xs[0], 0) }), x)
}

func TestDotGeneral(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	cases := []struct {
		l, r           []int
		lc, lb, rc, rb []int
	}{
		{[]int{4, 5}, []int{5, 6}, []int{1}, nil, []int{0}, nil},
		{[]int{5, 4}, []int{5, 6}, []int{0}, nil, []int{0}, nil},
		{[]int{4, 5}, []int{6, 5}, []int{1}, nil, []int{1}, nil},
		{[]int{2, 3, 4, 5}, []int{2, 7, 4, 5}, []int{3}, []int{0, 2}, []int{3}, []int{0, 2}},
		{[]int{2, 4, 3, 7}, []int{2, 7, 4, 5}, []int{3}, []int{0, 1}, []int{1}, []int{0, 2}},
		{[]int{3, 2, 5, 4}, []int{4, 3, 5}, []int{2, 3}, []int{0}, []int{2, 0}, []int{1}},
		{[]int{2, 9, 6}, []int{10, 6}, []int{2}, nil, []int{1}, nil},
	}
	for _, c := range cases {
		l, r := randTensor(rng, false, c.l...), randTensor(rng, false, c.r...)
		compareOnBackends(t, "dot", one(func(xs []*Node) *Node {
			return DotGeneral(xs[0], c.lc, c.lb, xs[1], c.rc, c.rb)
		}), l, r)
	}
	// a weight-like parameter: packed once, with bias + GELU / QuickGELU + scale + residual epilogues
	x, w, b, res := randTensor(rng, false, 2, 9, 6), randTensor(rng, false, 10, 6), randTensor(rng, false, 10), randTensor(rng, false, 2, 9, 10)
	compareOnBackends(t, "linear-gelu", func(xs []*Node) []*Node {
		y := Add(DotGeneral(xs[0], []int{2}, nil, xs[1], []int{1}, nil), ExpandAxes(xs[2], 0, 1))
		g := Mul(MulScalar(y, 0.5), OnePlus(Erf(MulScalar(y, 1/math.Sqrt2))))
		return []*Node{Add(xs[3], MulScalar(g, 0.5))}
	}, x, w, b, res)
	compareOnBackends(t, "linear-quickgelu", func(xs []*Node) []*Node {
		y := Add(DotGeneral(xs[0], []int{2}, nil, xs[1], []int{1}, nil), ExpandAxes(xs[2], 0, 1))
		return []*Node{Add(Mul(y, Sigmoid(MulScalar(y, 1.702))), xs[3])}
	}, x, w, b, res)
	compareOnBackends(t, "linear-intermediate-output", func(xs []*Node) []*Node {
		y := Add(DotGeneral(xs[0], []int{2}, nil, xs[1], []int{1}, nil), ExpandAxes(xs[2], 0, 1))
		return []*Node{y, Add(xs[3], y)}
	}, x, w, b, res)
}

func TestAttentionAndLayerNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	qkv := randTensor(rng, false, 2, 7, 3*2*4)
	compareOnBackends(t, "attention", one(func(xs []*Node) *Node {
		x := Reshape(xs[0], 2, 7, 3, 2, 4)
		q := Squeeze(sliceRangeLike(x, 2, 0, 1), 2)
		k := Squeeze(sliceRangeLike(x, 2, 1, 2), 2)
		v := Squeeze(sliceRangeLike(x, 2, 2, 3), 2)
		q = MulScalar(q, 0.5)
		s := DotGeneral(q, []int{3}, []int{0, 2}, k, []int{3}, []int{0, 2})
		p := Softmax(s, -1)
		o := DotGeneral(p, []int{3}, []int{0, 1}, v, []int{1}, []int{0, 2})
		return Reshape(TransposeAllDims(o, 0, 2, 1, 3), 2, 7, 8)
	}), qkv)
	x, g, b := randTensor(rng, false, 3, 5, 16), randTensor(rng, false, 16), randTensor(rng, false, 16)
	compareOnBackends(t, "layernorm", one(func(xs []*Node) *Node {
		mean := ReduceAndKeep(xs[0], ReduceMean, -1)
		xc := Sub(xs[0], mean)
		variance := ReduceAndKeep(Square(xc), ReduceMean, -1)
		y := Div(xc, Sqrt(AddScalar(variance, 1e-5)))
		return Add(Mul(y, ExpandAxes(xs[1], 0, 1)), ExpandAxes(xs[2], 0, 1))
	}), x, g, b)
}

// TestUnsupportedOp checks that an op castgo does not implement fails when the graph is built, naming it.
func TestUnsupportedOp(t *testing.T) {
	_, cg := backendsForTest(t)
	e, err := NewExec(cg, func(x *Node) *Node { return BitwiseNot(x) }) // (ArgMinMax is implemented for training now)
	if err == nil {
		_, err = e.Exec(tensors.FromValue([]int32{1, 3, 2}))
	}
	if err == nil || !strings.Contains(err.Error(), "BitwiseNot") {
		t.Fatalf("want an error naming BitwiseNot, got %v", err)
	}
}

// TestPatternFallbacks checks patterns whose intermediates are also graph outputs: the fused step must not
// be used (or must still produce the intermediates), and every output must match simplego.
func TestPatternFallbacks(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	qkv := randTensor(rng, false, 2, 5, 3*2*4)
	compareOnBackends(t, "attention-with-probs-output", func(xs []*Node) []*Node {
		x := Reshape(xs[0], 2, 5, 3, 2, 4)
		q := Squeeze(sliceRangeLike(x, 2, 0, 1), 2)
		k := Squeeze(sliceRangeLike(x, 2, 1, 2), 2)
		v := Squeeze(sliceRangeLike(x, 2, 2, 3), 2)
		s := DotGeneral(MulScalar(q, 0.3), []int{3}, []int{0, 2}, k, []int{3}, []int{0, 2})
		p := Softmax(s, -1)
		o := DotGeneral(p, []int{3}, []int{0, 1}, v, []int{1}, []int{0, 2})
		return []*Node{o, p}
	}, qkv)
	x, g, b := randTensor(rng, false, 4, 8), randTensor(rng, false, 8), randTensor(rng, false, 8)
	compareOnBackends(t, "layernorm-with-variance-output", func(xs []*Node) []*Node {
		mean := ReduceAndKeep(xs[0], ReduceMean, -1)
		xc := Sub(xs[0], mean)
		variance := ReduceAndKeep(Square(xc), ReduceMean, -1)
		y := Div(xc, Sqrt(AddScalar(variance, 1e-6)))
		return []*Node{Add(Mul(y, ExpandAxes(xs[1], 0)), ExpandAxes(xs[2], 0)), variance}
	}, x, g, b)
	compareOnBackends(t, "softmax-standalone", one(func(xs []*Node) *Node { return Softmax(MulScalar(xs[0], 3), -1) }), x)
}

func TestLargeStridedCopy(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	x := randTensor(rng, false, 3, 40, 30, 20)
	compareOnBackends(t, "large-transpose", one(func(xs []*Node) *Node { return TransposeAllDims(xs[0], 2, 0, 3, 1) }), x)
}

// TestAttentionProbsWithOtherConsumers: attention probabilities that feed P·V and also a one-input op (a mean
// over heads, as an explanation map takes) compile and match simplego (the training fusion once read a second
// input of every consumer of P and panicked).
func TestAttentionProbsWithOtherConsumers(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const b, l, h, hd = 2, 5, 3, 4
	compareOnBackends(t, "probs consumed by P·V and a head mean", func(xs []*Node) []*Node {
		q, k, v := xs[0], xs[1], xs[2]                                           // [b, l, h, hd]
		scores := DotGeneral(q, []int{3}, []int{0, 2}, k, []int{3}, []int{0, 2}) // [b, h, l, l]
		probs := Softmax(scores, -1)
		o := DotGeneral(probs, []int{3}, []int{0, 1}, v, []int{1}, []int{0, 2}) // [b, h, l, hd]
		return []*Node{o, ReduceMean(probs, 1)}
	}, randTensor(rng, false, b, l, h, hd), randTensor(rng, false, b, l, h, hd), randTensor(rng, false, b, l, h, hd))
}
