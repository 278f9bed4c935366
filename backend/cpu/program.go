package cpu

import (
	"reflect"
	"sync"
	"time"

	"github.com/castvideo/castgo/backend/plan"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/pkg/errors"
)

// Program is a plan lowered onto the CPU: one function per step, run in order, with its float32
// intermediates in one arena that the program keeps across executions (arena.go: their offsets are assigned
// once, from the plan's static sizes and lifetimes).
type Program struct {
	plan  *plan.Plan
	runs  []stepFunc
	packs *PackCache
	// packOnly marks the parameters read only as packed GEMM weights (packedOnly): the only ones whose
	// data may have been released (Buffer.Packed).
	packOnly map[int]bool
	// release is the plan's ReleaseAfter, with the releases of a chained GEMM's step moved to the step
	// that runs the chain (chain.go).
	release [][]int
	lay     arenaLayout

	mu    sync.Mutex
	arena []float32 // lay.size values, allocated by the first execution
}

// stepFunc computes the value of one step's output in an execution.
type stepFunc func(e *env) any

// Plan returns the plan p runs.
func (p *Program) Plan() *plan.Plan { return p.plan }

// ArenaBytes is the size of p's arena of intermediates (allocated by its first execution).
func (p *Program) ArenaBytes() int { return 4 * p.lay.size }

// Finalize drops p's arena.
func (p *Program) Finalize() {
	p.mu.Lock()
	p.arena = nil
	p.mu.Unlock()
}

// env is the state of one execution.
type env struct {
	ex     *Program
	vals   []any
	inputs []*Buffer
}

func (e *env) val(n *plan.Node) any {
	r := e.ex.plan.Root[n.ID]
	v := e.vals[r]
	off, size := e.ex.plan.RootOff[n.ID], n.Shape.Size()
	if f, ok := v.([]float32); ok {
		return f[off : off+size]
	}
	if r == n.ID {
		return v
	}
	return reflect.ValueOf(v).Slice(off, off+size).Interface()
}

func (e *env) f32(n *plan.Node) []float32 { return e.val(n).([]float32) }

// alloc returns storage for n's value: allocF32 for float32.
func (e *env) alloc(n *plan.Node) any {
	if n.Shape.DType == dtypes.Float32 {
		return e.allocF32(n)
	}
	return makeFlat(n.Shape.DType, n.Shape.Size())
}

// allocF32 returns the storage of the float32 node n: its block of the arena, or a new slice when n is
// not in the arena (an output). Its contents are not cleared.
func (e *env) allocF32(n *plan.Node) []float32 {
	size := n.Shape.Size()
	if off := e.ex.lay.slot[n.ID]; off >= 0 {
		return e.ex.arena[off : off+size : off+size]
	}
	return make([]float32, size)
}

// scratch returns the arena block of step i's scratch (size values).
func (e *env) scratch(i, size int) []float32 {
	off := e.ex.lay.scratch[i]
	return e.ex.arena[off : off+size : off+size]
}

// temp returns a temporary of size values for use inside one step (not in the arena).
func (e *env) temp(size int) []float32 { return make([]float32, size) }

// release drops a temporary (the garbage collector takes it).
func (e *env) release(any) {}

// Run executes the program on inputs (one per parameter of the plan, shapes already checked by the caller).
func (p *Program) Run(inputs []*Buffer) (outs []*Buffer, err error) {
	pl := p.plan
	if len(inputs) != len(pl.Params) {
		return nil, errors.Errorf("castgo backend: %d inputs given, the graph has %d parameters", len(inputs), len(pl.Params))
	}
	for i, buf := range inputs {
		if buf.Packed && !p.packOnly[i] {
			return nil, errors.Errorf("castgo backend: input #%d (%s, %s) is a weight whose data was released once packed (option releasepacked), and this graph reads it otherwise", i, pl.Params[i].Name, buf.Shape)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.arena == nil && p.lay.size > 0 {
		p.arena = make([]float32, p.lay.size)
	}
	en := &env{ex: p, vals: make([]any, len(pl.Root)), inputs: inputs}
	for i, buf := range inputs {
		en.vals[pl.Params[i].ID] = buf.Flat
	}
	for _, c := range pl.Consts {
		en.vals[c.ID] = c.Data
	}
	step := -1
	defer func() {
		if r := recover(); r != nil {
			if step >= 0 {
				err = errors.Errorf("castgo backend: step %d (%s): %v", step, pl.Steps[step].Label, r)
			} else {
				err = errors.Errorf("castgo backend: %v", r)
			}
		}
	}()
	prof := profiling()
	for i, st := range pl.Steps {
		step = i
		var t0 time.Time
		if prof {
			t0 = time.Now()
		}
		en.vals[st.Out.ID] = p.runs[i](en)
		if prof {
			recordProfile(st.Label, time.Since(t0))
		}
		for _, r := range p.release[i] {
			en.vals[r] = nil
		}
	}
	step = -1
	outs = make([]*Buffer, len(pl.Outputs))
	seen := map[int]bool{}
	for i, o := range pl.Outputs {
		r := pl.Root[o.ID]
		v := en.val(o)
		if r != o.ID || seen[r] || o.Op == backends.OpTypeParameter || o.Op == backends.OpTypeConstant {
			cp := makeFlat(o.Shape.DType, o.Shape.Size())
			reflect.Copy(reflect.ValueOf(cp), reflect.ValueOf(v))
			v = cp
		}
		seen[r] = true
		outs[i] = &Buffer{Shape: o.Shape.Clone(), Flat: v}
	}
	return outs, nil
}
