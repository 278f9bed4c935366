// Package kernels holds the numeric kernels of castgo's own GoMLX backend (package backend): packed
// float32 GEMM with an int8-weight variant, a fused epilogue, attention (small-head direct, GEMM and
// flash-style paths, and training's forward with probabilities and backward), row-wise softmax and layer norm,
// and vectorised elementwise functions.
//
// Each kernel has a portable Go version (any GOOS/GOARCH) and vector versions in tiers (tier.go): amd64 AVX2+FMA
// and AVX-512 (archsimd, plus one assembly micro-kernel) and WebAssembly SIMD128, built with GOEXPERIMENT=simd.
// One binary holds every tier its build allows; the best one the CPU supports is installed at start-up
// (CAST_KERNELS=portable|avx2|avx512 forces one) and Tier reports it. The elementwise and row kernels of the
// vector tiers are generated from one template (internal/gen, go generate). Every kernel is tested against a
// naive reference (ref_test.go) in every tier the machine supports.
//
// Natively the GEMM splits its work across goroutines (SetThreads, default GOMAXPROCS); in js/wasm it runs on
// the one thread there is.
//
// THIS FILE IS THE API CONTRACT between the backend and the kernels: the exported names below, with the
// dispatch to the installed tier's implementations.
package kernels

//go:generate go run ./internal/gen

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
	nr   int         // panel width the data was packed for
	f32  []float32   // ⌈N/nr⌉ panels, each K rows of nr values (zero-padded columns)
	i8   []int8      // int8 weights in panels of column pairs (gemm_int8.go)
	sc   []float32   // per-column (output channel) scale for i8, zero-padded to a whole panel
	i8k  *int8Kernel // the int8 GEMM tier i8 was packed for (its panel width and micro-kernel)
}

// PackB packs B (k×n) for Gemm. If transposed, b holds Bᵀ: n rows of k values with row stride ldb (a
// PyTorch Linear weight [out, in] is Bᵀ with n = out, k = in); else b holds k rows of n values, row stride ldb.
// dst may be reused across calls (its storage grows as needed); it returns dst (or a new PackedB if nil).
func PackB(dst *PackedB, b []float32, ldb, k, n int, transposed bool) *PackedB {
	if dst == nil {
		dst = &PackedB{}
	}
	packB(dst, b, ldb, k, n, transposed, gemmNR)
	return dst
}

// GemmStrided computes C = A·B like Gemm with a nil epilogue, for B given as k rows of n values with row
// stride ldb (row-major), read in place without packing where the tier has a strided micro-kernel (AVX2;
// elsewhere B is packed first). For products whose B is used once (training's weight gradients), packing it
// was most of the cost.
func GemmStrided(m int, a []float32, lda int, b []float32, ldb, k, n int, c []float32, ldc int) {
	gemmStrided(m, a, lda, b, ldb, k, n, c, ldc)
}

// PackBInt8 packs a symmetric per-output-channel int8 weight for Gemm: w holds Bᵀ as n rows of k int8
// values (PyTorch's [out, in]), and the dequantized B[kk, j] is float32(w[j·k+kk])·scale[j]. No float32 copy of
// the weight is kept: Gemm multiplies it with integer arithmetic by A quantized per row (gemm_int8.go).
func PackBInt8(w []int8, scale []float32, k, n int) *PackedB {
	return packBInt8(w, scale, k, n)
}

// Bytes is the memory a packed operand holds.
func (p *PackedB) Bytes() int { return 4*len(p.f32) + len(p.i8) + 4*len(p.sc) }

// Gemm computes, for i < m, j < n: C[i·ldc+j] ← Epilogue(Σ_kk A[i·lda+kk]·B[kk,j]) where B is packed.
// A is m×K (K = b.K) row-major with row stride lda. m may be 0 (nothing to do).
func Gemm(m int, a []float32, lda int, b *PackedB, c []float32, ldc int, ep *Epilogue) {
	gemm(m, a, lda, b, c, ldc, ep, true)
}

// SoftmaxRows replaces each of the rows of x (n values each, row stride ld) by its softmax, computed as
// exp(x - max) / Σ exp(x - max).
func SoftmaxRows(x []float32, rows, n, ld int) {
	for r := 0; r < rows; r++ {
		softmaxRow(x[r*ld : r*ld+n])
	}
}

// LayerNormRows writes (x-μ)/√(σ²+eps)·gamma + beta for each of the rows of x (n values each, row stride
// ldx) into dst (row stride ldd); μ and σ² are the row's mean and (biased) variance. gamma, beta may be nil
// (1 and 0). dst may equal x.
func LayerNormRows(dst []float32, ldd int, x []float32, ldx, rows, n int, gamma, beta []float32, eps float32) {
	if gamma != nil {
		gamma = gamma[:n]
	}
	if beta != nil {
		beta = beta[:n]
	}
	for r := 0; r < rows; r++ {
		layerNormRow(dst[r*ldd:r*ldd+n], x[r*ldx:r*ldx+n], gamma, beta, eps)
	}
}

// Exp sets dst[i] = exp(src[i]). dst may equal src.
func Exp(dst, src []float32) { vexp(dst, src[:len(dst)]) }

// Erf sets dst[i] = erf(src[i]). dst may equal src.
func Erf(dst, src []float32) { verf(dst, src[:len(dst)]) }

// Logistic sets dst[i] = 1/(1+exp(-src[i])). dst may equal src.
func Logistic(dst, src []float32) { vlogistic(dst, src[:len(dst)]) }

// Tanh sets dst[i] = tanh(src[i]). dst may equal src.
func Tanh(dst, src []float32) { vtanh(dst, src[:len(dst)]) }

// GELU sets dst[i] = 0.5·x·(1+erf(x/√2)). dst may equal src.
func GELU(dst, src []float32) { vgelu(dst, src[:len(dst)]) }

// QuickGELU sets dst[i] = x·sigmoid(1.702·x) (CLIP's activation). dst may equal src.
func QuickGELU(dst, src []float32) { vquickgelu(dst, src[:len(dst)]) }

// Add sets dst[i] = a[i] + b[i]; Sub, Mul, Div likewise. dst may equal a or b.
func Add(dst, a, b []float32) { vadd(dst, a[:len(dst)], b[:len(dst)]) }

// Sub sets dst[i] = a[i] - b[i].
func Sub(dst, a, b []float32) { vsub(dst, a[:len(dst)], b[:len(dst)]) }

// Mul sets dst[i] = a[i] · b[i].
func Mul(dst, a, b []float32) { vmul(dst, a[:len(dst)], b[:len(dst)]) }

// Div sets dst[i] = a[i] / b[i].
func Div(dst, a, b []float32) { vdiv(dst, a[:len(dst)], b[:len(dst)]) }

// AddScalar sets dst[i] = a[i] + s; MulScalar dst[i] = a[i]·s.
func AddScalar(dst, a []float32, s float32) { vaddScalar(dst, a[:len(dst)], s) }

// MulScalar sets dst[i] = a[i] · s.
func MulScalar(dst, a []float32, s float32) { vmulScalar(dst, a[:len(dst)], s) }

// Sum returns Σ x[i].
func Sum(x []float32) float32 { return vsum(x) }

// SetThreads sets how many goroutines Gemm, Attention.Run and ParallelFor may use (n < 1: GOMAXPROCS). It
// returns the previous value. In js/wasm there is one thread whatever is set.
func SetThreads(n int) int { return setThreads(n) }

// ParallelFor calls f on disjoint ranges [lo, hi) covering [0, n), possibly concurrently on up to SetThreads
// goroutines, and returns when all calls have returned. grain is the smallest range worth a goroutine.
// Calls may nest (f may call ParallelFor, Gemm or Attention.Run): an inner call uses the workers that are idle
// and runs the rest inline, so it never deadlocks.
func ParallelFor(n, grain int, f func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	t := Threads()
	if t <= 1 || n <= grain {
		f(0, n)
		return
	}
	chunk := (n + 4*t - 1) / (4 * t)
	if chunk < grain {
		chunk = grain
	}
	parallelRun(n, chunk, f)
}

// Attention is scaled dot-product attention over Batch·Heads independent problems:
// Out[b,i,h,:] = Σ_j softmax_j(Scale·⟨Q[b,i,h,:], K[b,j,h,:]⟩)·V[b,j,h,:].
// Element (b, i, h, d) of each operand is at b·BatchStride + i·RowStride + h·HeadStride + d (the last axis is
// contiguous). Run does not need to materialise every score matrix at once.
type Attention struct {
	Batch, Heads, Lq, Lk, HeadDim int
	Scale                         float32
	Q, K, V, Out                  Strided
	// Probs, when not nil, receives the probabilities too: softmax_j(…) of (b, h, i) at
	// ((b·Heads+h)·Lq+i)·Lk + j (training's backward needs them), subnormal ones flushed to zero.
	Probs []float32
	// Int8 computes Q·Kᵀ and P·V with integer arithmetic, K and V as int8 (attention_int8.go), for int8 models
	// whose linear layers already run so; problems with Probs or fewer than 32 keys stay in float32.
	Int8 bool
}

// probsRow returns the row of Probs of query i of (b, h).
func (a *Attention) probsRow(b, h, i int) []float32 {
	o := ((b*a.Heads+h)*a.Lq + i) * a.Lk
	return a.Probs[o : o+a.Lk]
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

// Run computes the attention: per (batch, head), blocks of query rows through the packed GEMM, a softmax,
// and the GEMM again with V; in parallel over (batch, head) natively.
func (a *Attention) Run() { a.run() }
