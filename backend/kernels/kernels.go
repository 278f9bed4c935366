// Package kernels holds the numeric kernels of castgo's own GoMLX backend (package backend): packed
// float32 GEMM with an int8-weight variant, a fused epilogue, row-wise softmax and layer norm, and vectorised
// elementwise functions. Each kernel has a portable Go version (any GOOS/GOARCH) and, chosen by build tags,
// versions for amd64 AVX2+FMA and WebAssembly SIMD128 through simd/archsimd (GOEXPERIMENT=simd), in the
// manner of gonum's internal/asm: one file per architecture beside the portable fallback, each tested against
// a naive reference.
//
// Natively the GEMM splits its work across goroutines (SetThreads, default GOMAXPROCS); in js/wasm it runs on
// the one thread there is.
//
// THIS FILE IS THE API CONTRACT between the backend and the kernels. The bodies here are naive reference
// implementations; faster ones replace them behind the same signatures.
package kernels

// Activation is applied elementwise in a GEMM epilogue, after the bias.
type Activation int

const (
	// ActNone leaves the value as is.
	ActNone Activation = iota
	// ActGELU is the exact GELU 0.5·x·(1+erf(x/√2)).
	ActGELU
	// ActQuickGELU is CLIP's x·sigmoid(1.702·x).
	ActQuickGELU
)

// Epilogue is what Gemm does to each output element c[i,j] = Σ_k a[i,k]·b[k,j], in this order:
// y = Alpha·c (Alpha 0 means 1) + Bias[j]; y = Act(y); y = y·PostScale (0 means 1) + Residual[i·LdRes+j];
// then C[i,j] = y, or C[i,j] += y with Accumulate.
type Epilogue struct {
	Alpha      float32
	Bias       []float32 // len ≥ n, or nil
	Act        Activation
	PostScale  float32
	Residual   []float32 // row-major with row stride LdRes, or nil; may alias C exactly (same offset, LdRes == ldc)
	LdRes      int
	Accumulate bool
}

// PackedB is a right-hand GEMM operand (K×N) laid out for the kernels; pack it once (e.g. per weight per
// loaded model) and reuse it for any number of Gemm calls.
type PackedB struct {
	K, N int
	f32  []float32 // reference layout: K×N row-major
	i8   []int8    // int8 weights, reference layout: N×K row-major (as stored)
	sc   []float32 // per-column (output channel) scale for i8
}

// PackB packs B (k×n) for Gemm. If transposed, b holds Bᵀ: n rows of k values with row stride ldb (a
// PyTorch Linear weight [out, in] is Bᵀ with n = out, k = in); else b holds k rows of n values, row stride ldb.
// dst may be reused across calls (its storage grows as needed); it returns dst (or a new PackedB if nil).
func PackB(dst *PackedB, b []float32, ldb, k, n int, transposed bool) *PackedB {
	if dst == nil {
		dst = &PackedB{}
	}
	dst.K, dst.N, dst.i8, dst.sc = k, n, nil, nil
	if cap(dst.f32) < k*n {
		dst.f32 = make([]float32, k*n)
	}
	dst.f32 = dst.f32[:k*n]
	for kk := 0; kk < k; kk++ {
		for j := 0; j < n; j++ {
			if transposed {
				dst.f32[kk*n+j] = b[j*ldb+kk]
			} else {
				dst.f32[kk*n+j] = b[kk*ldb+j]
			}
		}
	}
	return dst
}

// PackBInt8 packs a symmetric per-output-channel int8 weight for Gemm: w holds Bᵀ as n rows of k int8
// values (PyTorch's [out, in]), and the dequantized B[kk, j] is float32(w[j·k+kk])·scale[j]. No float32 copy of
// the weight is kept: the kernels dequantize on the fly (or use integer arithmetic) as they see fit.
func PackBInt8(w []int8, scale []float32, k, n int) *PackedB {
	p := &PackedB{K: k, N: n, i8: append([]int8(nil), w[:n*k]...), sc: append([]float32(nil), scale[:n]...)}
	return p
}

// Bytes is the memory a packed operand holds.
func (p *PackedB) Bytes() int { return 4*len(p.f32) + len(p.i8) + 4*len(p.sc) }

// Gemm computes, for i < m, j < n: C[i·ldc+j] ← Epilogue(Σ_kk A[i·lda+kk]·B[kk,j]) where B is packed.
// A is m×K (K = b.K) row-major with row stride lda. m may be 0 (nothing to do).
func Gemm(m int, a []float32, lda int, b *PackedB, c []float32, ldc int, ep *Epilogue) {
	k, n := b.K, b.N
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			if b.i8 != nil {
				for kk := 0; kk < k; kk++ {
					s += a[i*lda+kk] * float32(b.i8[j*k+kk])
				}
				s *= b.sc[j]
			} else {
				for kk := 0; kk < k; kk++ {
					s += a[i*lda+kk] * b.f32[kk*n+j]
				}
			}
			c[i*ldc+j] = ep.apply(s, i, j, c[i*ldc+j])
		}
	}
}

func (ep *Epilogue) apply(s float32, i, j int, old float32) float32 {
	if ep == nil {
		return s
	}
	if ep.Alpha != 0 {
		s *= ep.Alpha
	}
	if ep.Bias != nil {
		s += ep.Bias[j]
	}
	switch ep.Act {
	case ActGELU:
		s = geluScalar(s)
	case ActQuickGELU:
		s = quickGELUScalar(s)
	}
	if ep.PostScale != 0 {
		s *= ep.PostScale
	}
	if ep.Residual != nil {
		s += ep.Residual[i*ep.LdRes+j]
	}
	if ep.Accumulate {
		return old + s
	}
	return s
}

// SoftmaxRows replaces each of the rows of x (n values each, row stride ld) by its softmax, computed as
// exp(x - max) / Σ exp(x - max).
func SoftmaxRows(x []float32, rows, n, ld int) {
	for r := 0; r < rows; r++ {
		softmaxScalar(x[r*ld : r*ld+n])
	}
}

// LayerNormRows writes (x-μ)/√(σ²+eps)·gamma + beta for each of the rows of x (n values each, row stride
// ldx) into dst (row stride ldd); μ and σ² are the row's mean and (biased) variance. gamma, beta may be nil
// (1 and 0). dst may equal x.
func LayerNormRows(dst []float32, ldd int, x []float32, ldx, rows, n int, gamma, beta []float32, eps float32) {
	for r := 0; r < rows; r++ {
		layerNormScalar(dst[r*ldd:r*ldd+n], x[r*ldx:r*ldx+n], gamma, beta, eps)
	}
}

// Exp sets dst[i] = exp(src[i]). dst may equal src.
func Exp(dst, src []float32) { unaryScalar(dst, src, expScalar) }

// Erf sets dst[i] = erf(src[i]). dst may equal src.
func Erf(dst, src []float32) { unaryScalar(dst, src, erfScalar) }

// Logistic sets dst[i] = 1/(1+exp(-src[i])). dst may equal src.
func Logistic(dst, src []float32) { unaryScalar(dst, src, logisticScalar) }

// Tanh sets dst[i] = tanh(src[i]). dst may equal src.
func Tanh(dst, src []float32) { unaryScalar(dst, src, tanhScalar) }

// GELU sets dst[i] = 0.5·x·(1+erf(x/√2)). dst may equal src.
func GELU(dst, src []float32) { unaryScalar(dst, src, geluScalar) }

// Add sets dst[i] = a[i] + b[i]; Sub, Mul, Div likewise. dst may equal a or b.
func Add(dst, a, b []float32) {
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

// Sub sets dst[i] = a[i] - b[i].
func Sub(dst, a, b []float32) {
	for i := range dst {
		dst[i] = a[i] - b[i]
	}
}

// Mul sets dst[i] = a[i] · b[i].
func Mul(dst, a, b []float32) {
	for i := range dst {
		dst[i] = a[i] * b[i]
	}
}

// Div sets dst[i] = a[i] / b[i].
func Div(dst, a, b []float32) {
	for i := range dst {
		dst[i] = a[i] / b[i]
	}
}

// AddScalar sets dst[i] = a[i] + s; MulScalar dst[i] = a[i]·s.
func AddScalar(dst, a []float32, s float32) {
	for i := range dst {
		dst[i] = a[i] + s
	}
}

// MulScalar sets dst[i] = a[i] · s.
func MulScalar(dst, a []float32, s float32) {
	for i := range dst {
		dst[i] = a[i] * s
	}
}

// Sum returns Σ x[i].
func Sum(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += v
	}
	return s
}

// SetThreads sets how many goroutines Gemm, Attention.Run and ParallelFor may use (n < 1: GOMAXPROCS). It
// returns the previous value. In js/wasm there is one thread whatever is set.
func SetThreads(n int) int {
	old := threads
	threads = n
	return old
}

var threads = 1

// ParallelFor calls f on disjoint ranges [lo, hi) covering [0, n), possibly concurrently on up to SetThreads
// goroutines, and returns when all calls have returned. grain is the smallest range worth a goroutine.
func ParallelFor(n, grain int, f func(lo, hi int)) {
	if n > 0 {
		f(0, n)
	}
}

// Attention is scaled dot-product attention over Batch·Heads independent problems:
// Out[b,i,h,:] = Σ_j softmax_j(Scale·⟨Q[b,i,h,:], K[b,j,h,:]⟩)·V[b,j,h,:].
// Element (b, i, h, d) of each operand is at b·BatchStride + i·RowStride + h·HeadStride + d (the last axis is
// contiguous). Run does not need to materialise every score matrix at once.
type Attention struct {
	Batch, Heads, Lq, Lk, HeadDim int
	Scale                         float32
	Q, K, V, Out                  Strided
}

// Strided is one attention operand: its data and the strides of its batch, row and head axes.
type Strided struct {
	Data                               []float32
	BatchStride, RowStride, HeadStride int
}

func (s Strided) at(b, i, h int) []float32 {
	o := b*s.BatchStride + i*s.RowStride + h*s.HeadStride
	return s.Data[o:]
}

// Run computes the attention (reference: one score row at a time).
func (a *Attention) Run() {
	scores := make([]float32, a.Lk)
	for b := 0; b < a.Batch; b++ {
		for h := 0; h < a.Heads; h++ {
			for i := 0; i < a.Lq; i++ {
				q := a.Q.at(b, i, h)[:a.HeadDim]
				for j := 0; j < a.Lk; j++ {
					k := a.K.at(b, j, h)[:a.HeadDim]
					var s float32
					for d := range q {
						s += q[d] * k[d]
					}
					scores[j] = s * a.Scale
				}
				softmaxScalar(scores)
				o := a.Out.at(b, i, h)[:a.HeadDim]
				for d := range o {
					o[d] = 0
				}
				for j := 0; j < a.Lk; j++ {
					v := a.V.at(b, j, h)[:a.HeadDim]
					p := scores[j]
					for d := range o {
						o[d] += p * v[d]
					}
				}
			}
		}
	}
}
