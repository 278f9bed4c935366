package explain

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/synth"
)

// TestLogitsMatchRun checks that the maps' graph computes the same logits as the model's own graph (which
// castgo fuses differently) and that every map has the expected frames.
func TestLogitsMatchRun(t *testing.T) {
	clf, e := loadDefault(t)
	cfg := clf.Meta.Config
	frames, _ := synth.Clip(pointingSeed, 3, synth.Options{})
	fm := map[int]preprocess.Frame{}
	for i, f := range frames {
		fm[i] = f
	}
	views, err := Plan(clf, len(frames), frames[0].Width, frames[0].Height, "")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, preprocess.TensorLen(cfg.ImgSize, cfg.AllFrames))
	if err := preprocess.ClipTensor(fm, views[0], cfg.ImgSize, x); err != nil {
		t.Fatal(err)
	}
	want, err := clf.Model.Run(x, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Explain(x, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range want[0] {
		if d := math.Abs(float64(got.Logits[0][k] - w)); d > 1e-4 {
			t.Fatalf("logit %d: %v, the model's graph gives %v", k, got.Logits[0][k], w)
		}
	}
	if got.Class != argmax(want[0]) {
		t.Errorf("class %d, want %d", got.Class, argmax(want[0]))
	}
	for _, m := range Methods {
		grids := got.Grids[m]
		if len(grids) != cfg.AllFrames {
			t.Fatalf("%s: %d frames, want %d", m, len(grids), cfg.AllFrames)
		}
		for k, g := range grids {
			if wantNil := m == MethodSpatial && k%2 == 0; (g == nil) != wantNil {
				t.Errorf("%s frame %d: map %v, want nil: %v", m, k, g != nil, wantNil)
			}
			if g != nil && len(g) != cast.PatchesPerFrame {
				t.Errorf("%s frame %d: %d cells", m, k, len(g))
			}
		}
	}
}

// stochastic returns rows×cols random probabilities (each row sums to 1), with column zero left empty when
// noFirst is set.
func stochastic(rng *rand.Rand, batch, rows, cols int, noFirst bool) []float32 {
	out := make([]float32, batch*rows*cols)
	for r := range batch * rows {
		row := out[r*cols : (r+1)*cols]
		var s float32
		for c := range row {
			if c == 0 && noFirst {
				continue
			}
			row[c] = rng.Float32()
			s += row[c]
		}
		for c := range row {
			row[c] /= s
		}
	}
	return out
}

// TestCASTRolloutConservesRelevance: with row-stochastic attentions, the rollout moves relevance around
// without creating or losing any. No CLIP token attends to a class token here, so the class tokens' half
// of the relevance halves in each block's self-attention and the patches and tubelets hold the rest:
// 1 - 0.5·0.5² after two blocks (up to float32 rounding of the probabilities).
func TestCASTRolloutConservesRelevance(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const ts, tt, n, depth = 2, 2, cast.PatchesPerFrame, 2
	a := &attn{ts: ts, tt: tt, n: n}
	for range depth {
		a.clip = append(a.clip, stochastic(rng, ts, n+1, n+1, true))
		a.vmae = append(a.vmae, stochastic(rng, 1, tt*n, tt*n, false))
		a.t2s = append(a.t2s, stochastic(rng, n, ts, tt, false))
		a.s2t = append(a.s2t, stochastic(rng, tt, n, n, false))
	}
	sum := func(m [][]float64) (s float64) {
		for _, r := range m {
			for _, v := range r {
				if v < 0 {
					t.Fatalf("negative relevance %v", v)
				}
				s += v
			}
		}
		return s
	}
	s, tub := a.castRollout()
	if got, want := sum(s)+sum(tub), 1-0.5*0.25; math.Abs(got-want) > 1e-6 {
		t.Errorf("cast-rollout holds %v of the relevance on the patches, want %v", got, want)
	}
	if got := sum(a.temporalRollout()); math.Abs(got-1) > 1e-6 {
		t.Errorf("temporal-rollout holds %v, want 1", got)
	}
	if got, want := sum(a.spatialRollout()), float64(ts)*(1-0.25); math.Abs(got-want) > 1e-6 {
		t.Errorf("spatial-rollout holds %v, want %v (each frame's class token keeps a quarter)", got, want)
	}
}

func TestParseMethods(t *testing.T) {
	got, err := ParseMethods([]string{"grad-cam,spatial-rollout", "grad-cam"})
	if err != nil || strings.Join(got, " ") != "grad-cam spatial-rollout" {
		t.Errorf("got %v, %v", got, err)
	}
	if got, err := ParseMethods(nil); err != nil || len(got) != len(Methods) {
		t.Errorf("default: %v, %v", got, err)
	}
	if _, err := ParseMethods([]string{"attention"}); err == nil || !strings.Contains(err.Error(), "unknown method \"attention\"") {
		t.Errorf("unknown method: %v", err)
	}
}

func TestRectAndPointing(t *testing.T) {
	// A 320×240 video resized to 74×56 for a 56-pixel model: the centre crop starts at x = 9.
	v := preprocess.View{X0: 9, Y0: 0}
	r := Rect(v, 320, 240, 56)
	if want := [4]float64{38.92, 0, 281.08, 240}; r != want {
		t.Fatalf("rect %v, want %v", r, want)
	}
	grid := make([][]float64, cast.Grid)
	for i := range grid {
		grid[i] = make([]float64, cast.Grid)
	}
	m := Map{Rect: [4]float64{0, 0, 56, 56}, Grid: grid} // 4-pixel cells
	grid[3][5] = 1                                       // the cell x 20…24, y 12…16, centre (22, 14)
	for _, tc := range []struct {
		box [4]int
		hit bool
	}{
		{[4]int{20, 12, 24, 16}, true},
		{[4]int{24, 16, 30, 30}, true},  // grown by 2 pixels, the box reaches the centre
		{[4]int{25, 17, 30, 30}, false}, // 3 pixels away
		{[4]int{0, 0, 19, 11}, false},
	} {
		if got := Hit(m, tc.box); got != tc.hit {
			t.Errorf("box %v: hit %v, want %v", tc.box, got, tc.hit)
		}
	}
	// An 8×8-pixel box on cell boundaries grown by half a cell (6…18) holds the centres of its 2×2 cells
	// and, on its edges, of the ring around them: 4×4 of 196.
	if got, want := Chance(m, [4]int{8, 8, 16, 16}), 16.0/196; math.Abs(got-want) > 1e-12 {
		t.Errorf("chance %v, want %v", got, want)
	}
}
