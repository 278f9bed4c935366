package backend

import (
	"slices"

	"github.com/castvideo/castgo/backend/plan"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/pkg/errors"
)

// The builder ops that training needs beyond inference: the gradient graph of cast.Forward (ScatterSum is
// Gather's gradient, Pad is Slice's), the optimizer and the metrics (ArgMinMax), plus a few small
// elementwise ones. Their implementations are in package backend/cpu (ops_train.go).

// ScatterSum adds updates into a copy of operand at the positions scatterIndices point to (XLA semantics;
// windows that would fall outside the operand are skipped element by element).
func (b *Builder) ScatterSum(operand, scatterIndices, updates backends.Op, indexVectorAxis int,
	updateWindowAxes, insertedWindowAxes, scatterAxesToOperandAxes []int, indicesAreSorted, uniqueIndices bool) (backends.Op, error) {
	in, err := b.check(backends.OpTypeScatterSum, operand, scatterIndices, updates)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.ScatterOp(in[0].Shape, in[1].Shape, in[2].Shape, indexVectorAxis, updateWindowAxes,
		insertedWindowAxes, scatterAxesToOperandAxes)
	if err != nil {
		return nil, err
	}
	if !numericDType(shape.DType) {
		return nil, errors.Errorf("castgo backend: ScatterSum of dtype %s not implemented", shape.DType)
	}
	n := b.newNode(backends.OpTypeScatterSum, shape, in...)
	n.Scatter = &plan.ScatterParams{IndexVectorAxis: indexVectorAxis, UpdateWindowAxes: slices.Clone(updateWindowAxes),
		InsertedWindowAxes: slices.Clone(insertedWindowAxes), ScatterAxesToOperand: slices.Clone(scatterAxesToOperandAxes)}
	return n, nil
}

// Pad pads x with fillValue (a scalar): Start/End elements before/after each axis (negative crops) and
// Interior elements between neighbours.
func (b *Builder) Pad(x, fillValue backends.Op, axesConfig ...backends.PadAxis) (backends.Op, error) {
	in, err := b.check(backends.OpTypePad, x, fillValue)
	if err != nil {
		return nil, err
	}
	xs := in[0].Shape
	if in[1].Shape.Rank() != 0 || in[1].Shape.DType != xs.DType || len(axesConfig) > xs.Rank() {
		return nil, errors.Errorf("castgo backend: Pad of %s with fill %s and %d axes", xs, in[1].Shape, len(axesConfig))
	}
	cfg := make([]backends.PadAxis, xs.Rank())
	copy(cfg, axesConfig)
	dims := make([]int, xs.Rank())
	for a, d := range xs.Dimensions {
		c := cfg[a]
		dims[a] = c.Start + c.End + d + max(d-1, 0)*c.Interior
		if c.Interior < 0 || dims[a] < 0 {
			return nil, errors.Errorf("castgo backend: Pad of %s: bad configuration %+v", xs, cfg)
		}
	}
	n := b.newNode(backends.OpTypePad, shapes.Make(xs.DType, dims...), in...)
	n.Pad = &plan.PadParams{Axes: cfg}
	return n, nil
}

// ArgMinMax returns the index of the smallest (isMin) or largest value along axis (the first one on ties;
// NaN wins, like XLA).
func (b *Builder) ArgMinMax(x backends.Op, axis int, outputDType dtypes.DType, isMin bool) (backends.Op, error) {
	in, err := b.check(backends.OpTypeArgMinMax, x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.ArgMinMaxOp(in[0].Shape, axis, outputDType)
	if err != nil {
		return nil, err
	}
	if !numericDType(outputDType) || !numericDType(in[0].Shape.DType) {
		return nil, errors.Errorf("castgo backend: ArgMinMax %s → %s not implemented", in[0].Shape.DType, outputDType)
	}
	n := b.newNode(backends.OpTypeArgMinMax, shape, in...)
	n.ArgMinMax = &plan.ArgParams{Axis: axis, IsMin: isMin}
	return n, nil
}

// Clamp returns min(max(x, lo), hi); lo and hi may be scalars.
func (b *Builder) Clamp(lo, x, hi backends.Op) (backends.Op, error) {
	mx, err := b.Max(x, lo)
	if err != nil {
		return nil, err
	}
	return b.Min(mx, hi)
}

// Reverse reverses x along axes.
func (b *Builder) Reverse(x backends.Op, axes ...int) (backends.Op, error) {
	in, err := b.check(backends.OpTypeReverse, x)
	if err != nil {
		return nil, err
	}
	n := b.newNode(backends.OpTypeReverse, in[0].Shape.Clone(), in...)
	n.Axes = slices.Clone(axes)
	return n, nil
}

func (b *Builder) IsFinite(x backends.Op) (backends.Op, error) {
	return b.boolUnary(backends.OpTypeIsFinite, x)
}

func (b *Builder) IsNaN(x backends.Op) (backends.Op, error) {
	return b.boolUnary(backends.OpTypeIsNaN, x)
}

func (b *Builder) boolUnary(op backends.OpType, x backends.Op) (backends.Op, error) {
	in, err := b.check(op, x)
	if err != nil {
		return nil, err
	}
	if !in[0].Shape.DType.IsFloat() || !numericDType(in[0].Shape.DType) {
		return nil, errors.Errorf("castgo backend: %s of %s", op, in[0].Shape.DType)
	}
	shape := in[0].Shape.Clone()
	shape.DType = dtypes.Bool
	return b.newNode(op, shape, in...), nil
}

func (b *Builder) LogicalXor(x, y backends.Op) (backends.Op, error) {
	in, err := b.check(backends.OpTypeLogicalXor, x, y)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.BinaryOp(backends.OpTypeLogicalXor, in[0].Shape, in[1].Shape)
	if err != nil {
		return nil, err
	}
	return b.newNode(backends.OpTypeLogicalXor, shape, in...), nil
}
