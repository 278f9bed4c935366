package backend_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/castvideo/castgo/backend"
	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// weightOnDevice puts a copy of w on b as an unshared buffer, the way a stage keeps its weights.
func weightOnDevice(t *testing.T, b backends.Backend, w *tensors.Tensor) (*tensors.Tensor, backends.Buffer) {
	t.Helper()
	buf, err := b.BufferFromFlatData(0, tensors.MustCopyFlatData[float32](w), w.Shape())
	if err != nil {
		t.Fatal(err)
	}
	dev, err := tensors.FromBuffer(b, buf)
	if err != nil {
		t.Fatal(err)
	}
	return dev, buf
}

// clone is a local copy of x, for another backend.
func clone(t *testing.T, x *tensors.Tensor) *tensors.Tensor {
	t.Helper()
	c, err := x.LocalClone()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReleasePacked: with the releasepacked option a weight read only by a packed GEMM gives the same
// results on every run while its data is gone (reading it back fails with a clear error), and a weight
// that another op also reads keeps its data.
func TestReleasePacked(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	x1, x2 := randTensor(rng, false, 2, 9, 6), randTensor(rng, false, 2, 9, 6)
	w, bias := randTensor(rng, false, 10, 6), randTensor(rng, false, 10)
	linear := func(xs []*Node) []*Node {
		return []*Node{Add(DotGeneral(xs[0], []int{2}, nil, xs[1], []int{1}, nil), ExpandAxes(xs[2], 0, 1))}
	}
	linearAndSum := func(xs []*Node) []*Node {
		return append(linear(xs), ReduceAllSum(xs[1]))
	}
	run := func(b backends.Backend, fn func([]*Node) []*Node, wt *tensors.Tensor, xs ...*tensors.Tensor) [][]float32 {
		t.Helper()
		e, err := NewExecAny(b, fn)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]float32
		for _, x := range xs {
			res, err := e.Exec(clone(t, x), wt, clone(t, bias))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				out = append(out, tensors.MustCopyFlatData[float32](r))
			}
		}
		return out
	}
	plain, err := backend.New("")
	if err != nil {
		t.Fatal(err)
	}
	release, err := backend.New("releasepacked")
	if err != nil {
		t.Fatal(err)
	}

	want := run(plain, linear, clone(t, w), x1, x2)
	wt, buf := weightOnDevice(t, release, w)
	got := run(release, linear, wt, x1, x2)
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("output %d with releasepacked differs from the plain backend", i)
		}
	}
	err = release.BufferToFlatData(buf, make([]float32, 60))
	if err == nil || !strings.Contains(err.Error(), "released once packed") {
		t.Errorf("reading a released weight back: error %v, want one saying it was released once packed", err)
	}

	// a graph that reads the released weight otherwise is refused, not run on empty data
	sum, err := NewExecAny(release, func(xs []*Node) *Node { return ReduceAllSum(xs[0]) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sum.Exec(wt); err == nil || !strings.Contains(err.Error(), "released once packed") {
		t.Errorf("summing a released weight: error %v, want one saying it was released once packed", err)
	}

	// the same weight read by a reduction too keeps its data
	want = run(plain, linearAndSum, clone(t, w), x1, x2)
	wt2, buf2 := weightOnDevice(t, release, w)
	got = run(release, linearAndSum, wt2, x1, x2)
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("output %d of linear+sum with releasepacked differs from the plain backend", i)
		}
	}
	back := make([]float32, 60)
	if err := release.BufferToFlatData(buf2, back); err != nil {
		t.Fatalf("a weight another op reads was released: %v", err)
	}
	if !slices.Equal(back, tensors.MustCopyFlatData[float32](w)) {
		t.Error("a weight another op reads changed")
	}
}
