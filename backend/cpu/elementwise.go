package cpu

import (
	"math"

	"github.com/castvideo/castgo/backend/kernels"
	"github.com/castvideo/castgo/backend/plan"
	"github.com/gomlx/gomlx/backends"
)

// The fused elementwise loop (plan.Elementwise) and the strided reads and copies of views.

// ewChunk is the number of output values an elementwise loop computes per instruction pass.
const ewChunk = 256

// lowerElementwise runs a fused elementwise loop ewChunk values at a time: each leaf is read (or gathered
// through its strides) into a register, then the instructions run over registers with the kernels' vector
// loops; the last one writes the output.
func lowerElementwise(g *plan.Elementwise, out *plan.Node) stepFunc {
	dims, leaves, instrs := g.Dims, g.Leaves, g.Instrs
	size := out.Shape.Size()
	return func(e *env) any {
		dst := e.allocF32(out)
		data := make([][]float32, len(leaves))
		for i, l := range leaves {
			if l.Root != nil {
				data[i] = e.f32(l.Root)
			}
		}
		nChunks := (size + ewChunk - 1) / ewChunk
		kernels.ParallelFor(nChunks, 16, func(lo, hi int) {
			regs := make([][]float32, len(instrs))
			for i := range regs {
				regs[i] = make([]float32, ewChunk)
			}
			lregs := make([][]float32, len(leaves))
			idx := make([]int, len(dims))
			for ch := lo; ch < hi; ch++ {
				start := ch * ewChunk
				cnt := min(ewChunk, size-start)
				for i, l := range leaves {
					switch {
					case l.IsScalar:
						lregs[i] = nil
					case l.Contiguous:
						lregs[i] = data[i][l.Off+start : l.Off+start+cnt]
					default:
						if lregs[i] == nil || cap(lregs[i]) < ewChunk || sameBacking(lregs[i], data[i]) {
							lregs[i] = make([]float32, ewChunk)
						}
						lregs[i] = lregs[i][:cnt]
						gatherStrided(lregs[i], data[i], dims, l.Strides, l.Off, start, idx)
					}
				}
				for k, in := range instrs {
					d := regs[k][:cnt]
					if k == len(instrs)-1 {
						d = dst[start : start+cnt]
					}
					get := func(r int) ([]float32, float32, bool) {
						if r < 0 {
							l := leaves[-r-1]
							if l.IsScalar {
								return nil, l.Scalar, true
							}
							return lregs[-r-1], 0, false
						}
						return regs[r][:cnt], 0, false
					}
					a, as, aScalar := get(in.A)
					if aScalar { // a scalar first operand (rare): materialise it
						a = fill(regs[k][:cnt], as)
						if k == len(instrs)-1 {
							a = fill(make([]float32, cnt), as)
						}
					}
					var b []float32
					var bs float32
					var bScalar bool
					if in.Binary() {
						b, bs, bScalar = get(in.B)
					}
					applyElementwise(in.Op, d, a, b, bs, bScalar)
				}
			}
		})
		return dst
	}
}

func sameBacking(a, b []float32) bool {
	return len(a) > 0 && len(b) > 0 && &a[:cap(a)][cap(a)-1] == &b[:cap(b)][cap(b)-1]
}

func fill(d []float32, v float32) []float32 {
	for i := range d {
		d[i] = v
	}
	return d
}

// gatherStrided reads dst[i] = src[off + Σ idx(start+i)[a]·strides[a]] for the output multi-index of the
// flat positions start, start+1, ….
func gatherStrided(dst, src []float32, dims, strides []int, off, start int, idx []int) {
	r := len(dims)
	p := off
	rem := start
	for a := r - 1; a >= 0; a-- {
		idx[a] = rem % dims[a]
		rem /= dims[a]
		p += idx[a] * strides[a]
	}
	if r == 0 {
		fill(dst, src[off])
		return
	}
	gatherRuns(dst, src, dims, strides, p, idx)
}

// applyElementwise computes d = op(a, b) (b the scalar bs when bScalar) over one chunk of registers.
func applyElementwise(op backends.OpType, d, a, b []float32, bs float32, bScalar bool) {
	switch op {
	case backends.OpTypeAdd:
		if bScalar {
			kernels.AddScalar(d, a, bs)
		} else {
			kernels.Add(d, a, b)
		}
	case backends.OpTypeSub:
		if bScalar {
			kernels.AddScalar(d, a, -bs)
		} else {
			kernels.Sub(d, a, b)
		}
	case backends.OpTypeMul:
		if bScalar {
			kernels.MulScalar(d, a, bs)
		} else {
			kernels.Mul(d, a, b)
		}
	case backends.OpTypeDiv:
		if bScalar {
			for i := range d {
				d[i] = a[i] / bs
			}
		} else {
			kernels.Div(d, a, b)
		}
	case backends.OpTypeMax, backends.OpTypeMin:
		for i := range d {
			y := bs
			if !bScalar {
				y = b[i]
			}
			if op == backends.OpTypeMax {
				d[i] = max(a[i], y)
			} else {
				d[i] = min(a[i], y)
			}
		}
	case backends.OpTypeNeg:
		for i := range d {
			d[i] = -a[i]
		}
	case backends.OpTypeExp:
		kernels.Exp(d, a)
	case backends.OpTypeErf:
		kernels.Erf(d, a)
	case backends.OpTypeLogistic:
		kernels.Logistic(d, a)
	case backends.OpTypeTanh:
		kernels.Tanh(d, a)
	case backends.OpTypeSqrt:
		for i := range d {
			d[i] = float32(math.Sqrt(float64(a[i])))
		}
	case backends.OpTypeRsqrt:
		for i := range d {
			d[i] = float32(1 / math.Sqrt(float64(a[i])))
		}
	case backends.OpTypeAbs:
		for i := range d {
			d[i] = float32(math.Abs(float64(a[i])))
		}
	case backends.OpTypeLog:
		for i := range d {
			d[i] = float32(math.Log(float64(a[i])))
		}
	}
}

// gatherRuns is gatherStrided's loop from source position p and output multi-index idx: a run along the last
// axis at a time (a fill for a broadcast axis, a copy for a contiguous one), the carry once per run.
func gatherRuns(dst, src []float32, dims, strides []int, p int, idx []int) {
	r := len(dims)
	ls, ld := strides[r-1], dims[r-1]
	for i := 0; i < len(dst); {
		n := min(ld-idx[r-1], len(dst)-i)
		run := dst[i : i+n]
		switch ls {
		case 0:
			v := src[p]
			for j := range run {
				run[j] = v
			}
		case 1:
			copy(run, src[p:p+n])
		default:
			q := p
			for j := range run {
				run[j] = src[q]
				q += ls
			}
		}
		i += n
		idx[r-1] += n
		p += n * ls
		if idx[r-1] == ld {
			for a := r - 1; a >= 0; a-- {
				if idx[a] < dims[a] {
					break
				}
				p -= strides[a] * dims[a]
				idx[a] = 0
				if a > 0 {
					idx[a-1]++
					p += strides[a-1]
				}
			}
		}
	}
}

// copyStrided2 copies the strided block dims of src (offset so, strides ss) to dst (offset do, strides ds).
func copyStrided2(dst []float32, do int, ds []int, src []float32, so int, ss []int, dims []int) {
	r := len(dims)
	if r == 0 {
		dst[do] = src[so]
		return
	}
	for _, d := range dims {
		if d == 0 {
			return
		}
	}
	last := dims[r-1]
	idx := make([]int, r)
	for {
		if ds[r-1] == 1 && ss[r-1] == 1 {
			copy(dst[do:do+last], src[so:so+last])
		} else {
			for j := 0; j < last; j++ {
				dst[do+j*ds[r-1]] = src[so+j*ss[r-1]]
			}
		}
		a := r - 2
		for ; a >= 0; a-- {
			idx[a]++
			do += ds[a]
			so += ss[a]
			if idx[a] < dims[a] {
				break
			}
			do -= ds[a] * dims[a]
			so -= ss[a] * dims[a]
			idx[a] = 0
		}
		if a < 0 {
			return
		}
	}
}
