package backend

import (
	"reflect"
	"slices"

	"github.com/castvideo/castgo/backend/plan"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/notimplemented"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/pkg/errors"
)

// Builder implements backends.Builder; ops it does not implement return an error naming the op.
type Builder struct {
	notimplemented.Builder
	backend     *Backend
	computation string
	nodes       []*plan.Node
	params      []*plan.Node
	compiled    bool
}

var _ backends.Builder = (*Builder)(nil)

// supportedOps lists the ops the builder implements (for Capabilities).
var supportedOps = map[backends.OpType]bool{}

func init() {
	for _, op := range []backends.OpType{backends.OpTypeParameter, backends.OpTypeConstant, backends.OpTypeIdentity,
		backends.OpTypeReshape, backends.OpTypeTranspose, backends.OpTypeBroadcastInDim, backends.OpTypeBroadcast,
		backends.OpTypeDotGeneral, backends.OpTypeConcatenate, backends.OpTypeGather, backends.OpTypeSlice,
		backends.OpTypeConvertDType, backends.OpTypeIota, backends.OpTypeWhere, backends.OpTypeReduceSum,
		backends.OpTypeReduceMax, backends.OpTypeReduceMin, backends.OpTypeReduceProduct} {
		supportedOps[op] = true
	}
	for _, op := range plan.ElementwiseOps() {
		supportedOps[op] = true
	}
	// the training ops (builder_train.go)
	for _, op := range []backends.OpType{backends.OpTypeScatterSum, backends.OpTypePad, backends.OpTypeArgMinMax,
		backends.OpTypeReverse, backends.OpTypeIsFinite, backends.OpTypeIsNaN, backends.OpTypeLogicalXor} {
		supportedOps[op] = true
	}
}

// Builder returns a new builder for a computation called name.
func (b *Backend) Builder(name string) backends.Builder {
	bld := &Builder{backend: b, computation: name}
	bld.Builder.ErrFn = func(op backends.OpType) error {
		return errors.Errorf("castgo backend: op %s not implemented", op)
	}
	return bld
}

func (b *Builder) Name() string { return b.computation }

func (b *Builder) DeviceAssignment(devices ...backends.DeviceNum) error {
	for _, d := range devices {
		if d != 0 {
			return errors.Errorf("castgo backend: only device 0 exists, got %d", d)
		}
	}
	return nil
}

func (b *Builder) newNode(op backends.OpType, shape shapes.Shape, inputs ...*plan.Node) *plan.Node {
	n := &plan.Node{ID: len(b.nodes), Op: op, Shape: shape, Inputs: inputs}
	b.nodes = append(b.nodes, n)
	return n
}

func (b *Builder) check(op backends.OpType, ops ...backends.Op) ([]*plan.Node, error) {
	if b.compiled {
		return nil, errors.Errorf("castgo backend: builder %q already compiled", b.computation)
	}
	out := make([]*plan.Node, len(ops))
	for i, o := range ops {
		n, ok := o.(*plan.Node)
		if !ok || n == nil {
			return nil, errors.Errorf("castgo backend: %s: operand #%d is %T, not a castgo op", op, i, o)
		}
		if n.ID >= len(b.nodes) || b.nodes[n.ID] != n {
			return nil, errors.Errorf("castgo backend: %s: operand #%d is from another builder", op, i)
		}
		out[i] = n
	}
	return out, nil
}

func (b *Builder) OpShape(op backends.Op) (shapes.Shape, error) {
	n, ok := op.(*plan.Node)
	if !ok {
		return shapes.Invalid(), errors.Errorf("castgo backend: %T is not a castgo op", op)
	}
	return n.Shape, nil
}

func (b *Builder) Parameter(name string, shape shapes.Shape, _ *backends.ShardingSpec) (backends.Op, error) {
	if _, err := b.check(backends.OpTypeParameter); err != nil {
		return nil, err
	}
	if shape.DType.GoType() == nil {
		return nil, errors.Errorf("castgo backend: parameter %q has unsupported dtype %s", name, shape.DType)
	}
	n := b.newNode(backends.OpTypeParameter, shape.Clone())
	n.Name, n.Param = name, len(b.params)
	b.params = append(b.params, n)
	return n, nil
}

func (b *Builder) Constant(flat any, dims ...int) (backends.Op, error) {
	if _, err := b.check(backends.OpTypeConstant); err != nil {
		return nil, err
	}
	v := reflect.ValueOf(flat)
	if v.Kind() != reflect.Slice {
		return nil, errors.Errorf("castgo backend: Constant wants a flat slice, got %T", flat)
	}
	dt := dtypes.FromGoType(v.Type().Elem())
	if dt == dtypes.InvalidDType {
		return nil, errors.Errorf("castgo backend: Constant of %T not supported", flat)
	}
	shape := shapes.Make(dt, dims...)
	if shape.Size() != v.Len() {
		return nil, errors.Errorf("castgo backend: Constant has %d values for shape %s", v.Len(), shape)
	}
	cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
	reflect.Copy(cp, v)
	n := b.newNode(backends.OpTypeConstant, shape)
	n.Data = cp.Interface()
	return n, nil
}

func (b *Builder) Identity(x backends.Op) (backends.Op, error) {
	in, err := b.check(backends.OpTypeIdentity, x)
	if err != nil {
		return nil, err
	}
	return b.newNode(backends.OpTypeIdentity, in[0].Shape, in[0]), nil
}

func (b *Builder) unary(op backends.OpType, x backends.Op) (backends.Op, error) {
	in, err := b.check(op, x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.UnaryOp(op, in[0].Shape)
	if err != nil {
		return nil, err
	}
	if !numericDType(shape.DType) && op != backends.OpTypeLogicalNot {
		return nil, errors.Errorf("castgo backend: op %s not implemented for dtype %s", op, shape.DType)
	}
	return b.newNode(op, shape, in[0]), nil
}

func (b *Builder) binary(op backends.OpType, x, y backends.Op) (backends.Op, error) {
	in, err := b.check(op, x, y)
	if err != nil {
		return nil, err
	}
	var shape shapes.Shape
	if plan.IsCompare(op) {
		shape, err = shapeinference.ComparisonOp(op, in[0].Shape, in[1].Shape)
	} else {
		shape, err = shapeinference.BinaryOp(op, in[0].Shape, in[1].Shape)
	}
	if err != nil {
		return nil, err
	}
	if dt := in[0].Shape.DType; !numericDType(dt) && dt != dtypes.Bool {
		return nil, errors.Errorf("castgo backend: op %s not implemented for dtype %s", op, dt)
	}
	return b.newNode(op, shape, in[0], in[1]), nil
}

func numericDType(dt dtypes.DType) bool {
	switch dt {
	case dtypes.Float32, dtypes.Float64, dtypes.Int8, dtypes.Int32, dtypes.Int64, dtypes.Uint8:
		return true
	}
	return false
}

func (b *Builder) Neg(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeNeg, x) }

func (b *Builder) Exp(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeExp, x) }

func (b *Builder) Erf(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeErf, x) }

func (b *Builder) Logistic(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeLogistic, x)
}

func (b *Builder) Tanh(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeTanh, x) }

func (b *Builder) Sqrt(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeSqrt, x) }

func (b *Builder) Rsqrt(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeRsqrt, x) }

func (b *Builder) Abs(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeAbs, x) }

func (b *Builder) Log(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeLog, x) }

func (b *Builder) Log1p(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeLog1p, x) }

func (b *Builder) Expm1(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeExpm1, x) }

func (b *Builder) Sign(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeSign, x) }

func (b *Builder) Cos(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeCos, x) }

func (b *Builder) Sin(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeSin, x) }

func (b *Builder) Floor(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeFloor, x) }

func (b *Builder) Ceil(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeCeil, x) }

func (b *Builder) Round(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeRound, x) }

func (b *Builder) LogicalNot(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeLogicalNot, x)
}

func (b *Builder) Add(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeAdd, x, y)
}

func (b *Builder) Sub(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeSub, x, y)
}

func (b *Builder) Mul(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMul, x, y)
}

func (b *Builder) Div(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeDiv, x, y)
}

func (b *Builder) Max(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMax, x, y)
}

func (b *Builder) Min(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMin, x, y)
}

func (b *Builder) Pow(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypePow, x, y)
}

func (b *Builder) Rem(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeRem, x, y)
}

func (b *Builder) LogicalAnd(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalAnd, x, y)
}

func (b *Builder) LogicalOr(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalOr, x, y)
}

func (b *Builder) Equal(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeEqual, x, y)
}

func (b *Builder) NotEqual(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeNotEqual, x, y)
}

func (b *Builder) GreaterThan(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterThan, x, y)
}

func (b *Builder) GreaterOrEqual(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterOrEqual, x, y)
}

func (b *Builder) LessThan(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessThan, x, y)
}

func (b *Builder) LessOrEqual(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessOrEqual, x, y)
}

func (b *Builder) Where(cond, onTrue, onFalse backends.Op) (backends.Op, error) {
	in, err := b.check(backends.OpTypeWhere, cond, onTrue, onFalse)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.WhereOp(in[0].Shape, in[1].Shape, in[2].Shape)
	if err != nil {
		return nil, err
	}
	return b.newNode(backends.OpTypeWhere, shape, in...), nil
}

func (b *Builder) Reshape(x backends.Op, dims ...int) (backends.Op, error) {
	in, err := b.check(backends.OpTypeReshape, x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.ReshapeOp(in[0].Shape, dims)
	if err != nil {
		return nil, err
	}
	return b.newNode(backends.OpTypeReshape, shape, in[0]), nil
}

func (b *Builder) Transpose(x backends.Op, perm ...int) (backends.Op, error) {
	in, err := b.check(backends.OpTypeTranspose, x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.TransposeOp(in[0].Shape, perm)
	if err != nil {
		return nil, err
	}
	n := b.newNode(backends.OpTypeTranspose, shape, in[0])
	n.Axes = slices.Clone(perm)
	return n, nil
}

func (b *Builder) BroadcastInDim(x backends.Op, outputShape shapes.Shape, broadcastAxes []int) (backends.Op, error) {
	in, err := b.check(backends.OpTypeBroadcastInDim, x)
	if err != nil {
		return nil, err
	}
	if err := shapeinference.BroadcastInDimOp(in[0].Shape, outputShape, broadcastAxes); err != nil {
		return nil, err
	}
	n := b.newNode(backends.OpTypeBroadcastInDim, outputShape.Clone(), in[0])
	n.Axes = slices.Clone(broadcastAxes)
	return n, nil
}

func (b *Builder) Broadcast(x backends.Op, prefixDims ...int) (backends.Op, error) {
	in, err := b.check(backends.OpTypeBroadcast, x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.BroadcastOp(in[0].Shape, prefixDims)
	if err != nil {
		return nil, err
	}
	axes := make([]int, in[0].Shape.Rank())
	for i := range axes {
		axes[i] = len(prefixDims) + i
	}
	n := b.newNode(backends.OpTypeBroadcastInDim, shape, in[0])
	n.Axes = axes
	return n, nil
}

func (b *Builder) reduce(op backends.OpType, x backends.Op, axes []int) (backends.Op, error) {
	in, err := b.check(op, x)
	if err != nil {
		return nil, err
	}
	if len(axes) == 0 {
		axes = make([]int, in[0].Shape.Rank())
		for i := range axes {
			axes[i] = i
		}
	}
	shape, err := shapeinference.ReduceOp(in[0].Shape, axes)
	if err != nil {
		return nil, err
	}
	if !numericDType(shape.DType) {
		return nil, errors.Errorf("castgo backend: op %s not implemented for dtype %s", op, shape.DType)
	}
	n := b.newNode(op, shape, in[0])
	n.Axes = slices.Clone(axes)
	return n, nil
}

func (b *Builder) ReduceSum(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceSum, x, axes)
}

func (b *Builder) ReduceMax(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceMax, x, axes)
}

func (b *Builder) ReduceMin(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceMin, x, axes)
}

func (b *Builder) ReduceProduct(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceProduct, x, axes)
}

func (b *Builder) DotGeneral(lhs backends.Op, lc, lb []int, rhs backends.Op, rc, rb []int) (backends.Op, error) {
	in, err := b.check(backends.OpTypeDotGeneral, lhs, rhs)
	if err != nil {
		return nil, err
	}
	l, r := in[0].Shape, in[1].Shape
	if l.DType != dtypes.Float32 || r.DType != dtypes.Float32 {
		return nil, errors.Errorf("castgo backend: op DotGeneral not implemented for dtypes %s, %s", l.DType, r.DType)
	}
	if len(lc) != len(rc) || len(lb) != len(rb) {
		return nil, errors.Errorf("castgo backend: DotGeneral axes mismatch")
	}
	var dims []int
	for i, a := range lb {
		if l.Dimensions[a] != r.Dimensions[rb[i]] {
			return nil, errors.Errorf("castgo backend: DotGeneral batch dims mismatch %s %s", l, r)
		}
		dims = append(dims, l.Dimensions[a])
	}
	for i, a := range lc {
		if l.Dimensions[a] != r.Dimensions[rc[i]] {
			return nil, errors.Errorf("castgo backend: DotGeneral contracting dims mismatch %s %s", l, r)
		}
	}
	for _, a := range plan.FreeAxes(l.Rank(), lc, lb) {
		dims = append(dims, l.Dimensions[a])
	}
	for _, a := range plan.FreeAxes(r.Rank(), rc, rb) {
		dims = append(dims, r.Dimensions[a])
	}
	n := b.newNode(backends.OpTypeDotGeneral, shapes.Make(dtypes.Float32, dims...), in[0], in[1])
	n.Dot = &plan.DotParams{LhsContract: slices.Clone(lc), LhsBatch: slices.Clone(lb), RhsContract: slices.Clone(rc), RhsBatch: slices.Clone(rb)}
	return n, nil
}

func (b *Builder) Dot(lhs, rhs backends.Op) (backends.Op, error) {
	in, err := b.check(backends.OpTypeDot, lhs, rhs)
	if err != nil {
		return nil, err
	}
	lr, rr := in[0].Shape.Rank(), in[1].Shape.Rank()
	switch {
	case lr == 1 && rr == 1:
		return b.DotGeneral(lhs, []int{0}, nil, rhs, []int{0}, nil)
	case lr == 2 && rr == 1, lr == 2 && rr == 2:
		return b.DotGeneral(lhs, []int{1}, nil, rhs, []int{0}, nil)
	}
	return nil, errors.Errorf("castgo backend: Dot of ranks %d and %d", lr, rr)
}

func (b *Builder) Concatenate(axis int, operands ...backends.Op) (backends.Op, error) {
	in, err := b.check(backends.OpTypeConcatenate, operands...)
	if err != nil {
		return nil, err
	}
	ss := make([]shapes.Shape, len(in))
	for i, n := range in {
		ss[i] = n.Shape
	}
	shape, err := shapeinference.ConcatenateOp(ss, axis)
	if err != nil {
		return nil, err
	}
	n := b.newNode(backends.OpTypeConcatenate, shape, in...)
	n.Axes = []int{axis}
	return n, nil
}

func (b *Builder) Gather(operand, startIndices backends.Op, indexVectorAxis int, offsetOutputAxes, collapsedSliceAxes,
	startIndexMap, sliceSizes []int, indicesAreSorted bool) (backends.Op, error) {
	in, err := b.check(backends.OpTypeGather, operand, startIndices)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.Gather(in[0].Shape, in[1].Shape, indexVectorAxis, offsetOutputAxes, collapsedSliceAxes,
		startIndexMap, sliceSizes, indicesAreSorted)
	if err != nil {
		return nil, err
	}
	switch in[1].Shape.DType {
	case dtypes.Int32, dtypes.Int64, dtypes.Int8, dtypes.Uint8:
	default:
		return nil, errors.Errorf("castgo backend: Gather indices of dtype %s not implemented", in[1].Shape.DType)
	}
	n := b.newNode(backends.OpTypeGather, shape, in...)
	n.Gather = &plan.GatherParams{IndexVectorAxis: indexVectorAxis, OffsetOutputAxes: slices.Clone(offsetOutputAxes),
		CollapsedSliceAxes: slices.Clone(collapsedSliceAxes), StartIndexMap: slices.Clone(startIndexMap), SliceSizes: slices.Clone(sliceSizes)}
	return n, nil
}

func (b *Builder) Slice(x backends.Op, starts, limits, strides []int) (backends.Op, error) {
	in, err := b.check(backends.OpTypeSlice, x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.SliceOp(in[0].Shape, starts, limits, strides)
	if err != nil {
		return nil, err
	}
	if len(strides) == 0 {
		strides = make([]int, len(starts))
		for i := range strides {
			strides[i] = 1
		}
	}
	n := b.newNode(backends.OpTypeSlice, shape, in[0])
	n.Slice = &plan.SliceParams{Starts: slices.Clone(starts), Limits: slices.Clone(limits), Strides: slices.Clone(strides)}
	return n, nil
}

func (b *Builder) ConvertDType(x backends.Op, dtype dtypes.DType) (backends.Op, error) {
	in, err := b.check(backends.OpTypeConvertDType, x)
	if err != nil {
		return nil, err
	}
	if (!numericDType(dtype) && dtype != dtypes.Bool) || (!numericDType(in[0].Shape.DType) && in[0].Shape.DType != dtypes.Bool) {
		return nil, errors.Errorf("castgo backend: op ConvertDType not implemented for %s → %s", in[0].Shape.DType, dtype)
	}
	shape := in[0].Shape.Clone()
	shape.DType = dtype
	n := b.newNode(backends.OpTypeConvertDType, shape, in[0])
	n.ConvertTo = dtype
	return n, nil
}

func (b *Builder) Iota(shape shapes.Shape, iotaAxis int) (backends.Op, error) {
	if _, err := b.check(backends.OpTypeIota); err != nil {
		return nil, err
	}
	if iotaAxis < 0 || iotaAxis >= shape.Rank() || !numericDType(shape.DType) {
		return nil, errors.Errorf("castgo backend: Iota(%s, %d) not supported", shape, iotaAxis)
	}
	n := b.newNode(backends.OpTypeIota, shape.Clone())
	n.Axes = []int{iotaAxis}
	return n, nil
}
