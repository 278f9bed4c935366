package cast_test

import (
	"strings"
	"testing"

	"github.com/castvideo/castgo/internal/golden"
)

// TestModelClose checks that a closed model refuses to run with an error (no crash, no stale result), twice
// closing included, and that it ran before.
func TestModelClose(t *testing.T) {
	cfg := golden.Config(t, "tiny")
	m := newGoModel(t, cfg, hashWeights(cfg, 1))
	shape, x := readNPY(t, "goldens", "tiny", "input.npy")
	_, want := readNPY(t, "goldens", "tiny", "logits.npy")
	got, err := m.Run(x, shape[0])
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(got[0], want); d > 1e-4 {
		t.Fatalf("before Close: max |Δ| %g against the golden logits", d)
	}
	m.Close()
	m.Close()
	if _, err := m.Run(x, shape[0]); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Run after Close: got error %v, want one saying the model was closed", err)
	}
	if _, _, err := m.Taps(x, shape[0], []string{"logits"}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Taps after Close: got error %v, want one saying the model was closed", err)
	}
}
