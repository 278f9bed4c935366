package cast_test

import (
	"math"
	"testing"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/castvideo/castgo/internal/golden"
	"github.com/castvideo/castgo/internal/npy"
)

// hashWeights rebuilds a golden model's weights from the recipe in its config.json.
func hashWeights(cfg cast.Config, seed int) weights.Set {
	set := weights.Set{}
	for _, s := range cfg.StateDict() {
		set[s.Name] = weights.NewF32(s.Shape, hashinit.Tensor(seed, s.Name, s.Shape))
	}
	return set
}

func readNPY(t testing.TB, elem ...string) ([]int, []float32) {
	t.Helper()
	a, err := npy.ReadFile(golden.Path(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return a.Shape, v
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// newGoModel loads a model on the default pure-Go backend (castgo).
func newGoModel(t testing.TB, cfg cast.Config, set weights.Set) *infer.Model {
	t.Helper()
	return newModelOn(t, "go", cfg, set)
}

// newModelOn loads a model on the backend called name (see infer.NewBackend).
func newModelOn(t testing.TB, name string, cfg cast.Config, set weights.Set) *infer.Model {
	t.Helper()
	b, _, err := infer.NewBackend(name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := infer.New(b, cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTinyParity runs the tiny golden model (hash-recipe weights) and compares the logits and every
// intermediate the goldens store, so that a mismatch is localised to a module.
func TestTinyParity(t *testing.T) {
	cfg := golden.Config(t, "tiny")
	m := newGoModel(t, cfg, hashWeights(cfg, 1))
	shape, x := readNPY(t, "goldens", "tiny", "input.npy")
	want := map[string][]float32{}
	z, err := npy.ReadNPZ(golden.Path(t, "goldens", "tiny", "intermediates.npz"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	goldNames := map[string]string{}
	for k := range z {
		// keys look like "blocks.0.t2s_cross.out[N+1,BT,D/r]"
		base := k
		if i := indexByte(k, '['); i >= 0 {
			base = k[:i]
		}
		if base == "vmae_sinusoid_pos_embed" {
			continue
		}
		names = append(names, base)
		goldNames[base] = k
	}
	got, dims, err := m.Taps(x, shape[0], names)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		a := z[goldNames[n]]
		w, err := a.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		g := got[n]
		if len(a.Shape) == 3 && a.Shape[0] == cast.PatchesPerFrame+1 {
			g = tokenMajor(g, dims[n])
		}
		if len(g) != len(w) {
			t.Errorf("%s: got %d values (dims %v), golden %v", n, len(g), dims[n], a.Shape)
			continue
		}
		want[n] = w
		var scale float64
		for _, v := range w {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		if d := maxAbsDiff(g, w); d > 1e-4*math.Max(scale, 1) {
			t.Errorf("%s: max |Δ| = %.3g (max |x| = %.3g)", n, d, scale)
		}
	}
	_, wantLogits := readNPY(t, "goldens", "tiny", "logits.npy")
	logits, err := m.Run(x, shape[0])
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(logits[0], wantLogits); d > 1e-4 {
		t.Errorf("logits: max |Δ| = %.3g > 1e-4", d)
	} else {
		t.Logf("tiny logits: max |Δ| = %.3g", d)
	}
}

// tokenMajor permutes a batch-first CLIP-stream tensor [BT, N+1, C] to the goldens' [N+1, BT, C].
func tokenMajor(x []float32, dims []int) []float32 {
	bt, n, c := dims[0], dims[1], dims[2]
	out := make([]float32, len(x))
	for i := 0; i < bt; i++ {
		for j := 0; j < n; j++ {
			copy(out[(j*bt+i)*c:(j*bt+i+1)*c], x[(i*n+j)*c:(i*n+j+1)*c])
		}
	}
	return out
}

func indexByte(s string, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}

// TestLogitsParity compares every logit of each golden model, weights rebuilt from the hash recipe of its
// config.json, at the tolerances of CAST.md §B.4, on the default backend (castgo); tiny is also run on
// simplego as an independent cross-check of the goldens and of castgo. base (~390 GMAC) runs on castgo only.
func TestLogitsParity(t *testing.T) {
	cases := []struct {
		name       string
		backend    string
		weightSeed int
		tol        float64
		outputs    []string // golden logits files in Config.Heads() order
	}{
		{"tiny", "go", 1, 1e-4, []string{"logits.npy"}},
		{"tiny", "simplego", 1, 1e-4, []string{"logits.npy"}},
		{"tiny_compo", "go", 3, 1e-4, []string{"logits_noun.npy", "logits_verb.npy"}},
		{"small", "go", 4, 5e-4, []string{"logits.npy"}},
		{"base", "go", 5, 5e-4, []string{"logits.npy"}},
	}
	for _, c := range cases {
		t.Run(c.name+"/"+c.backend, func(t *testing.T) {
			if testing.Short() && c.name == "base" {
				t.Skip("base takes minutes; run without -short")
			}
			cfg := golden.Config(t, c.name)
			m := newModelOn(t, c.backend, cfg, hashWeights(cfg, c.weightSeed))
			shape, x := readNPY(t, "goldens", c.name, "input.npy")
			got, err := m.Run(x, shape[0])
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range c.outputs {
				_, want := readNPY(t, "goldens", c.name, f)
				if len(got[i]) != len(want) {
					t.Fatalf("%s: %d logits, golden has %d", f, len(got[i]), len(want))
				}
				d := maxAbsDiff(got[i], want)
				if d > c.tol {
					t.Errorf("%s: max |Δlogit| = %.3g > %.0e", f, d, c.tol)
				}
				t.Logf("%s %s on %s: max |Δlogit| = %.3g (tolerance %.0e)", c.name, f, c.backend, d, c.tol)
			}
		})
	}
}
