package backend

import (
	"fmt"
	"slices"

	"github.com/castvideo/castgo/backend/kernels"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/pkg/errors"
)

// step is one entry of the execution plan: it computes the value of out from the values of ins.
type step struct {
	label string // op kind and shape, for the profile
	out   *node
	ins   []*node
	run   func(e *env) any
	gpu   any // device-independent description for the WebGPU executor (gpu.go), nil for generic steps
}

// view describes a node as a strided read of a materialised root node.
type view struct {
	root    *node
	off     int
	dims    []int
	strides []int
}

func (v view) contiguous() bool {
	return slices.Equal(v.strides, rowMajorStrides(v.dims)) || shapes.Make(dtypes.Float32, v.dims...).Size() <= 1
}

// compiler holds the state of one Compile.
type compiler struct {
	b       *Builder
	outputs []*node
	live    []bool
	fused   map[*node]*step // fused step by the node it produces
	claimed map[*node]bool  // nodes computed inside some fused step
	views   map[*node]view

	consumers map[*node][]*node
}

// Compile turns the graph into an execution plan.
func (b *Builder) Compile(outputs []backends.Op, _ []*backends.ShardingSpec) (backends.Executable, error) {
	outs, err := b.check(backends.OpTypeIdentity, outputs...)
	if err != nil {
		return nil, err
	}
	b.compiled = true
	c := &compiler{b: b, outputs: outs, fused: map[*node]*step{}, claimed: map[*node]bool{}, views: map[*node]view{}}
	c.markLive()
	if err := c.foldConstants(); err != nil {
		return nil, err
	}
	c.markLive()
	c.fuse()
	return c.plan()
}

// markLive marks the nodes the outputs depend on and counts their uses.
func (c *compiler) markLive() {
	c.live = make([]bool, len(c.b.nodes))
	for _, n := range c.b.nodes {
		n.uses = 0
	}
	var visit func(n *node)
	visit = func(n *node) {
		if c.live[n.id] {
			return
		}
		c.live[n.id] = true
		for _, in := range n.inputs {
			visit(in)
		}
	}
	for _, o := range c.outputs {
		visit(o)
		o.uses++
	}
	for _, n := range c.b.nodes {
		if c.live[n.id] {
			for _, in := range n.inputs {
				in.uses++
			}
		}
	}
}

// foldConstants evaluates at compile time every live node whose inputs are all constants (broadcasts that
// would grow a constant a lot are left for the fused loops to read with stride 0).
func (c *compiler) foldConstants() error {
	for _, n := range c.b.nodes {
		if !c.live[n.id] || n.op == backends.OpTypeParameter || n.op == backends.OpTypeConstant {
			continue
		}
		allConst := true
		for _, in := range n.inputs {
			if in.op != backends.OpTypeConstant {
				allConst = false
			}
		}
		if !allConst {
			continue
		}
		if n.op == backends.OpTypeBroadcastInDim && n.shape.Size() > 4096 && n.shape.Size() > 2*n.inputs[0].shape.Size() {
			continue
		}
		if n.shape.Size() > 1<<22 {
			continue
		}
		ins := make([]any, len(n.inputs))
		for i, in := range n.inputs {
			ins[i] = in.data
		}
		v, err := eval(n, ins)
		if err != nil {
			return err
		}
		n.op, n.data, n.inputs = backends.OpTypeConstant, v, nil
	}
	return nil
}

func isLayout(op backends.OpType) bool {
	switch op {
	case backends.OpTypeReshape, backends.OpTypeIdentity, backends.OpTypeTranspose, backends.OpTypeSlice,
		backends.OpTypeBroadcastInDim, backends.OpTypeGather:
		return true
	}
	return false
}

// viewOf expresses n as a strided read of a materialised node, looking through layout ops.
func (c *compiler) viewOf(n *node) view {
	if v, ok := c.views[n]; ok {
		return v
	}
	v := c.computeView(n)
	c.views[n] = v
	return v
}

func (c *compiler) selfView(n *node) view {
	return view{root: n, dims: n.shape.Dimensions, strides: rowMajorStrides(n.shape.Dimensions)}
}

func (c *compiler) computeView(n *node) view {
	if !isLayout(n.op) || c.fused[n] != nil {
		return c.selfView(n)
	}
	dims := n.shape.Dimensions
	switch n.op {
	case backends.OpTypeIdentity:
		return c.viewOf(n.inputs[0])
	case backends.OpTypeReshape:
		in := c.viewOf(n.inputs[0])
		if in.contiguous() {
			return view{root: in.root, off: in.off, dims: dims, strides: rowMajorStrides(dims)}
		}
		if strides, ok := reshapeStrides(in.dims, in.strides, dims); ok {
			return view{root: in.root, off: in.off, dims: dims, strides: strides}
		}
		return c.selfView(n)
	case backends.OpTypeTranspose:
		in := c.viewOf(n.inputs[0])
		strides := make([]int, len(dims))
		for i, p := range n.axes {
			strides[i] = in.strides[p]
		}
		return view{root: in.root, off: in.off, dims: dims, strides: strides}
	case backends.OpTypeSlice:
		in := c.viewOf(n.inputs[0])
		off := in.off
		strides := make([]int, len(dims))
		for i := range dims {
			off += n.slice.starts[i] * in.strides[i]
			strides[i] = in.strides[i] * n.slice.strides[i]
		}
		return view{root: in.root, off: off, dims: dims, strides: strides}
	case backends.OpTypeBroadcastInDim:
		in := c.viewOf(n.inputs[0])
		strides := make([]int, len(dims))
		for i, a := range n.axes {
			if in.dims[i] == dims[a] {
				strides[a] = in.strides[i]
			}
		}
		return view{root: in.root, off: in.off, dims: dims, strides: strides}
	case backends.OpTypeGather:
		if start, step, axis, ok := gatherAsSlice(n); ok {
			in := c.viewOf(n.inputs[0])
			strides := []int{in.strides[axis] * step}
			for a := range in.dims {
				if a != axis {
					strides = append(strides, in.strides[a])
				}
			}
			return view{root: in.root, off: in.off + start*in.strides[axis], dims: dims, strides: strides}
		}
	}
	return c.selfView(n)
}

// gatherAsSlice recognises graph.Gather with constant indices [n, 1] in arithmetic progression along one
// axis (as cast's sliceRange builds them): output [n, other axes...].
func gatherAsSlice(n *node) (start, step, axis int, ok bool) {
	g, idxNode := n.gather, n.inputs[1]
	id := idxNode.shape.Dimensions
	if idxNode.op != backends.OpTypeConstant || len(id) != 2 || id[1] != 1 || g.indexVectorAxis != 1 ||
		len(g.startIndexMap) != 1 || !slices.Equal(g.collapsed, g.startIndexMap) {
		return
	}
	operand := n.inputs[0].shape.Dimensions
	axis = g.startIndexMap[0]
	for a, s := range g.sizes {
		if (a == axis && s != 1) || (a != axis && s != operand[a]) {
			return
		}
	}
	for i, a := range g.offsetOutputAxes {
		if a != i+1 {
			return
		}
	}
	idx := toInts(idxNode.data)
	if len(idx) == 0 {
		return
	}
	start = idx[0]
	if len(idx) > 1 {
		step = idx[1] - idx[0]
	}
	for i, v := range idx {
		if v != start+i*step || v < 0 || v >= operand[axis] {
			return
		}
	}
	return start, step, axis, true
}

// plan builds the ordered steps from the outputs backwards, then the buffer lifetimes.
func (c *compiler) plan() (*Executable, error) {
	nn := len(c.b.nodes)
	e := &Executable{backend: c.b.backend, params: c.b.params, outputs: c.outputs,
		root: make([]int, nn), rootOff: make([]int, nn), pool: map[int][][]float32{}}
	for i := range e.root {
		e.root[i] = i
	}
	stepOf := map[*node]*step{}
	visited := make([]bool, nn)
	var firstErr error
	var need func(n *node)
	need = func(n *node) {
		if visited[n.id] {
			return
		}
		visited[n.id] = true
		if n.op == backends.OpTypeParameter || n.op == backends.OpTypeConstant {
			return
		}
		if st := c.fused[n]; st != nil {
			for _, in := range st.ins {
				need(in)
			}
			stepOf[n] = st
			return
		}
		if isLayout(n.op) {
			v := c.viewOf(n)
			if v.root != n && v.contiguous() {
				need(v.root)
				e.root[n.id], e.rootOff[n.id] = e.root[v.root.id], e.rootOff[v.root.id]+v.off
				return
			}
			if n.op == backends.OpTypeReshape || n.op == backends.OpTypeIdentity {
				// every materialised value is contiguous: a reshape of one is the same storage
				in := n.inputs[0]
				need(in)
				e.root[n.id], e.rootOff[n.id] = e.root[in.id], e.rootOff[in.id]
				return
			}
			if v.root != n {
				need(v.root)
				stepOf[n] = stridedCopyStep(n, v)
				return
			}
		}
		for _, in := range n.inputs {
			need(in)
		}
		st, err := genericStep(n)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		stepOf[n] = st
	}
	for _, o := range c.outputs {
		need(o)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	for _, n := range c.b.nodes {
		if st := stepOf[n]; st != nil && st.out == n {
			e.steps = append(e.steps, st)
		}
	}
	for _, n := range c.b.nodes {
		if visited[n.id] && n.op == backends.OpTypeConstant {
			e.consts = append(e.consts, n)
		}
	}
	e.computeLifetimes()
	return e, nil
}

func stridedCopyStep(n *node, v view) *step {
	root, off, dims, strides := v.root, v.off, v.dims, v.strides
	return &step{label: fmt.Sprintf("copy %v", dims), out: n, ins: []*node{root}, gpu: gpuCopyOf(v), run: func(e *env) any {
		dst := e.alloc(n)
		if d, ok := dst.([]float32); ok && len(dims) > 1 && len(d) >= 1<<15 {
			src, inner := e.f32(root), len(d)/max(dims[0], 1)
			kernels.ParallelFor(dims[0], max(1, (1<<14)/max(inner, 1)), func(lo, hi int) {
				sub := append([]int{hi - lo}, dims[1:]...)
				stridedCopy(d[lo*inner:hi*inner], src, sub, strides, off+lo*strides[0])
			})
			return dst
		}
		stridedCopyAny(dst, e.val(root), dims, strides, off)
		return dst
	}}
}

func genericStep(n *node) (*step, error) {
	switch n.op {
	case backends.OpTypeDotGeneral, backends.OpTypeReduceSum, backends.OpTypeReduceMax, backends.OpTypeReduceMin,
		backends.OpTypeReduceProduct, backends.OpTypeConcatenate, backends.OpTypeGather, backends.OpTypeSlice,
		backends.OpTypeConvertDType, backends.OpTypeIota, backends.OpTypeWhere, backends.OpTypeTranspose,
		backends.OpTypeBroadcastInDim, backends.OpTypeIdentity, backends.OpTypeReshape:
	default:
		if !unaryOps[n.op] && !binaryOps[n.op] && !compareOps[n.op] && trainEvals[n.op] == nil {
			return nil, errors.Errorf("castgo backend: op %s not implemented", n.op)
		}
	}
	ins := n.inputs
	return &step{label: fmt.Sprintf("%s %v", n.op, n.shape.Dimensions), out: n, ins: ins, run: func(e *env) any {
		vals := make([]any, len(ins))
		for i, in := range ins {
			vals[i] = e.val(in)
		}
		v, err := eval(n, vals)
		if err != nil {
			panic(err)
		}
		if n.op == backends.OpTypeReshape || n.op == backends.OpTypeIdentity {
			cp := makeFlat(n.shape.DType, n.shape.Size())
			stridedCopyAny(cp, v, []int{n.shape.Size()}, []int{1}, 0)
			v = cp
		}
		return v
	}}, nil
}

// reshapeStrides returns the strides of a strided view (oldDims, oldStrides) reshaped to newDims without a
// copy, if possible: each group of old axes that maps onto a group of new axes must be mergeable.
func reshapeStrides(oldDims, oldStrides, newDims []int) ([]int, bool) {
	var od, os []int
	for i, d := range oldDims {
		if d == 0 {
			return nil, false
		}
		if d != 1 {
			od, os = append(od, d), append(os, oldStrides[i])
		}
	}
	ns := make([]int, len(newDims))
	oi, ni := 0, 0
	for ni < len(newDims) {
		if newDims[ni] == 1 {
			ni++
			continue
		}
		if oi >= len(od) {
			return nil, false
		}
		op, np := od[oi], newDims[ni]
		oj, nj := oi, ni
		for op != np {
			if op < np {
				if oj++; oj >= len(od) {
					return nil, false
				}
				op *= od[oj]
			} else {
				if nj++; nj >= len(newDims) {
					return nil, false
				}
				np *= newDims[nj]
			}
		}
		for k := oi; k < oj; k++ {
			if os[k] != os[k+1]*od[k+1] {
				return nil, false
			}
		}
		st := os[oj]
		for k := nj; k >= ni; k-- {
			ns[k] = st
			st *= newDims[k]
		}
		oi, ni = oj+1, nj+1
	}
	if oi != len(od) {
		return nil, false
	}
	return ns, true
}
