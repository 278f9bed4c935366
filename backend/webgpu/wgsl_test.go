package webgpu

import (
	"strings"
	"testing"

	"github.com/castvideo/castgo/backend/plan"
)

// TestGemmShaderFragments checks that the GEMM kernel is completed from its fragment files: no placeholder
// is left, the fragment's comment line is not spliced in, and each weight type gets its own load.
func TestGemmShaderFragments(t *testing.T) {
	lhs := &plan.Node{ID: 0}
	w := &plan.Node{ID: 1}
	addr := func(n *plan.Node) (int, int, error) { return n.ID, 0, nil }
	for _, int8 := range []bool{false, true} {
		g := &plan.Gemm{M: 4, K: 8, N: 16, LHS: lhs, W: w, Transposed: true}
		want := "return W[wOff + k * N + j];"
		if int8 {
			g.Scale = &plan.Node{ID: 2}
			want = "extractBits(word, (idx % 4u) * 8u, 8u)"
		}
		ds, err := gemmDispatch(&gpuProgram{}, g, addr)
		if err != nil {
			t.Fatal(err)
		}
		src := ds[0].kernel
		for _, bad := range []string{"WLOAD", "WTYPE", "// WLOAD of gemm.wgsl"} {
			if strings.Contains(src, bad) {
				t.Errorf("int8=%v: the kernel still holds %q", int8, bad)
			}
		}
		if !strings.Contains(src, want) {
			t.Errorf("int8=%v: the kernel lacks its weight load %q", int8, want)
		}
	}
}
