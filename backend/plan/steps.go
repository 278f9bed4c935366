package plan

import (
	"github.com/gomlx/gomlx/backends"
)

// Step is one entry of a plan: it computes the value of Out from the values of Ins. Kind says what it
// computes (one of the types below); an executor lowers each kind onto its own kernels.
type Step struct {
	Label string // op kind and shape, for the profile
	Out   *Node
	Ins   []*Node
	Kind  Kind
}

// Kind is what a step computes: *Gemm, *Attention, *LayerNorm, *Softmax, *Elementwise, *Copy, *Concat,
// *ScatterZeros, *Dot, *AttentionProbs, *AttentionWithProbs, *AttentionScoresGrad, *AttentionBackward,
// *Handover or *Generic.
type Kind interface{ isKind() }

// Activation is the activation of a GEMM epilogue.
type Activation int

// The activations a GEMM epilogue applies.
const (
	ActNone      Activation = iota
	ActGELU                 // 0.5·x·(1+erf(x/√2))
	ActQuickGELU            // x·σ(1.702·x)
)

// Gemm is Out = epilogue(LHS [M, K] · W) with W a weight parameter [K, N] (or [N, K] when Transposed), float32
// or int8 with a float32 scale per output channel (Scale, then Transposed). The epilogue adds the bias
// vector (Bias at BiasOff, N values), applies Act, multiplies by PostScale (0: none) and adds Residual [M, N].
type Gemm struct {
	M, K, N       int
	LHS, W, Scale *Node
	Transposed    bool
	Bias          *Node
	BiasOff       int
	Residual      *Node
	Act           Activation
	PostScale     float32
}

// HeadStrides are the batch, row and head strides of a [batch, rows, heads, headDim] operand whose last
// axis is contiguous.
type HeadStrides struct{ Batch, Row, Head int }

// AttnOperand is an attention operand: a view of a float32 node with its batch, row and head strides.
type AttnOperand struct {
	View View
	HeadStrides
}

// Attention is softmax(Scale·Q·Kᵀ)·V over B batches and H heads of Lq queries, Lk keys and head dimension HD;
// Q, K and V are read through their views ([b, rows, h, hd]), the output [B, Lq, H, HD] or [B, H, Lq, HD]
// is written with the strides Out.
type Attention struct {
	B, H, Lq, Lk, HD int
	Scale            float32
	Q, K, V          View
	Out              HeadStrides
}

// LayerNorm is (x-μ)/√(σ²+Eps)·γ + β over the last axis (N) of Rows rows; γ and β are N values of Gamma and
// Beta at GammaOff and BetaOff.
type LayerNorm struct {
	Rows, N           int
	X, Gamma, Beta    *Node
	GammaOff, BetaOff int
	Eps               float32
}

// Softmax is the softmax over the last axis (N) of Rows rows of X.
type Softmax struct {
	Rows, N int
	X       *Node
}

// Leaf is one input of a fused elementwise loop: a strided read of a materialised node, or a scalar.
type Leaf struct {
	Root       *Node
	Off        int
	Strides    []int // in the output's dims
	Contiguous bool
	IsScalar   bool
	Scalar     float32
}

// Instr computes register Dst from registers A (and B, for binary ops) with Op. Registers ≥ 0 are
// instruction results, negative ones are leaves: -1 - leaf index.
type Instr struct {
	Op        backends.OpType
	Dst, A, B int
}

// Binary reports whether the instruction's op takes two operands.
func (in Instr) Binary() bool { return IsBinary(in.Op) }

// Elementwise is one fused loop over the output dims Dims: the straight-line instructions Instrs over the
// leaves; the last instruction's result is the output.
type Elementwise struct {
	Dims   []int
	Leaves []Leaf
	Instrs []Instr
}

// Copy writes the strided block Src into the output at DstOff with strides DstStrides.
type Copy struct {
	Src        View
	DstOff     int
	DstStrides []int
}

// CopyOf is the copy of view v into a contiguous output.
func CopyOf(v View) Copy { return Copy{Src: v, DstStrides: RowMajorStrides(v.Dims)} }

// Concat writes each part of a concatenation into its block of the output.
type Concat struct{ Parts []Copy }

// ScatterZeros is ScatterSum (the node Out) into zeros: the updates added into a cleared output.
type ScatterZeros struct{ Indices, Updates *Node }

// Dot is the float32 DotGeneral Out (no weight GEMM), into a pooled buffer.
type Dot struct{}

// AttentionProbs writes the attention probabilities P = softmax(Q·Kᵀ) ([B, H, Lq, Lk]) of a training graph.
type AttentionProbs struct {
	B, H, Lq, Lk, HD int
	Q, K             AttnOperand
}

// AttentionWithProbs is the attention forward of a training graph: it writes P (the step's output) and the
// attention's output O = P·V into Output with strides OutStrides; a Handover step yields Output.
type AttentionWithProbs struct {
	B, H, Lq, Lk, HD int
	Q, K, V          AttnOperand
	Output           *Node
	OutStrides       HeadStrides
}

// AttentionScoresGrad writes the scores' gradient P ⊙ (dP − rowsum(dP ⊙ P)) with dP = dO·Vᵀ.
type AttentionScoresGrad struct {
	B, H, Lq, Lk, HD int
	DO, V            AttnOperand
	P                *Node
}

// AttentionBackward computes dQ, dK and dVᵀ of an attention from Q, K, V, dOᵀ and P (dS is never
// materialised). The step's output is the first of DQ, DK, DV in graph order; Handover steps yield the
// other two. Output layouts: DQ [B,H,Lq,HD], DK [B,H,Lk,HD], DV [B,H,HD,Lk].
type AttentionBackward struct {
	B, H, Lq, Lk, HD int
	Q, K, V, DO      AttnOperand
	P                *Node
	DQ, DK, DV       *Node
}

// Handover yields Out, a second output computed by the step From (which the handover step reads), since
// a step has one output.
type Handover struct{ From *Step }

// Generic computes the single op of Out with the executor's generic implementation of that op.
type Generic struct{}

func (*Gemm) isKind()                {}
func (*Attention) isKind()           {}
func (*LayerNorm) isKind()           {}
func (*Softmax) isKind()             {}
func (*Elementwise) isKind()         {}
func (*Copy) isKind()                {}
func (*Concat) isKind()              {}
func (*ScatterZeros) isKind()        {}
func (*Dot) isKind()                 {}
func (*AttentionProbs) isKind()      {}
func (*AttentionWithProbs) isKind()  {}
func (*AttentionScoresGrad) isKind() {}
func (*AttentionBackward) isKind()   {}
func (*Handover) isKind()            {}
func (*Generic) isKind()             {}
