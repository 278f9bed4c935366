package cpu

import (
	"fmt"

	"github.com/castvideo/castgo/backend/plan"
)

// SetChainRows makes the GEMM chains of the programs lowered from now on run blocks of rows rows (0: no
// chains); restore puts the default back.
func SetChainRows(rows int) (restore func()) {
	old := chainRows
	chainRows = func(int) int { return rows }
	return func() { chainRows = old }
}

// Chains is the number of GEMM chains Lower finds in p.
func Chains(p *plan.Plan) int {
	n := 0
	for _, i := range gemmChains(p) {
		if i >= 0 {
			n++
		}
	}
	return n
}

// ArenaBytes is the arena size of p lowered with the current chain setting.
func ArenaBytes(p *plan.Plan) (int, error) {
	prog, err := Lower(p, NewPackCache(), Options{})
	if err != nil {
		return 0, err
	}
	return prog.ArenaBytes(), nil
}

// CheckArena lowers p and checks its arena layout: no two blocks alive at a common step (by the program's
// releases) overlap, and every block lies inside the arena.
func CheckArena(p *plan.Plan) error {
	prog, err := Lower(p, NewPackCache(), Options{})
	if err != nil {
		return err
	}
	freed := map[int]int{}
	for i, rs := range prog.release {
		for _, r := range rs {
			freed[r] = i
		}
	}
	var items []arenaItem
	for i, st := range p.Steps {
		if off := prog.lay.scratch[i]; off >= 0 {
			g := p.Steps[gemmChains(p)[i]].Kind.(*plan.Gemm)
			items = append(items, arenaItem{key: -1 - i, size: chainRows(g.N) * g.N, first: i, last: i, off: off})
		}
		for _, n := range allocations(st) {
			if off := prog.lay.slot[n.ID]; off >= 0 {
				items = append(items, arenaItem{key: n.ID, size: n.Shape.Size(), first: i, last: freed[n.ID], off: off})
			}
		}
	}
	for i, a := range items {
		if a.off+a.size > prog.lay.size {
			return fmt.Errorf("block %d (%d values at %d) ends past the arena (%d)", a.key, a.size, a.off, prog.lay.size)
		}
		for _, b := range items[:i] {
			if a.first <= b.last && b.first <= a.last && a.off < b.off+b.size && b.off < a.off+a.size {
				return fmt.Errorf("blocks %d (steps %d–%d) and %d (steps %d–%d) overlap", a.key, a.first, a.last, b.key, b.first, b.last)
			}
		}
	}
	if len(items) == 0 {
		return fmt.Errorf("no block in the arena")
	}
	return nil
}
