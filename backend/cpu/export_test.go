package cpu

import "github.com/castvideo/castgo/backend/plan"

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
	prog, err := Lower(p, NewPackCache())
	if err != nil {
		return 0, err
	}
	return prog.ArenaBytes(), nil
}
