// Package weights holds named model tensors independently of where they came from (an official PyTorch
// checkpoint, a castgo model file, a training run, or the goldens' hash recipe) and of how they are stored
// (float32, or int8 with a float32 scale per output channel).
package weights

import (
	"fmt"
	"math"
	"sort"
)

// DType names how a Tensor stores its values.
type DType string

const (
	// F32 is plain float32 storage: Tensor.F32 holds the values.
	F32 DType = "F32"
	// I8 is symmetric per-output-channel int8 storage: value[o, ...] = float32(I8[o, ...]) * Scale[o].
	I8 DType = "I8"
)

// Tensor is one named parameter in C (row-major) order with PyTorch's layout (Linear weights are [out, in]).
type Tensor struct {
	Shape []int     // dimensions, outermost first
	DType DType     // F32 or I8
	F32   []float32 // values when DType == F32
	I8    []int8    // quantized values when DType == I8
	Scale []float32 // per-output-channel (Shape[0]) scales when DType == I8
}

// NewF32 returns a float32 tensor of the given shape holding data (not copied).
func NewF32(shape []int, data []float32) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), DType: F32, F32: data}
}

// Numel is the number of elements implied by the shape.
func (t *Tensor) Numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Validate checks that the storage matches the shape and dtype.
func (t *Tensor) Validate() error {
	n := t.Numel()
	switch t.DType {
	case F32:
		if len(t.F32) != n {
			return fmt.Errorf("float32 tensor of shape %v needs %d values, has %d", t.Shape, n, len(t.F32))
		}
	case I8:
		if len(t.Shape) == 0 {
			return fmt.Errorf("int8 tensor needs at least one dimension")
		}
		if len(t.I8) != n {
			return fmt.Errorf("int8 tensor of shape %v needs %d values, has %d", t.Shape, n, len(t.I8))
		}
		if len(t.Scale) != t.Shape[0] {
			return fmt.Errorf("int8 tensor of shape %v needs %d per-channel scales, has %d", t.Shape, t.Shape[0], len(t.Scale))
		}
	default:
		return fmt.Errorf("unknown dtype %q", t.DType)
	}
	return nil
}

// Float32 returns the values as float32, dequantizing int8 storage (a new slice in that case).
func (t *Tensor) Float32() []float32 {
	if t.DType == F32 {
		return t.F32
	}
	out := make([]float32, len(t.I8))
	rows := t.Shape[0]
	cols := len(t.I8) / rows
	for o := 0; o < rows; o++ {
		s := t.Scale[o]
		for i := 0; i < cols; i++ {
			out[o*cols+i] = float32(t.I8[o*cols+i]) * s
		}
	}
	return out
}

// QuantizeInt8 returns a symmetric per-output-channel int8 copy of a float32 tensor of rank >= 2:
// scale[o] = max|w[o,:]| / 127 and q = round(w/scale) clamped to [-127, 127].
func QuantizeInt8(t *Tensor) (*Tensor, error) {
	if t.DType != F32 {
		return nil, fmt.Errorf("quantize: tensor is already %s", t.DType)
	}
	if len(t.Shape) < 2 {
		return nil, fmt.Errorf("quantize: per-channel int8 needs rank >= 2, got shape %v", t.Shape)
	}
	rows := t.Shape[0]
	cols := t.Numel() / rows
	q := &Tensor{Shape: append([]int(nil), t.Shape...), DType: I8, I8: make([]int8, t.Numel()), Scale: make([]float32, rows)}
	for o := 0; o < rows; o++ {
		row := t.F32[o*cols : (o+1)*cols]
		var maxAbs float32
		for _, v := range row {
			if a := float32(math.Abs(float64(v))); a > maxAbs {
				maxAbs = a
			}
		}
		if maxAbs == 0 {
			q.Scale[o] = 1
			continue
		}
		s := maxAbs / 127
		q.Scale[o] = s
		for i, v := range row {
			r := math.Round(float64(v / s))
			if r > 127 {
				r = 127
			} else if r < -127 {
				r = -127
			}
			q.I8[o*cols+i] = int8(r)
		}
	}
	return q, nil
}

// Set maps PyTorch state-dict names (e.g. "blocks.0.clip_attn.in_proj_weight") to tensors.
type Set map[string]*Tensor

// Names returns the tensor names in sorted order.
func (s Set) Names() []string {
	names := make([]string, 0, len(s))
	for k := range s {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Bytes is the storage size of every tensor (values plus int8 scales).
func (s Set) Bytes() int64 {
	var n int64
	for _, t := range s {
		switch t.DType {
		case F32:
			n += 4 * int64(len(t.F32))
		case I8:
			n += int64(len(t.I8)) + 4*int64(len(t.Scale))
		}
	}
	return n
}
