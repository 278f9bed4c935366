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
	out   *Node
	ins   []*Node
	run   func(e *env) any
	gpu   any // device-independent description for the WebGPU executor (gpu.go), nil for generic steps
}

// View describes a node as a strided read of a materialised root node.
type View struct {
	Root    *Node
	Off     int
	Dims    []int
	Strides []int
}

func (v View) contiguous() bool {
	return slices.Equal(v.Strides, rowMajorStrides(v.Dims)) || shapes.Make(dtypes.Float32, v.Dims...).Size() <= 1
}

// compiler holds the state of one Compile.
type compiler struct {
	b       *Builder
	outputs []*Node
	live    []bool
	fused   map[*Node]*step // fused step by the node it produces
	claimed map[*Node]bool  // nodes computed inside some fused step
	views   map[*Node]View

	consumers map[*Node][]*Node
}

// Compile turns the graph into an execution plan.
func (b *Builder) Compile(outputs []backends.Op, _ []*backends.ShardingSpec) (backends.Executable, error) {
	outs, err := b.check(backends.OpTypeIdentity, outputs...)
	if err != nil {
		return nil, err
	}
	b.compiled = true
	c := &compiler{b: b, outputs: outs, fused: map[*Node]*step{}, claimed: map[*Node]bool{}, views: map[*Node]View{}}
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
		n.Uses = 0
	}
	var visit func(n *Node)
	visit = func(n *Node) {
		if c.live[n.ID] {
			return
		}
		c.live[n.ID] = true
		for _, in := range n.Inputs {
			visit(in)
		}
	}
	for _, o := range c.outputs {
		visit(o)
		o.Uses++
	}
	for _, n := range c.b.nodes {
		if c.live[n.ID] {
			for _, in := range n.Inputs {
				in.Uses++
			}
		}
	}
}

// foldConstants evaluates at compile time every live node whose inputs are all constants (broadcasts that
// would grow a constant a lot are left for the fused loops to read with stride 0).
func (c *compiler) foldConstants() error {
	for _, n := range c.b.nodes {
		if !c.live[n.ID] || n.Op == backends.OpTypeParameter || n.Op == backends.OpTypeConstant {
			continue
		}
		allConst := true
		for _, in := range n.Inputs {
			if in.Op != backends.OpTypeConstant {
				allConst = false
			}
		}
		if !allConst {
			continue
		}
		if n.Op == backends.OpTypeBroadcastInDim && n.Shape.Size() > 4096 && n.Shape.Size() > 2*n.Inputs[0].Shape.Size() {
			continue
		}
		if n.Shape.Size() > 1<<22 {
			continue
		}
		ins := make([]any, len(n.Inputs))
		for i, in := range n.Inputs {
			ins[i] = in.Data
		}
		v, err := eval(n, ins)
		if err != nil {
			return err
		}
		n.Op, n.Data, n.Inputs = backends.OpTypeConstant, v, nil
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
func (c *compiler) viewOf(n *Node) View {
	if v, ok := c.views[n]; ok {
		return v
	}
	v := c.computeView(n)
	c.views[n] = v
	return v
}

func (c *compiler) selfView(n *Node) View {
	return View{Root: n, Dims: n.Shape.Dimensions, Strides: rowMajorStrides(n.Shape.Dimensions)}
}

func (c *compiler) computeView(n *Node) View {
	if !isLayout(n.Op) || c.fused[n] != nil {
		return c.selfView(n)
	}
	dims := n.Shape.Dimensions
	switch n.Op {
	case backends.OpTypeIdentity:
		return c.viewOf(n.Inputs[0])
	case backends.OpTypeReshape:
		in := c.viewOf(n.Inputs[0])
		if in.contiguous() {
			return View{Root: in.Root, Off: in.Off, Dims: dims, Strides: rowMajorStrides(dims)}
		}
		if strides, ok := reshapeStrides(in.Dims, in.Strides, dims); ok {
			return View{Root: in.Root, Off: in.Off, Dims: dims, Strides: strides}
		}
		return c.selfView(n)
	case backends.OpTypeTranspose:
		in := c.viewOf(n.Inputs[0])
		strides := make([]int, len(dims))
		for i, p := range n.Axes {
			strides[i] = in.Strides[p]
		}
		return View{Root: in.Root, Off: in.Off, Dims: dims, Strides: strides}
	case backends.OpTypeSlice:
		in := c.viewOf(n.Inputs[0])
		off := in.Off
		strides := make([]int, len(dims))
		for i := range dims {
			off += n.Slice.Starts[i] * in.Strides[i]
			strides[i] = in.Strides[i] * n.Slice.Strides[i]
		}
		return View{Root: in.Root, Off: off, Dims: dims, Strides: strides}
	case backends.OpTypeBroadcastInDim:
		in := c.viewOf(n.Inputs[0])
		strides := make([]int, len(dims))
		for i, a := range n.Axes {
			if in.Dims[i] == dims[a] {
				strides[a] = in.Strides[i]
			}
		}
		return View{Root: in.Root, Off: in.Off, Dims: dims, Strides: strides}
	case backends.OpTypeGather:
		if start, step, axis, ok := gatherAsSlice(n); ok {
			in := c.viewOf(n.Inputs[0])
			strides := []int{in.Strides[axis] * step}
			for a := range in.Dims {
				if a != axis {
					strides = append(strides, in.Strides[a])
				}
			}
			return View{Root: in.Root, Off: in.Off + start*in.Strides[axis], Dims: dims, Strides: strides}
		}
	}
	return c.selfView(n)
}

// gatherAsSlice recognises graph.Gather with constant indices [n, 1] in arithmetic progression along one
// axis (as cast's sliceRange builds them): output [n, other axes...].
func gatherAsSlice(n *Node) (start, step, axis int, ok bool) {
	g, idxNode := n.Gather, n.Inputs[1]
	id := idxNode.Shape.Dimensions
	if idxNode.Op != backends.OpTypeConstant || len(id) != 2 || id[1] != 1 || g.IndexVectorAxis != 1 ||
		len(g.StartIndexMap) != 1 || !slices.Equal(g.CollapsedSliceAxes, g.StartIndexMap) {
		return
	}
	operand := n.Inputs[0].Shape.Dimensions
	axis = g.StartIndexMap[0]
	for a, s := range g.SliceSizes {
		if (a == axis && s != 1) || (a != axis && s != operand[a]) {
			return
		}
	}
	for i, a := range g.OffsetOutputAxes {
		if a != i+1 {
			return
		}
	}
	idx := toInts(idxNode.Data)
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
		Root: make([]int, nn), rootOff: make([]int, nn), pool: map[int][][]float32{}}
	for i := range e.Root {
		e.Root[i] = i
	}
	stepOf := map[*Node]*step{}
	visited := make([]bool, nn)
	var firstErr error
	var need func(n *Node)
	need = func(n *Node) {
		if visited[n.ID] {
			return
		}
		visited[n.ID] = true
		if n.Op == backends.OpTypeParameter || n.Op == backends.OpTypeConstant {
			return
		}
		if st := c.fused[n]; st != nil {
			for _, in := range st.ins {
				need(in)
			}
			stepOf[n] = st
			return
		}
		if isLayout(n.Op) {
			v := c.viewOf(n)
			if v.Root != n && v.contiguous() {
				need(v.Root)
				e.Root[n.ID], e.rootOff[n.ID] = e.Root[v.Root.ID], e.rootOff[v.Root.ID]+v.Off
				return
			}
			if n.Op == backends.OpTypeReshape || n.Op == backends.OpTypeIdentity {
				// every materialised value is contiguous: a reshape of one is the same storage
				in := n.Inputs[0]
				need(in)
				e.Root[n.ID], e.rootOff[n.ID] = e.Root[in.ID], e.rootOff[in.ID]
				return
			}
			if v.Root != n {
				need(v.Root)
				stepOf[n] = stridedCopyStep(n, v)
				return
			}
		}
		for _, in := range n.Inputs {
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
		if visited[n.ID] && n.Op == backends.OpTypeConstant {
			e.consts = append(e.consts, n)
		}
	}
	e.computeLifetimes()
	return e, nil
}

func stridedCopyStep(n *Node, v View) *step {
	root, off, dims, strides := v.Root, v.Off, v.Dims, v.Strides
	return &step{label: fmt.Sprintf("copy %v", dims), out: n, ins: []*Node{root}, gpu: gpuCopyOf(v), run: func(e *env) any {
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

func genericStep(n *Node) (*step, error) {
	switch n.Op {
	case backends.OpTypeDotGeneral, backends.OpTypeReduceSum, backends.OpTypeReduceMax, backends.OpTypeReduceMin,
		backends.OpTypeReduceProduct, backends.OpTypeConcatenate, backends.OpTypeGather, backends.OpTypeSlice,
		backends.OpTypeConvertDType, backends.OpTypeIota, backends.OpTypeWhere, backends.OpTypeTranspose,
		backends.OpTypeBroadcastInDim, backends.OpTypeIdentity, backends.OpTypeReshape:
	default:
		if !unaryOps[n.Op] && !binaryOps[n.Op] && !compareOps[n.Op] && trainEvals[n.Op] == nil {
			return nil, errors.Errorf("castgo backend: op %s not implemented", n.Op)
		}
	}
	ins := n.Inputs
	return &step{label: fmt.Sprintf("%s %v", n.Op, n.Shape.Dimensions), out: n, ins: ins, run: func(e *env) any {
		vals := make([]any, len(ins))
		for i, in := range ins {
			vals[i] = e.val(in)
		}
		v, err := eval(n, vals)
		if err != nil {
			panic(err)
		}
		if n.Op == backends.OpTypeReshape || n.Op == backends.OpTypeIdentity {
			cp := makeFlat(n.Shape.DType, n.Shape.Size())
			stridedCopyAny(cp, v, []int{n.Shape.Size()}, []int{1}, 0)
			v = cp
		}
		return v
	}}, nil
}

// reshapeStrides returns the strides of a strided View (oldDims, oldStrides) reshaped to newDims without a
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
