package plan

import (
	"reflect"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// View describes a node as a strided read of a materialised root node.
type View struct {
	Root    *Node
	Off     int
	Dims    []int
	Strides []int
}

// Contiguous reports whether v reads its root's values in row-major order without gaps.
func (v View) Contiguous() bool {
	return slices.Equal(v.Strides, RowMajorStrides(v.Dims)) || shapes.Make(dtypes.Float32, v.Dims...).Size() <= 1
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
	return View{Root: n, Dims: n.Shape.Dimensions, Strides: RowMajorStrides(n.Shape.Dimensions)}
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
		if in.Contiguous() {
			return View{Root: in.Root, Off: in.Off, Dims: dims, Strides: RowMajorStrides(dims)}
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
		if start, step, axis, ok := GatherAsSlice(n); ok {
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

// GatherAsSlice recognises graph.Gather with constant indices [n, 1] in arithmetic progression along one
// axis (as cast's sliceRange builds them): output [n, other axes...].
func GatherAsSlice(n *Node) (start, step, axis int, ok bool) {
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
	idx := ToInts(idxNode.Data)
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

// RowMajorStrides returns the strides of a contiguous row-major array of dims.
func RowMajorStrides(dims []int) []int {
	s := make([]int, len(dims))
	acc := 1
	for i := len(dims) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= dims[i]
	}
	return s
}

// ToInts converts a flat slice of integers (signed or unsigned) to ints.
func ToInts(x any) []int {
	v := reflect.ValueOf(x)
	out := make([]int, v.Len())
	for i := range out {
		switch e := v.Index(i); e.Kind() {
		case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
			out[i] = int(e.Int())
		default:
			out[i] = int(e.Uint())
		}
	}
	return out
}
