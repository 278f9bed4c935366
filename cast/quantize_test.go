package cast_test

import (
	"math"
	"sort"
	"testing"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/internal/golden"
)

// quantStats compares int8 logits q with float32 logits f, row by row ([rows, classes]).
type quantStats struct {
	maxAbs, relL2 float64
	top1Agree     int // rows whose argmax matches
	top5Overlap   float64
	rows          int
}

func compareLogits(q, f []float32, classes int) quantStats {
	s := quantStats{rows: len(f) / classes}
	var num, den float64
	for i := range f {
		d := float64(q[i] - f[i])
		s.maxAbs = math.Max(s.maxAbs, math.Abs(d))
		num += d * d
		den += float64(f[i]) * float64(f[i])
	}
	s.relL2 = math.Sqrt(num / den)
	for r := 0; r < s.rows; r++ {
		tq, tf := topIdx(q[r*classes:(r+1)*classes], 5), topIdx(f[r*classes:(r+1)*classes], 5)
		if tq[0] == tf[0] {
			s.top1Agree++
		}
		common := 0
		for _, a := range tq {
			for _, b := range tf {
				if a == b {
					common++
				}
			}
		}
		s.top5Overlap += float64(common) / float64(len(tf)) / float64(s.rows)
	}
	return s
}

func topIdx(x []float32, k int) []int {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] > x[idx[b]] })
	return idx[:min(k, len(idx))]
}

// TestInt8Accuracy quantizes each golden model (per-output-channel symmetric int8 for every Linear and
// patch-embedding weight) and checks its logits against the official float32 logits: relative L2 error at
// most 2% and the same top-1 on every golden clip (issue: "Accuracy of int8, measured and enforced").
func TestInt8Accuracy(t *testing.T) {
	cases := []struct {
		name       string
		weightSeed int
		outputs    []string
	}{
		{"tiny", 1, []string{"logits.npy"}},
		{"tiny_compo", 3, []string{"logits_noun.npy", "logits_verb.npy"}},
		{"small", 4, []string{"logits.npy"}},
		{"base", 5, []string{"logits.npy"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if testing.Short() && c.name == "base" {
				t.Skip("base takes minutes; run without -short")
			}
			cfg := golden.Config(t, c.name)
			w := hashWeights(cfg, c.weightSeed)
			fp32Bytes := w.Bytes()
			q, err := cast.QuantizeInt8(w, nil)
			if err != nil {
				t.Fatal(err)
			}
			m := newGoModel(t, cfg, q)
			shape, x := readNPY(t, "goldens", c.name, "input.npy")
			got, err := m.Run(x, shape[0])
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range c.outputs {
				_, want := readNPY(t, "goldens", c.name, f)
				classes := cfg.HeadClasses()[i]
				s := compareLogits(got[i], want, classes)
				t.Logf("%s %s int8 vs fp32: max|Δ| %.4f, rel L2 %.3f%%, top-1 %d/%d, top-5 overlap %.0f%%; weights %.1f → %.1f MB",
					c.name, f, s.maxAbs, 100*s.relL2, s.top1Agree, s.rows, 100*s.top5Overlap, float64(fp32Bytes)/1e6, float64(q.Bytes())/1e6)
				if s.relL2 > 0.02 {
					t.Errorf("%s: relative L2 error %.3f%% > 2%%", f, 100*s.relL2)
				}
				if s.top1Agree != s.rows {
					t.Errorf("%s: top-1 differs on %d of %d clips", f, s.rows-s.top1Agree, s.rows)
				}
			}
		})
	}
}
