package cpu

import (
	"slices"

	"github.com/castvideo/castgo/backend/plan"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// The arena of a program: every float32 intermediate of an execution lives at an offset of one []float32
// that the program keeps across its executions. The sizes and lifetimes of the intermediates are static
// (the step that allocates each one, and the step after which it is released: Program.release), so their
// offsets are assigned once, when the program is lowered: greedy offset allocation, largest first, at the
// lowest offset that no intermediate alive at the same time holds. An execution then allocates nothing for
// its intermediates, and the arena never fragments.
//
// Not in the arena: the graph's outputs (and any value never released: the caller keeps them after the run,
// so they are allocated on the heap), values of other dtypes, the values generic steps compute (their own
// slices), and the temporaries inside a step (a training DotGeneral's transposes).

// arenaAlign is the alignment of arena offsets, in float32 values (64 bytes: one AVX-512 register, a cache line).
const arenaAlign = 16

// arenaItem is one block of the arena: size values, alive from step first to step last (inclusive).
type arenaItem struct {
	key         int // node id, or -1-step for a step's scratch
	size        int
	first, last int
	off         int
}

// arenaLayout is the placement of a program's intermediates.
type arenaLayout struct {
	slot    []int // arena offset by node id, -1 when the node is not in the arena
	scratch []int // arena offset of each step's scratch, -1 when it has none
	size    int   // values
}

// allocations returns the float32 nodes that the lowered step st allocates for its outputs when it runs
// (the step's own output and the extra outputs it hands over), in no particular order.
func allocations(st *plan.Step) []*plan.Node {
	f32 := func(ns ...*plan.Node) []*plan.Node {
		var out []*plan.Node
		for _, n := range ns {
			if n != nil && n.Shape.DType == dtypes.Float32 {
				out = append(out, n)
			}
		}
		return out
	}
	switch k := st.Kind.(type) {
	case *plan.Handover, *plan.Generic:
		return nil
	case *plan.AttentionWithProbs:
		return f32(st.Out, k.Output)
	case *plan.AttentionBackward:
		return f32(k.DQ, k.DK, k.DV)
	}
	return f32(st.Out)
}

// layoutArena places the intermediates of p: the nodes each step allocates (allocations) that release
// frees after some step, and the scratch each step asks for (scratch[i] values, 0 for none; alive during
// step i only). skip marks steps that allocate nothing (a GEMM whose output its chained GEMM computes in
// row blocks instead).
func layoutArena(p *plan.Plan, release [][]int, scratch []int, skip []bool) arenaLayout {
	nn := len(p.Root)
	lay := arenaLayout{slot: make([]int, nn), scratch: make([]int, len(p.Steps))}
	for i := range lay.slot {
		lay.slot[i] = -1
	}
	for i := range lay.scratch {
		lay.scratch[i] = -1
	}
	freed := make([]int, nn) // step after which a root is released, -1 for never
	for i := range freed {
		freed[i] = -1
	}
	for i, rs := range release {
		for _, r := range rs {
			freed[r] = i
		}
	}
	var items []arenaItem
	for i, st := range p.Steps {
		if scratch[i] > 0 {
			items = append(items, arenaItem{key: -1 - i, size: scratch[i], first: i, last: i})
		}
		if skip[i] {
			continue
		}
		for _, n := range allocations(st) {
			if p.Root[n.ID] != n.ID || freed[n.ID] < i || n.Shape.Size() == 0 {
				continue // kept after the run (an output), or never read: on the heap
			}
			items = append(items, arenaItem{key: n.ID, size: n.Shape.Size(), first: i, last: freed[n.ID]})
		}
	}
	lay.size = placeItems(items)
	for _, it := range items {
		if it.key >= 0 {
			lay.slot[it.key] = it.off
		} else {
			lay.scratch[-1-it.key] = it.off
		}
	}
	return lay
}

// placeItems assigns each item an offset (largest first, at the lowest aligned offset where it overlaps no
// placed item alive at an overlapping step) and returns the arena's size.
func placeItems(items []arenaItem) int {
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if items[a].size != items[b].size {
			return items[b].size - items[a].size
		}
		return items[a].first - items[b].first
	})
	type span struct{ lo, hi int }
	var placed []int
	size := 0
	var busy []span
	for _, i := range order {
		it := &items[i]
		busy = busy[:0]
		for _, j := range placed {
			o := &items[j]
			if o.first <= it.last && it.first <= o.last {
				busy = append(busy, span{o.off, o.off + alignUp(o.size)})
			}
		}
		slices.SortFunc(busy, func(a, b span) int { return a.lo - b.lo })
		off := 0
		for _, s := range busy {
			if off+it.size <= s.lo {
				break
			}
			off = max(off, s.hi)
		}
		it.off = off
		size = max(size, off+alignUp(it.size))
		placed = append(placed, i)
	}
	return size
}

func alignUp(n int) int { return (n + arenaAlign - 1) &^ (arenaAlign - 1) }
