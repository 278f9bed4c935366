package backend

import (
	"reflect"
	"sync"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/pkg/errors"
)

// Executable implements backends.Executable: the plan of one compiled graph.
type Executable struct {
	backend *Backend
	params  []*Node
	outputs []*Node
	steps   []*step
	consts  []*Node
	Root    []int   // storage root of each node (itself unless it is a View of another node's storage)
	rootOff []int   // offset of the node's values in its root's storage
	free    [][]int // roots whose storage returns to the pool after each step

	mu   sync.Mutex
	pool map[int][][]float32
}

var _ backends.Executable = (*Executable)(nil)

// env is the state of one execution.
type env struct {
	ex     *Executable
	vals   []any
	Inputs []*Buffer

	allocated map[int]int // pooled allocations of each size in this execution (trimPool)
}

// trimPool keeps at most as many pooled buffers of each size as one execution allocates: generic steps
// return fresh slices that are released into the pool too, which would otherwise grow it every execution.
func (e *env) trimPool() {
	for size, l := range e.ex.pool {
		if n := e.allocated[size]; len(l) > n {
			clear(l[n:])
			e.ex.pool[size] = l[:n]
		}
	}
}

func (e *env) val(n *Node) any {
	r := e.ex.Root[n.ID]
	v := e.vals[r]
	off, size := e.ex.rootOff[n.ID], n.Shape.Size()
	if f, ok := v.([]float32); ok {
		return f[off : off+size]
	}
	if r == n.ID {
		return v
	}
	return reflect.ValueOf(v).Slice(off, off+size).Interface()
}

func (e *env) f32(n *Node) []float32 { return e.val(n).([]float32) }

// alloc returns storage for n's value: from the pool for float32.
func (e *env) alloc(n *Node) any {
	size := n.Shape.Size()
	if n.Shape.DType == dtypes.Float32 {
		return e.allocF32(size)
	}
	return makeFlat(n.Shape.DType, size)
}

func (e *env) allocF32(size int) []float32 {
	e.allocated[size]++
	p := e.ex.pool
	if l := p[size]; len(l) > 0 {
		b := l[len(l)-1]
		p[size] = l[:len(l)-1]
		return b
	}
	return make([]float32, size)
}

func (e *env) release(v any) {
	if f, ok := v.([]float32); ok && cap(f) > 0 {
		e.ex.pool[len(f)] = append(e.ex.pool[len(f)], f)
	}
}

// computeLifetimes finds, for each step, which storage roots are read for the last time by it.
func (e *Executable) computeLifetimes() {
	last := map[int]int{}
	produced := map[int]bool{}
	for i, st := range e.steps {
		produced[st.out.ID] = true
		for _, in := range st.ins {
			last[e.Root[in.ID]] = i
		}
	}
	keep := map[int]bool{}
	for _, o := range e.outputs {
		keep[e.Root[o.ID]] = true
	}
	e.free = make([][]int, len(e.steps))
	for r, i := range last {
		if produced[r] && !keep[r] {
			e.free[i] = append(e.free[i], r)
		}
	}
	// a produced value nobody reads (should not happen after dead-code removal) is freed right away
	for i, st := range e.steps {
		if _, read := last[st.out.ID]; !read && !keep[st.out.ID] && e.Root[st.out.ID] == st.out.ID {
			e.free[i] = append(e.free[i], st.out.ID)
		}
	}
}

// Finalize releases e's buffer pool and its WebGPU buffers; e must not run afterwards.
func (e *Executable) Finalize() {
	e.mu.Lock()
	e.pool = map[int][][]float32{}
	e.mu.Unlock()
	e.releaseGPU() // the WebGPU buffers (weights on the device) go now, not when e is collected
}

func (e *Executable) Inputs() (names []string, inputShapes []shapes.Shape) {
	for _, p := range e.params {
		names = append(names, p.Name)
		inputShapes = append(inputShapes, p.Shape)
	}
	return
}

func (e *Executable) Outputs() []shapes.Shape {
	out := make([]shapes.Shape, len(e.outputs))
	for i, o := range e.outputs {
		out[i] = o.Shape
	}
	return out
}

// Execute runs the plan.
func (e *Executable) Execute(inputs []backends.Buffer, donate []bool, _ backends.DeviceNum) (outs []backends.Buffer, err error) {
	if len(inputs) != len(e.params) {
		return nil, errors.Errorf("castgo backend: %d inputs given, the graph has %d parameters", len(inputs), len(e.params))
	}
	if e.backend.webgpu {
		if outs, handled, err := e.gpuExecute(inputs); handled {
			return outs, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	en := &env{ex: e, vals: make([]any, len(e.Root)), Inputs: make([]*Buffer, len(inputs)), allocated: map[int]int{}}
	defer en.trimPool()
	for i, in := range inputs {
		buf, err := e.backend.toBuffer(in)
		if err != nil {
			return nil, err
		}
		if !buf.Shape.Equal(e.params[i].Shape) {
			return nil, errors.Errorf("castgo backend: input #%d (%s) has shape %s, want %s", i, e.params[i].Name, buf.Shape, e.params[i].Shape)
		}
		en.Inputs[i] = buf
		en.vals[e.params[i].ID] = buf.Flat
	}
	for _, c := range e.consts {
		en.vals[c.ID] = c.Data
	}
	defer func() {
		if r := recover(); r != nil {
			err = errors.Errorf("castgo backend: %v", r)
		}
	}()
	prof := profiling()
	for i, st := range e.steps {
		var t0 time.Time
		if prof {
			t0 = time.Now()
		}
		en.vals[st.out.ID] = st.run(en)
		if prof {
			recordProfile(st.label, time.Since(t0))
		}
		for _, r := range e.free[i] {
			en.release(en.vals[r])
			en.vals[r] = nil
		}
	}
	outs = make([]backends.Buffer, len(e.outputs))
	seen := map[int]bool{}
	for i, o := range e.outputs {
		r := e.Root[o.ID]
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
