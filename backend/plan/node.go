// Package plan turns a graph of GoMLX ops into a target-neutral execution plan: an ordered list of typed
// steps (a weight GEMM with its epilogue, a fused attention, a layer norm, a softmax, a fused elementwise
// loop, a strided copy or concatenation, the training attention's forward and backward, or one generic op),
// with the storage each value lives in (views share their root's storage) and the point after which each
// storage is released. It knows no target: the CPU executor (package backend/cpu) and the WebGPU executor
// (package backend/webgpu) each lower the steps onto their own kernels.
//
// Compile (plan.go) runs the passes in order; the pattern matchers are in fuse.go (inference) and
// fuse_train.go (training).
package plan

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Node is one op of the graph being built; the builder of package backend fills it.
type Node struct {
	ID     int
	Op     backends.OpType
	Shape  shapes.Shape
	Inputs []*Node

	Axes      []int          // reduce axes, transpose permutation, broadcast axes, concatenate axis, iota axis
	Data      any            // constant flat values
	Param     int            // parameter index
	Name      string         // parameter name
	Dot       *DotParams     // DotGeneral
	Gather    *GatherParams  // Gather
	Slice     *SliceParams   // Slice
	ConvertTo dtypes.DType   // ConvertDType
	Scatter   *ScatterParams // ScatterSum
	Pad       *PadParams     // Pad
	ArgMinMax *ArgParams     // ArgMinMax

	Uses int // edges from other live nodes plus one per appearance among the outputs
}

// DotParams are a DotGeneral's contracting and batch axes of each operand.
type DotParams struct{ LhsContract, LhsBatch, RhsContract, RhsBatch []int }

// GatherParams are a Gather's axes (XLA semantics).
type GatherParams struct {
	IndexVectorAxis                                                 int
	OffsetOutputAxes, CollapsedSliceAxes, StartIndexMap, SliceSizes []int
}

// SliceParams are a Slice's start, limit and stride along each axis.
type SliceParams struct{ Starts, Limits, Strides []int }

// ScatterParams are a ScatterSum's axes (XLA semantics).
type ScatterParams struct {
	IndexVectorAxis                                            int
	UpdateWindowAxes, InsertedWindowAxes, ScatterAxesToOperand []int
}

// PadParams are a Pad's configuration of each axis.
type PadParams struct{ Axes []backends.PadAxis }

// ArgParams are an ArgMinMax's axis and direction.
type ArgParams struct {
	Axis  int
	IsMin bool
}

// String names the node by its id, op and shape.
func (n *Node) String() string {
	return fmt.Sprintf("#%d %s %s", n.ID, n.Op, n.Shape)
}

// The elementwise op classes of the graph (the builder accepts them, executors implement them).
var unaryOps = map[backends.OpType]bool{
	backends.OpTypeNeg: true, backends.OpTypeExp: true, backends.OpTypeErf: true, backends.OpTypeLogistic: true,
	backends.OpTypeTanh: true, backends.OpTypeSqrt: true, backends.OpTypeRsqrt: true, backends.OpTypeAbs: true,
	backends.OpTypeLog: true, backends.OpTypeLog1p: true, backends.OpTypeExpm1: true, backends.OpTypeSign: true,
	backends.OpTypeCos: true, backends.OpTypeSin: true, backends.OpTypeFloor: true, backends.OpTypeCeil: true,
	backends.OpTypeRound: true, backends.OpTypeLogicalNot: true,
}

var binaryOps = map[backends.OpType]bool{
	backends.OpTypeAdd: true, backends.OpTypeSub: true, backends.OpTypeMul: true, backends.OpTypeDiv: true,
	backends.OpTypeMax: true, backends.OpTypeMin: true, backends.OpTypePow: true, backends.OpTypeRem: true,
	backends.OpTypeLogicalAnd: true, backends.OpTypeLogicalOr: true,
}

var compareOps = map[backends.OpType]bool{
	backends.OpTypeEqual: true, backends.OpTypeNotEqual: true, backends.OpTypeGreaterThan: true,
	backends.OpTypeGreaterOrEqual: true, backends.OpTypeLessThan: true, backends.OpTypeLessOrEqual: true,
}

// IsUnary reports whether op is an elementwise op of one operand.
func IsUnary(op backends.OpType) bool { return unaryOps[op] }

// IsBinary reports whether op is an arithmetic or logical elementwise op of two operands.
func IsBinary(op backends.OpType) bool { return binaryOps[op] }

// IsCompare reports whether op is an elementwise comparison (its output is bool).
func IsCompare(op backends.OpType) bool { return compareOps[op] }

// ElementwiseOps lists the unary, binary and comparison ops.
func ElementwiseOps() []backends.OpType {
	var ops []backends.OpType
	for _, m := range []map[backends.OpType]bool{unaryOps, binaryOps, compareOps} {
		for op := range m {
			ops = append(ops, op)
		}
	}
	return ops
}

// FreeAxes returns the axes of an operand of the given rank that are neither contracting nor batch axes.
func FreeAxes(rank int, contracting, batch []int) []int {
	var out []int
	for a := 0; a < rank; a++ {
		if !slices.Contains(contracting, a) && !slices.Contains(batch, a) {
			out = append(out, a)
		}
	}
	return out
}
