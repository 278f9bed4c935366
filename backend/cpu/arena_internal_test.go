package cpu

import (
	"math/rand/v2"
	"testing"
)

// TestPlaceItems checks the arena's placement on random lifetimes: blocks alive at a common step never
// overlap, offsets are aligned, and the arena is at least the largest sum of blocks alive at one step and at
// most the sum of all blocks.
func TestPlaceItems(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := range 200 {
		steps := 1 + rng.IntN(40)
		items := make([]arenaItem, rng.IntN(60))
		total := 0
		for i := range items {
			first := rng.IntN(steps)
			last := first + rng.IntN(steps-first)
			size := 1 + rng.IntN(1000)
			if rng.IntN(8) == 0 {
				size *= 100
			}
			items[i] = arenaItem{key: i, size: size, first: first, last: last}
			total += alignUp(size)
		}
		size := placeItems(items)
		peak := 0
		for s := range steps {
			live := 0
			for _, it := range items {
				if it.first <= s && s <= it.last {
					live += alignUp(it.size)
				}
			}
			peak = max(peak, live)
		}
		if size < peak || size > total {
			t.Fatalf("trial %d: arena %d, live peak %d, sum %d", trial, size, peak, total)
		}
		for i, a := range items {
			if a.off%arenaAlign != 0 || a.off < 0 || a.off+a.size > size {
				t.Fatalf("trial %d: item %d at %d (+%d) in an arena of %d", trial, i, a.off, a.size, size)
			}
			for j, b := range items[:i] {
				if a.first <= b.last && b.first <= a.last && a.off < b.off+b.size && b.off < a.off+a.size {
					t.Fatalf("trial %d: items %d [%d,%d]@%d+%d and %d [%d,%d]@%d+%d overlap", trial,
						i, a.first, a.last, a.off, a.size, j, b.first, b.last, b.off, b.size)
				}
			}
		}
	}
}
