package classify

import "testing"

func TestRank(t *testing.T) {
	p := []float64{0.1, 0.5, 0.1, 0.3}
	for label, want := range map[int]int{1: 0, 3: 1, 0: 2, 2: 3} {
		if got := Rank(p, label); got != want {
			t.Errorf("Rank(%d) = %d, want %d", label, got, want)
		}
		// Rank agrees with the order TopK lists the classes in.
		if top := TopK(p, nil, 4); top[want].Index != label {
			t.Errorf("TopK lists %d at %d, Rank says %d", top[want].Index, want, label)
		}
	}
	verb, noun := []float64{0.6, 0.4}, []float64{0.2, 0.7, 0.1}
	// Pair scores: (0,1)=.42 (1,1)=.28 (0,0)=.12 (1,0)=.08 (0,2)=.06 (1,2)=.04
	for pair, want := range map[[2]int]int{{0, 1}: 0, {1, 1}: 1, {0, 0}: 2, {1, 0}: 3, {0, 2}: 4, {1, 2}: 5} {
		if got := ActionRank(verb, noun, pair[0], pair[1]); got != want {
			t.Errorf("ActionRank%v = %d, want %d", pair, got, want)
		}
	}
	if got := ActionRank(verb, noun, 0, 1); got != Rank([]float64{.12, .42, .06, .08, .28, .04}, 1) {
		t.Errorf("ActionRank disagrees with Rank over the flattened pair scores")
	}
}

func TestFactorHits(t *testing.T) {
	// 16 classes as 4 whats × 4 hows: label = 4·what + how.
	probs := func(top int) []float64 {
		p := make([]float64, 16)
		for i := range p {
			p[i] = 0.01
		}
		p[top] = 0.5
		return p
	}
	for _, c := range []struct{ pred, label, what, how int }{
		{5, 5, 1, 1},   // right class
		{6, 5, 1, 0},   // same what (1), wrong how
		{9, 5, 0, 1},   // wrong what (2), same how (1)
		{14, 5, 0, 0},  // both wrong
		{0, 12, 0, 1},  // what 0 vs 3, how 0 = 0
		{15, 12, 1, 0}, // what 3, how 3 vs 0
	} {
		if w, h := FactorHits(probs(c.pred), c.label, 4); w != c.what || h != c.how {
			t.Errorf("prediction %d, label %d: what %d how %d, want %d %d", c.pred, c.label, w, h, c.what, c.how)
		}
	}
	// A tie goes to the lower class, as in Rank: classes 3 and 4 tie, so the prediction is 3 (what 0, how 3),
	// against label 0 a right what and a wrong how (4 would give the opposite).
	tie := make([]float64, 16)
	tie[3], tie[4] = 0.5, 0.5
	if w, h := FactorHits(tie, 0, 4); w != 1 || h != 0 {
		t.Errorf("tie: what %d how %d, want 1 0", w, h)
	}
	// 8 classes as 2 whats × 4 hows.
	if w, h := FactorHits(probs(6)[:8], 2, 4); w != 0 || h != 1 {
		t.Errorf("2x4: what %d how %d, want 0 1", w, h)
	}
}
