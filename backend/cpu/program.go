package cpu

import (
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"
	"unsafe"

	"github.com/castvideo/castgo/backend/plan"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/pkg/errors"
)

// Program is a plan lowered onto the CPU: one function per step, run in order, with float32 intermediate
// buffers pooled and reused as the plan releases their storage (best fit by capacity, so that a value
// reuses a larger free buffer rather than adding one of its own size: the pool stays near the execution's
// peak of live intermediates instead of the sum of each size's peak).
type Program struct {
	plan  *plan.Plan
	runs  []stepFunc
	packs *PackCache
	// packOnly marks the parameters read only as packed GEMM weights (packedOnly): the only ones whose
	// data may have been released (Buffer.Packed).
	packOnly map[int]bool

	mu   sync.Mutex
	pool [][]float32 // free float32 buffers, full capacity, sorted by capacity
}

// stepFunc computes the value of one step's output in an execution.
type stepFunc func(e *env) any

// Plan returns the plan p runs.
func (p *Program) Plan() *plan.Plan { return p.plan }

// Finalize drops p's buffer pool.
func (p *Program) Finalize() {
	p.mu.Lock()
	p.pool = nil
	p.mu.Unlock()
}

// env is the state of one execution.
type env struct {
	ex     *Program
	vals   []any
	inputs []*Buffer

	allocated map[uintptr]bool // the buffers allocF32 handed out in this execution, by address (trimPool)
}

// trimPool keeps only the pooled buffers that allocF32 handed out in this execution: generic steps return
// fresh slices that are released into the pool too, which would otherwise grow it every execution.
func (e *env) trimPool() {
	kept := e.ex.pool[:0]
	for _, b := range e.ex.pool {
		if e.allocated[uintptr(unsafe.Pointer(unsafe.SliceData(b)))] {
			kept = append(kept, b)
		}
	}
	clear(e.ex.pool[len(kept):])
	e.ex.pool = kept
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

// alloc returns storage for n's value: from the pool for float32.
func (e *env) alloc(n *plan.Node) any {
	size := n.Shape.Size()
	if n.Shape.DType == dtypes.Float32 {
		return e.allocF32(size)
	}
	return makeFlat(n.Shape.DType, size)
}

// allocF32 returns a float32 buffer of size elements: the smallest pooled buffer that holds them, else a
// new one. Its contents are not cleared.
func (e *env) allocF32(size int) []float32 {
	p := e.ex.pool
	i := sort.Search(len(p), func(i int) bool { return cap(p[i]) >= size })
	var b []float32
	if i < len(p) {
		b = p[i][:size]
		e.ex.pool = slices.Delete(p, i, i+1)
	} else {
		// A miss: the free buffers are all smaller. Drop the largest of them, as many as the new buffer's
		// size, so that the garbage collector can reuse their memory for it rather than the pool holding
		// both (the pool then converges on buffers that fit, instead of growing by each miss).
		for freed := 0; freed < size && len(p) > 0; p = p[:len(p)-1] {
			freed += cap(p[len(p)-1])
			p[len(p)-1] = nil
		}
		e.ex.pool = p
		b = make([]float32, size)
	}
	if size > 0 {
		e.allocated[uintptr(unsafe.Pointer(unsafe.SliceData(b)))] = true
	}
	return b
}

// release returns a float32 value's storage to the pool: the whole buffer when allocF32 handed it out,
// else (a generic step's own slice) only its length.
func (e *env) release(v any) {
	if f, ok := v.([]float32); ok && cap(f) > 0 {
		if e.allocated[uintptr(unsafe.Pointer(unsafe.SliceData(f)))] {
			f = f[:cap(f)]
		} else {
			f = f[:len(f):len(f)]
		}
		p := e.ex.pool
		i := sort.Search(len(p), func(i int) bool { return cap(p[i]) >= cap(f) })
		e.ex.pool = slices.Insert(p, i, f)
	}
}

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
	en := &env{ex: p, vals: make([]any, len(pl.Root)), inputs: inputs, allocated: map[uintptr]bool{}}
	defer en.trimPool()
	for i, buf := range inputs {
		en.vals[pl.Params[i].ID] = buf.Flat
	}
	for _, c := range pl.Consts {
		en.vals[c.ID] = c.Data
	}
	defer func() {
		if r := recover(); r != nil {
			err = errors.Errorf("castgo backend: %v", r)
		}
	}()
	prof := profiling()
	for i, st := range pl.Steps {
		var t0 time.Time
		if prof {
			t0 = time.Now()
		}
		en.vals[st.Out.ID] = p.runs[i](en)
		if prof {
			recordProfile(st.Label, time.Since(t0))
		}
		for _, r := range pl.ReleaseAfter[i] {
			en.release(en.vals[r])
			en.vals[r] = nil
		}
	}
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
