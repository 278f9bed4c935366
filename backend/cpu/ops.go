package cpu

import (
	"math"
	"reflect"

	"github.com/castvideo/castgo/backend/kernels"
	"github.com/castvideo/castgo/backend/plan"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/pkg/errors"
)

// This file holds the generic (unfused) implementation of every op: used for constant folding at compile
// time and as the fallback step when no fused pattern matches.

type number interface {
	~float32 | ~float64 | ~int8 | ~int32 | ~int64 | ~uint8
}

func makeFlat(dt dtypes.DType, n int) any {
	return reflect.MakeSlice(reflect.SliceOf(dt.GoType()), n, n).Interface()
}

// stridedCopy fills dst (contiguous over dims) with src[off + Σ idx[i]·strides[i]].
func stridedCopy[T any](dst, src []T, dims, strides []int, off int) {
	r := len(dims)
	if r == 0 {
		dst[0] = src[off]
		return
	}
	total := 1
	for _, d := range dims {
		total *= d
	}
	if total == 0 {
		return
	}
	last, ls := dims[r-1], strides[r-1]
	idx := make([]int, r)
	base := off
	for o := 0; o < total; o += last {
		row := dst[o : o+last]
		if ls == 1 {
			copy(row, src[base:base+last])
		} else {
			p := base
			for j := range row {
				row[j] = src[p]
				p += ls
			}
		}
		// advance idx over dims[:r-1]
		for a := r - 2; a >= 0; a-- {
			idx[a]++
			base += strides[a]
			if idx[a] < dims[a] {
				break
			}
			base -= strides[a] * dims[a]
			idx[a] = 0
		}
	}
}

func stridedCopyAny(dst, src any, dims, strides []int, off int) {
	switch d := dst.(type) {
	case []float32:
		stridedCopy(d, src.([]float32), dims, strides, off)
	case []float64:
		stridedCopy(d, src.([]float64), dims, strides, off)
	case []int8:
		stridedCopy(d, src.([]int8), dims, strides, off)
	case []int32:
		stridedCopy(d, src.([]int32), dims, strides, off)
	case []int64:
		stridedCopy(d, src.([]int64), dims, strides, off)
	case []uint8:
		stridedCopy(d, src.([]uint8), dims, strides, off)
	case []bool:
		stridedCopy(d, src.([]bool), dims, strides, off)
	default:
		panic(errors.Errorf("castgo backend: strided copy of %T", dst))
	}
}

// broadcastStrides returns the strides with which an operand of shape in is read for an output of shape out
// under the binary-op broadcasting rules (scalar, or same rank with dims 1).
func broadcastStrides(in, out []int) []int {
	s := make([]int, len(out))
	if len(in) == 0 {
		return s
	}
	rs := plan.RowMajorStrides(in)
	for i := range out {
		if in[i] != 1 || out[i] == 1 {
			s[i] = rs[i]
		}
	}
	return s
}

// materializeBroadcast returns x read with the broadcast strides as a contiguous slice of out's size.
func materializeBroadcast(x any, in []int, out []int, dt dtypes.DType) any {
	if shapes.Make(dt, in...).Size() == shapes.Make(dt, out...).Size() {
		return x
	}
	size := 1
	for _, d := range out {
		size *= d
	}
	dst := makeFlat(dt, size)
	stridedCopyAny(dst, x, out, broadcastStrides(in, out), 0)
	return dst
}

func unaryF[T float32 | float64](op backends.OpType, dst, x []T) error {
	var f func(float64) float64
	switch op {
	case backends.OpTypeNeg:
		for i, v := range x {
			dst[i] = -v
		}
		return nil
	case backends.OpTypeExp:
		f = math.Exp
	case backends.OpTypeErf:
		f = math.Erf
	case backends.OpTypeLogistic:
		f = func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	case backends.OpTypeTanh:
		f = math.Tanh
	case backends.OpTypeSqrt:
		f = math.Sqrt
	case backends.OpTypeRsqrt:
		f = func(v float64) float64 { return 1 / math.Sqrt(v) }
	case backends.OpTypeAbs:
		f = math.Abs
	case backends.OpTypeLog:
		f = math.Log
	case backends.OpTypeLog1p:
		f = math.Log1p
	case backends.OpTypeExpm1:
		f = math.Expm1
	case backends.OpTypeSign:
		f = func(v float64) float64 {
			switch {
			case v > 0:
				return 1
			case v < 0:
				return -1
			}
			return v
		}
	case backends.OpTypeCos:
		f = math.Cos
	case backends.OpTypeSin:
		f = math.Sin
	case backends.OpTypeFloor:
		f = math.Floor
	case backends.OpTypeCeil:
		f = math.Ceil
	case backends.OpTypeRound:
		f = math.RoundToEven
	default:
		return errors.Errorf("castgo backend: op %s not implemented for floats", op)
	}
	for i, v := range x {
		dst[i] = T(f(float64(v)))
	}
	return nil
}

func unaryI[T ~int8 | ~int32 | ~int64 | ~uint8](op backends.OpType, dst, x []T) error {
	switch op {
	case backends.OpTypeNeg:
		for i, v := range x {
			dst[i] = -v
		}
	case backends.OpTypeAbs:
		for i, v := range x {
			if v < 0 {
				v = -v
			}
			dst[i] = v
		}
	case backends.OpTypeSign:
		for i, v := range x {
			switch {
			case v > 0:
				dst[i] = 1
			case v < 0:
				dst[i] = ^T(0)
			default:
				dst[i] = 0
			}
		}
	default:
		return errors.Errorf("castgo backend: op %s not implemented for integers", op)
	}
	return nil
}

func evalUnary(op backends.OpType, x any) (any, error) {
	switch v := x.(type) {
	case []float32:
		d := make([]float32, len(v))
		switch op {
		case backends.OpTypeExp:
			kernels.Exp(d, v)
		case backends.OpTypeErf:
			kernels.Erf(d, v)
		case backends.OpTypeLogistic:
			kernels.Logistic(d, v)
		case backends.OpTypeTanh:
			kernels.Tanh(d, v)
		default:
			return d, unaryF(op, d, v)
		}
		return d, nil
	case []float64:
		d := make([]float64, len(v))
		return d, unaryF(op, d, v)
	case []int8:
		d := make([]int8, len(v))
		return d, unaryI(op, d, v)
	case []int32:
		d := make([]int32, len(v))
		return d, unaryI(op, d, v)
	case []int64:
		d := make([]int64, len(v))
		return d, unaryI(op, d, v)
	case []uint8:
		d := make([]uint8, len(v))
		return d, unaryI(op, d, v)
	case []bool:
		if op == backends.OpTypeLogicalNot {
			d := make([]bool, len(v))
			for i, b := range v {
				d[i] = !b
			}
			return d, nil
		}
	}
	return nil, errors.Errorf("castgo backend: op %s not implemented for %T", op, x)
}

func binaryT[T number](op backends.OpType, d, a, b []T) error {
	switch op {
	case backends.OpTypeAdd:
		for i := range d {
			d[i] = a[i] + b[i]
		}
	case backends.OpTypeSub:
		for i := range d {
			d[i] = a[i] - b[i]
		}
	case backends.OpTypeMul:
		for i := range d {
			d[i] = a[i] * b[i]
		}
	case backends.OpTypeDiv:
		for i := range d {
			d[i] = a[i] / b[i]
		}
	case backends.OpTypeMax:
		for i := range d {
			d[i] = max(a[i], b[i])
		}
	case backends.OpTypeMin:
		for i := range d {
			d[i] = min(a[i], b[i])
		}
	case backends.OpTypePow:
		for i := range d {
			d[i] = T(math.Pow(float64(a[i]), float64(b[i])))
		}
	case backends.OpTypeRem:
		for i := range d {
			d[i] = T(math.Mod(float64(a[i]), float64(b[i])))
		}
	default:
		return errors.Errorf("castgo backend: op %s not implemented", op)
	}
	return nil
}

func compareT[T number](op backends.OpType, d []bool, a, b []T) error {
	for i := range d {
		var r bool
		switch op {
		case backends.OpTypeEqual:
			r = a[i] == b[i]
		case backends.OpTypeNotEqual:
			r = a[i] != b[i]
		case backends.OpTypeGreaterThan:
			r = a[i] > b[i]
		case backends.OpTypeGreaterOrEqual:
			r = a[i] >= b[i]
		case backends.OpTypeLessThan:
			r = a[i] < b[i]
		case backends.OpTypeLessOrEqual:
			r = a[i] <= b[i]
		default:
			return errors.Errorf("castgo backend: op %s not implemented", op)
		}
		d[i] = r
	}
	return nil
}

func evalBinary(n *plan.Node, a, b any) (any, error) {
	out := n.Shape.Dimensions
	dt := n.Inputs[0].Shape.DType
	a = materializeBroadcast(a, n.Inputs[0].Shape.Dimensions, out, dt)
	b = materializeBroadcast(b, n.Inputs[1].Shape.Dimensions, out, dt)
	size := n.Shape.Size()
	if plan.IsCompare(n.Op) {
		d := make([]bool, size)
		var err error
		switch av := a.(type) {
		case []float32:
			err = compareT(n.Op, d, av, b.([]float32))
		case []float64:
			err = compareT(n.Op, d, av, b.([]float64))
		case []int8:
			err = compareT(n.Op, d, av, b.([]int8))
		case []int32:
			err = compareT(n.Op, d, av, b.([]int32))
		case []int64:
			err = compareT(n.Op, d, av, b.([]int64))
		case []uint8:
			err = compareT(n.Op, d, av, b.([]uint8))
		default:
			err = errors.Errorf("castgo backend: %s of %T", n.Op, a)
		}
		return d, err
	}
	switch av := a.(type) {
	case []float32:
		d := make([]float32, size)
		bv := b.([]float32)
		switch n.Op {
		case backends.OpTypeAdd:
			kernels.Add(d, av, bv)
		case backends.OpTypeSub:
			kernels.Sub(d, av, bv)
		case backends.OpTypeMul:
			kernels.Mul(d, av, bv)
		case backends.OpTypeDiv:
			kernels.Div(d, av, bv)
		default:
			return d, binaryT(n.Op, d, av, bv)
		}
		return d, nil
	case []float64:
		d := make([]float64, size)
		return d, binaryT(n.Op, d, av, b.([]float64))
	case []int8:
		d := make([]int8, size)
		return d, binaryT(n.Op, d, av, b.([]int8))
	case []int32:
		d := make([]int32, size)
		return d, binaryT(n.Op, d, av, b.([]int32))
	case []int64:
		d := make([]int64, size)
		return d, binaryT(n.Op, d, av, b.([]int64))
	case []uint8:
		d := make([]uint8, size)
		return d, binaryT(n.Op, d, av, b.([]uint8))
	case []bool:
		d := make([]bool, size)
		bv := b.([]bool)
		for i := range d {
			switch n.Op {
			case backends.OpTypeLogicalAnd:
				d[i] = av[i] && bv[i]
			case backends.OpTypeLogicalOr:
				d[i] = av[i] || bv[i]
			default:
				return nil, errors.Errorf("castgo backend: op %s not implemented for bool", n.Op)
			}
		}
		return d, nil
	}
	return nil, errors.Errorf("castgo backend: op %s not implemented for %T", n.Op, a)
}

func reduceT[T number](op backends.OpType, dst, src []T, inDims, outStrides []int) {
	var init T
	if op == backends.OpTypeReduceProduct {
		init = 1
	}
	for i := range dst {
		dst[i] = init
	}
	var seen []bool
	if op == backends.OpTypeReduceMax || op == backends.OpTypeReduceMin {
		seen = make([]bool, len(dst))
	}
	r := len(inDims)
	idx := make([]int, r)
	o := 0
	for _, v := range src {
		switch op {
		case backends.OpTypeReduceSum:
			dst[o] += v
		case backends.OpTypeReduceProduct:
			dst[o] *= v
		case backends.OpTypeReduceMax:
			if !seen[o] || v > dst[o] || v != v {
				dst[o], seen[o] = v, true
			}
		case backends.OpTypeReduceMin:
			if !seen[o] || v < dst[o] || v != v {
				dst[o], seen[o] = v, true
			}
		}
		for a := r - 1; a >= 0; a-- {
			idx[a]++
			o += outStrides[a]
			if idx[a] < inDims[a] {
				break
			}
			o -= outStrides[a] * inDims[a]
			idx[a] = 0
		}
	}
}

func evalReduce(n *plan.Node, x any) (any, error) {
	if v, ok := fastReduce(n, x); ok { // ops_train.go
		return v, nil
	}
	in := n.Inputs[0].Shape.Dimensions
	// strides into the output for each input axis (0 for reduced axes)
	outStrides := make([]int, len(in))
	acc := 1
	for a := len(in) - 1; a >= 0; a-- {
		reduced := false
		for _, r := range n.Axes {
			if r == a {
				reduced = true
			}
		}
		if !reduced {
			outStrides[a] = acc
			acc *= in[a]
		}
	}
	size := n.Shape.Size()
	if n.Inputs[0].Shape.Size() == 0 {
		return makeFlat(n.Shape.DType, size), nil
	}
	switch v := x.(type) {
	case []float32:
		d := make([]float32, size)
		reduceT(n.Op, d, v, in, outStrides)
		return d, nil
	case []float64:
		d := make([]float64, size)
		reduceT(n.Op, d, v, in, outStrides)
		return d, nil
	case []int32:
		d := make([]int32, size)
		reduceT(n.Op, d, v, in, outStrides)
		return d, nil
	case []int64:
		d := make([]int64, size)
		reduceT(n.Op, d, v, in, outStrides)
		return d, nil
	case []int8:
		d := make([]int8, size)
		reduceT(n.Op, d, v, in, outStrides)
		return d, nil
	case []uint8:
		d := make([]uint8, size)
		reduceT(n.Op, d, v, in, outStrides)
		return d, nil
	}
	return nil, errors.Errorf("castgo backend: %s of %T", n.Op, x)
}

// transposeInto copies x (dims in) permuted by perm into a new contiguous slice.
func evalTranspose(x any, in []int, perm []int, dt dtypes.DType) any {
	rs := plan.RowMajorStrides(in)
	dims := make([]int, len(perm))
	strides := make([]int, len(perm))
	for i, p := range perm {
		dims[i], strides[i] = in[p], rs[p]
	}
	d := makeFlat(dt, shapes.Make(dt, dims...).Size())
	stridedCopyAny(d, x, dims, strides, 0)
	return d
}

func evalBroadcastInDim(n *plan.Node, x any) any {
	in := n.Inputs[0].Shape.Dimensions
	rs := plan.RowMajorStrides(in)
	strides := make([]int, n.Shape.Rank())
	for i, a := range n.Axes {
		if in[i] == n.Shape.Dimensions[a] {
			strides[a] = rs[i]
		}
	}
	d := makeFlat(n.Shape.DType, n.Shape.Size())
	stridedCopyAny(d, x, n.Shape.Dimensions, strides, 0)
	return d
}

func evalConcat(n *plan.Node, xs []any) any {
	axis := n.Axes[0]
	out := n.Shape.Dimensions
	outer := 1
	for _, d := range out[:axis] {
		outer *= d
	}
	inner := 1
	for _, d := range out[axis+1:] {
		inner *= d
	}
	dst := reflect.ValueOf(makeFlat(n.Shape.DType, n.Shape.Size()))
	rowOut := out[axis] * inner
	off := 0
	for i, x := range xs {
		w := n.Inputs[i].Shape.Dimensions[axis] * inner
		src := reflect.ValueOf(x)
		for o := 0; o < outer; o++ {
			reflect.Copy(dst.Slice(o*rowOut+off, o*rowOut+off+w), src.Slice(o*w, (o+1)*w))
		}
		off += w
	}
	return dst.Interface()
}

func evalSlice(n *plan.Node, x any) any {
	p := n.Slice
	in := n.Inputs[0].Shape.Dimensions
	rs := plan.RowMajorStrides(in)
	off := 0
	strides := make([]int, len(in))
	for i := range in {
		off += p.Starts[i] * rs[i]
		strides[i] = rs[i] * p.Strides[i]
	}
	d := makeFlat(n.Shape.DType, n.Shape.Size())
	stridedCopyAny(d, x, n.Shape.Dimensions, strides, off)
	return d
}

// evalGather implements XLA's Gather semantics in general.
func evalGather(n *plan.Node, x, idxAny any) any {
	g := n.Gather
	operand := n.Inputs[0].Shape.Dimensions
	idxDims := n.Inputs[1].Shape.Dimensions
	idx := plan.ToInts(idxAny)
	ors := plan.RowMajorStrides(operand)
	outDims := n.Shape.Dimensions
	out := reflect.ValueOf(makeFlat(n.Shape.DType, n.Shape.Size()))
	src := reflect.ValueOf(x)
	isOffset := make([]bool, len(outDims))
	for _, a := range g.OffsetOutputAxes {
		isOffset[a] = true
	}
	// operand axes that carry offsets (not collapsed), in order
	var offAxes []int
	for a := range operand {
		collapsed := false
		for _, c := range g.CollapsedSliceAxes {
			if c == a {
				collapsed = true
			}
		}
		if !collapsed {
			offAxes = append(offAxes, a)
		}
	}
	ivAxis := g.IndexVectorAxis
	idxStrides := plan.RowMajorStrides(idxDims)
	outIdx := make([]int, len(outDims))
	total := n.Shape.Size()
	for o := 0; o < total; o++ {
		// batch index → position in indices (index vector axis inserted)
		pos := 0
		bi := 0
		for a := range outDims {
			if isOffset[a] {
				continue
			}
			ia := bi
			if ia >= ivAxis && ivAxis < len(idxDims) {
				ia++
			}
			pos += outIdx[a] * idxStrides[ia]
			bi++
		}
		srcOff := 0
		for k, oa := range g.StartIndexMap {
			p := pos
			if ivAxis < len(idxDims) {
				p += k * idxStrides[ivAxis]
			}
			s := idx[p]
			s = max(0, min(s, operand[oa]-g.SliceSizes[oa]))
			srcOff += s * ors[oa]
		}
		for k, a := range g.OffsetOutputAxes {
			srcOff += outIdx[a] * ors[offAxes[k]]
		}
		out.Index(o).Set(src.Index(srcOff))
		for a := len(outDims) - 1; a >= 0; a-- {
			outIdx[a]++
			if outIdx[a] < outDims[a] {
				break
			}
			outIdx[a] = 0
		}
	}
	return out.Interface()
}

func convertT[S, D number](dst []D, src []S) {
	for i, v := range src {
		dst[i] = D(v)
	}
}

func evalConvert(n *plan.Node, x any) (any, error) {
	size := n.Shape.Size()
	if b, ok := x.([]bool); ok {
		f := reflect.ValueOf(makeFlat(n.Shape.DType, size))
		for i, v := range b {
			if v {
				f.Index(i).Set(reflect.ValueOf(1).Convert(f.Type().Elem()))
			}
		}
		return f.Interface(), nil
	}
	if n.Shape.DType == dtypes.Bool {
		src := reflect.ValueOf(x)
		d := make([]bool, size)
		for i := range d {
			d[i] = !src.Index(i).IsZero()
		}
		return d, nil
	}
	switch d := makeFlat(n.Shape.DType, size).(type) {
	case []float32:
		return d, convertAny(d, x)
	case []float64:
		return d, convertAny(d, x)
	case []int8:
		return d, convertAny(d, x)
	case []int32:
		return d, convertAny(d, x)
	case []int64:
		return d, convertAny(d, x)
	case []uint8:
		return d, convertAny(d, x)
	}
	return nil, errors.Errorf("castgo backend: ConvertDType to %s", n.Shape.DType)
}

func convertAny[D number](d []D, x any) error {
	switch s := x.(type) {
	case []float32:
		convertT(d, s)
	case []float64:
		convertT(d, s)
	case []int8:
		convertT(d, s)
	case []int32:
		convertT(d, s)
	case []int64:
		convertT(d, s)
	case []uint8:
		convertT(d, s)
	default:
		return errors.Errorf("castgo backend: ConvertDType from %T", x)
	}
	return nil
}

func evalIota(n *plan.Node) any {
	dims := n.Shape.Dimensions
	axis := n.Axes[0]
	inner := 1
	for _, d := range dims[axis+1:] {
		inner *= d
	}
	f := reflect.ValueOf(makeFlat(n.Shape.DType, n.Shape.Size()))
	et := f.Type().Elem()
	for i := 0; i < f.Len(); i++ {
		v := (i / inner) % dims[axis]
		f.Index(i).Set(reflect.ValueOf(v).Convert(et))
	}
	return f.Interface()
}

func evalWhere(n *plan.Node, c, a, b any) any {
	out := n.Shape.Dimensions
	dt := n.Shape.DType
	c = materializeBroadcast(c, n.Inputs[0].Shape.Dimensions, out, dtypes.Bool)
	a = materializeBroadcast(a, n.Inputs[1].Shape.Dimensions, out, dt)
	b = materializeBroadcast(b, n.Inputs[2].Shape.Dimensions, out, dt)
	cv := c.([]bool)
	av, bv := reflect.ValueOf(a), reflect.ValueOf(b)
	d := reflect.ValueOf(makeFlat(dt, n.Shape.Size()))
	for i, t := range cv {
		if t {
			d.Index(i).Set(av.Index(i))
		} else {
			d.Index(i).Set(bv.Index(i))
		}
	}
	return d.Interface()
}

// Implements reports whether Eval has an implementation of op.
func Implements(op backends.OpType) bool {
	switch op {
	case backends.OpTypeIdentity, backends.OpTypeReshape, backends.OpTypeTranspose, backends.OpTypeBroadcastInDim,
		backends.OpTypeReduceSum, backends.OpTypeReduceMax, backends.OpTypeReduceMin, backends.OpTypeReduceProduct,
		backends.OpTypeDotGeneral, backends.OpTypeConcatenate, backends.OpTypeGather, backends.OpTypeSlice,
		backends.OpTypeConvertDType, backends.OpTypeIota, backends.OpTypeWhere:
		return true
	}
	return plan.IsUnary(op) || plan.IsBinary(op) || plan.IsCompare(op) || trainEvals[op] != nil
}

// Eval computes node n from its input values with the generic implementations (a plan's generic steps,
// and the planner's constant folding).
func Eval(n *plan.Node, ins []any) (any, error) {
	switch {
	case plan.IsUnary(n.Op):
		return evalUnary(n.Op, ins[0])
	case plan.IsBinary(n.Op), plan.IsCompare(n.Op):
		return evalBinary(n, ins[0], ins[1])
	}
	switch n.Op {
	case backends.OpTypeIdentity, backends.OpTypeReshape:
		return ins[0], nil
	case backends.OpTypeTranspose:
		return evalTranspose(ins[0], n.Inputs[0].Shape.Dimensions, n.Axes, n.Shape.DType), nil
	case backends.OpTypeBroadcastInDim:
		return evalBroadcastInDim(n, ins[0]), nil
	case backends.OpTypeReduceSum, backends.OpTypeReduceMax, backends.OpTypeReduceMin, backends.OpTypeReduceProduct:
		return evalReduce(n, ins[0])
	case backends.OpTypeDotGeneral:
		return dotNoTranspose(n, ins[0].([]float32), ins[1].([]float32)), nil
	case backends.OpTypeConcatenate:
		return evalConcat(n, ins), nil
	case backends.OpTypeGather:
		return evalGather(n, ins[0], ins[1]), nil
	case backends.OpTypeSlice:
		return evalSlice(n, ins[0]), nil
	case backends.OpTypeConvertDType:
		return evalConvert(n, ins[0])
	case backends.OpTypeIota:
		return evalIota(n), nil
	case backends.OpTypeWhere:
		return evalWhere(n, ins[0], ins[1], ins[2]), nil
	}
	if f := trainEvals[n.Op]; f != nil {
		return f(n, ins)
	}
	return nil, errors.Errorf("castgo backend: op %s has no implementation", n.Op)
}
