package cpu

import (
	"github.com/castvideo/castgo/backend/kernels"
	"github.com/castvideo/castgo/backend/plan"
	"github.com/gomlx/gomlx/backends"
	"github.com/pkg/errors"
)

// Options are the choices of a lowering that change results within the int8 bounds.
type Options struct {
	// FloatAttention keeps an int8 model's attentions in float32 (as GoMLX's reference backends and the official
	// model compute them) instead of integer arithmetic on int8 K and V (kernels.Attention.Int8).
	FloatAttention bool
}

// Lower turns each step of p into a function over the kernels of package backend/kernels; packs holds the
// packed weights (shared by the programs of one backend). It fails for a generic step whose op has no CPU
// implementation.
func Lower(p *plan.Plan, packs *PackCache, opt Options) (*Program, error) {
	prog := &Program{plan: p, packs: packs}
	handovers := map[*plan.Step]*handover{}
	packOnly := packedOnly(p)
	prog.packOnly = packOnly
	int8Attn := hasInt8Gemm(p) && !opt.FloatAttention
	chained := gemmChains(p)
	skip, scratch := make([]bool, len(p.Steps)), make([]int, len(p.Steps))
	for _, i := range chained {
		if i >= 0 {
			skip[i] = true
		}
	}
	for j, st := range p.Steps {
		var f stepFunc
		switch i := chained[j]; {
		case skip[j]:
			f = func(*env) any { return nil } // computed in row blocks by the next step
		case i >= 0:
			g1, g2 := p.Steps[i].Kind.(*plan.Gemm), st.Kind.(*plan.Gemm)
			scratch[j] = chainRows(g1.N) * g1.N
			f = lowerChain(j, g1, g2, st.Out, releasable(g1, packOnly), releasable(g2, packOnly))
		default:
			var err error
			if f, err = lowerStep(st, handovers, packOnly, int8Attn); err != nil {
				return nil, err
			}
		}
		prog.runs = append(prog.runs, f)
	}
	prog.release = chainReleases(p, chained)
	prog.lay = layoutArena(p, prog.release, scratch, skip)
	return prog, nil
}

// packedOnly returns the parameters that p reads only as the weight of GEMMs that pack it the same way
// (same transposition and K×N), that are no output and no view's storage: once packed, their data is not
// read again by this program.
func packedOnly(p *plan.Plan) map[int]bool {
	type use struct {
		transposed bool
		k, n       int
	}
	uses := map[int]use{}
	bad := map[int]bool{}
	for _, o := range p.Outputs {
		bad[p.Root[o.ID]] = true
	}
	for _, st := range p.Steps {
		g, isGemm := st.Kind.(*plan.Gemm)
		for _, in := range st.Ins {
			r := p.Root[in.ID]
			if !isGemm || g.W == nil || in.ID != g.W.ID || r != in.ID || g.W.Op != backends.OpTypeParameter || readsOtherwise(g) {
				bad[r] = true
				continue
			}
			u := use{g.Transposed, g.K, g.N}
			if prev, ok := uses[r]; ok && prev != u {
				bad[r] = true
			}
			uses[r] = u
		}
	}
	only := map[int]bool{}
	for i, prm := range p.Params {
		if _, ok := uses[prm.ID]; ok && !bad[prm.ID] {
			only[i] = true
		}
	}
	return only
}

// readsOtherwise says g reads its weight as another operand too.
func readsOtherwise(g *plan.Gemm) bool {
	for _, o := range []*plan.Node{g.LHS, g.Scale, g.Bias, g.Residual} {
		if o != nil && o.ID == g.W.ID {
			return true
		}
	}
	return false
}

// handover holds the extra outputs of one execution of a step that has several (AttentionWithProbs,
// AttentionBackward) until the Handover steps take them (a program runs one execution at a time).
type handover struct{ outs map[*plan.Node][]float32 }

func (h *handover) take(n *plan.Node) []float32 {
	v := h.outs[n]
	delete(h.outs, n)
	return v
}

func handoverOf(st *plan.Step, hs map[*plan.Step]*handover) *handover {
	if hs[st] == nil {
		hs[st] = &handover{outs: map[*plan.Node][]float32{}}
	}
	return hs[st]
}

// hasInt8Gemm says p holds an int8 GEMM: an int8 model, whose attentions then run in integer arithmetic too
// (kernels.Attention.Int8), on every CPU tier and in WASM alike.
func hasInt8Gemm(p *plan.Plan) bool {
	for _, st := range p.Steps {
		if g, ok := st.Kind.(*plan.Gemm); ok && g.Scale != nil {
			return true
		}
	}
	return false
}

func lowerStep(st *plan.Step, hs map[*plan.Step]*handover, packOnly map[int]bool, int8Attn bool) (stepFunc, error) {
	out := st.Out
	switch k := st.Kind.(type) {
	case *plan.Gemm:
		return lowerGemm(k, out, releasable(k, packOnly)), nil
	case *plan.Attention:
		return lowerAttention(k, out, int8Attn), nil
	case *plan.LayerNorm:
		rows, n, x, eps := k.Rows, k.N, k.X, k.Eps
		gammaRoot, gammaOff, betaRoot, betaOff := k.Gamma, k.GammaOff, k.Beta, k.BetaOff
		return func(e *env) any {
			dst, src := e.allocF32(out), e.f32(x)
			gamma, beta := e.f32(gammaRoot)[gammaOff:gammaOff+n], e.f32(betaRoot)[betaOff:betaOff+n]
			kernels.ParallelFor(rows, max(1, 4096/max(n, 1)), func(lo, hi int) {
				kernels.LayerNormRows(dst[lo*n:hi*n], n, src[lo*n:hi*n], n, hi-lo, n, gamma, beta, eps)
			})
			return dst
		}, nil
	case *plan.Softmax:
		rows, n, x := k.Rows, k.N, k.X
		return func(e *env) any {
			dst := e.allocF32(out)
			copy(dst, e.f32(x))
			kernels.ParallelFor(rows, max(1, 4096/max(n, 1)), func(lo, hi int) {
				kernels.SoftmaxRows(dst[lo*n:hi*n], hi-lo, n, n)
			})
			return dst
		}, nil
	case *plan.Elementwise:
		return lowerElementwise(k, out), nil
	case *plan.Copy:
		return lowerCopy(k, out), nil
	case *plan.Concat:
		parts := k.Parts
		return func(e *env) any {
			dst := e.allocF32(out)
			for _, p := range parts {
				copyStrided2(dst, p.DstOff, p.DstStrides, e.f32(p.Src.Root), p.Src.Off, p.Src.Strides, p.Src.Dims)
			}
			return dst
		}, nil
	case *plan.ScatterZeros:
		idx, upd := k.Indices, k.Updates
		return func(e *env) any {
			dst := e.allocF32(out)
			clear(dst)
			scatterAdd(out, dst, e.f32(upd), plan.ToInts(e.val(idx)))
			return dst
		}, nil
	case *plan.Dot:
		l, r := out.Inputs[0], out.Inputs[1]
		return func(e *env) any {
			dst := e.allocF32(out)
			dotInto(out, e.f32(l), e.f32(r), dst, e.temp, e.release)
			return dst
		}, nil
	case *plan.AttentionProbs:
		a := *k
		return func(e *env) any {
			dst := e.allocF32(out)
			k := kernels.AttentionProbs{Batch: a.B, Heads: a.H, Lq: a.Lq, Lk: a.Lk, HeadDim: a.HD, Scale: 1,
				Q: strided(e, a.Q), K: strided(e, a.K), P: dst}
			k.Run()
			return dst
		}, nil
	case *plan.AttentionScoresGrad:
		a := *k
		return func(e *env) any {
			dst := e.allocF32(out)
			k := kernels.AttentionScoresGrad{Batch: a.B, Heads: a.H, Lq: a.Lq, Lk: a.Lk, HeadDim: a.HD,
				DO: strided(e, a.DO), V: strided(e, a.V), P: e.f32(a.P), DS: dst}
			k.Run()
			return dst
		}, nil
	case *plan.AttentionWithProbs:
		a, h := *k, handoverOf(st, hs)
		return func(e *env) any {
			dst := e.allocF32(out)
			o := e.allocF32(a.Output)
			h.outs[a.Output] = o
			k := kernels.Attention{Batch: a.B, Heads: a.H, Lq: a.Lq, Lk: a.Lk, HeadDim: a.HD, Scale: 1,
				Q: strided(e, a.Q), K: strided(e, a.K), V: strided(e, a.V),
				Out:   kernels.Strided{Data: o, BatchStride: a.OutStrides.Batch, RowStride: a.OutStrides.Row, HeadStride: a.OutStrides.Head},
				Probs: dst}
			k.Run()
			return dst
		}, nil
	case *plan.AttentionBackward:
		return lowerAttentionBackward(k, out, handoverOf(st, hs)), nil
	case *plan.Handover:
		h := handoverOf(k.From, hs)
		return func(e *env) any { return h.take(out) }, nil
	case *plan.Generic:
		return lowerGeneric(out)
	}
	return nil, errors.Errorf("castgo backend: step %q of kind %T has no CPU form", st.Label, st.Kind)
}

// activations maps the plan's GEMM activations to the kernels'.
var activations = map[plan.Activation]kernels.Activation{
	plan.ActNone: kernels.ActNone, plan.ActGELU: kernels.ActGELU, plan.ActQuickGELU: kernels.ActQuickGELU,
}

// releasable says the weight of g may be released once packed (packedOnly).
func releasable(g *plan.Gemm, packOnly map[int]bool) bool {
	return g.W.Op == backends.OpTypeParameter && packOnly[g.W.Param]
}

func lowerGemm(g *plan.Gemm, out *plan.Node, release bool) stepFunc {
	m, k, n := g.M, g.K, g.N
	return func(e *env) any {
		o := gemmOf(e, g, release)
		dst := e.allocF32(out)
		kernels.Gemm(m, e.f32(g.LHS), k, o.pk, dst, n, &o.ep)
		return dst
	}
}

// viewStrided is a 4-D view ([batch, rows, heads, headDim], last axis contiguous) as a kernels.Strided.
func viewStrided(e *env, v plan.View) kernels.Strided {
	return kernels.Strided{Data: e.f32(v.Root)[v.Off:], BatchStride: v.Strides[0], RowStride: v.Strides[1], HeadStride: v.Strides[2]}
}

// strided is an attention operand of a training step as a kernels.Strided.
func strided(e *env, s plan.AttnOperand) kernels.Strided {
	return kernels.Strided{Data: e.f32(s.View.Root)[s.View.Off:], BatchStride: s.Batch, RowStride: s.Row, HeadStride: s.Head}
}

func lowerAttention(a *plan.Attention, out *plan.Node, int8 bool) stepFunc {
	b, h, lq, lk, hd, scale := a.B, a.H, a.Lq, a.Lk, a.HD, a.Scale
	qv, kv, vv, outS := a.Q, a.K, a.V, a.Out
	return func(e *env) any {
		dst := e.allocF32(out)
		k := kernels.Attention{Batch: b, Heads: h, Lq: lq, Lk: lk, HeadDim: hd, Scale: scale,
			Q: viewStrided(e, qv), K: viewStrided(e, kv), V: viewStrided(e, vv),
			Out:  kernels.Strided{Data: dst, BatchStride: outS.Batch, RowStride: outS.Row, HeadStride: outS.Head},
			Int8: int8}
		k.Run()
		return dst
	}
}

func lowerAttentionBackward(a *plan.AttentionBackward, out *plan.Node, h *handover) stepFunc {
	B, H, lq, lk, hd := a.B, a.H, a.Lq, a.Lk, a.HD
	dq, dk, dv := a.DQ, a.DK, a.DV
	// output layouts: dq [B,H,Lq,D], dk [B,H,Lk,D], dv [B,H,D,Lk]
	rowsOut := func(rows int) (bs, rs, hs, dstr int) { return H * rows * hd, hd, rows * hd, 1 }
	return func(e *env) any {
		bufs := map[*plan.Node][]float32{dq: e.allocF32(dq), dk: e.allocF32(dk), dv: e.allocF32(dv)}
		s4 := func(n *plan.Node, bs, rs, hs, dstr int) kernels.Strided4 {
			return kernels.Strided4{Data: bufs[n], BatchStride: bs, RowStride: rs, HeadStride: hs, DimStride: dstr}
		}
		qb, qr, qh, qd := rowsOut(lq)
		kb, kr, kh, kd := rowsOut(lk)
		k := kernels.AttentionBackward{Batch: B, Heads: H, Lq: lq, Lk: lk, HeadDim: hd,
			Q: strided(e, a.Q), K: strided(e, a.K), V: strided(e, a.V), DO: strided(e, a.DO), P: e.f32(a.P),
			DQ: s4(dq, qb, qr, qh, qd), DK: s4(dk, kb, kr, kh, kd), DV: s4(dv, H*hd*lk, 1, hd*lk, lk)}
		k.Run()
		for n, b := range bufs {
			if n != out {
				h.outs[n] = b
			}
		}
		return bufs[out]
	}
}

// lowerCopy materialises a strided view (in parallel over the first axis when large).
func lowerCopy(c *plan.Copy, out *plan.Node) stepFunc {
	root, off, dims, strides := c.Src.Root, c.Src.Off, c.Src.Dims, c.Src.Strides
	return func(e *env) any {
		dst := e.alloc(out)
		if d, ok := dst.([]float32); ok && len(dims) > 1 && len(d) >= 1<<15 {
			src, inner := e.f32(root), len(d)/max(dims[0], 1)
			kernels.ParallelFor(dims[0], max(1, (1<<14)/max(inner, 1)), func(lo, hi int) {
				sub := append([]int{hi - lo}, dims[1:]...)
				stridedCopy(d[lo*inner:hi*inner], src, sub, strides, off+lo*strides[0])
			})
			return dst
		}
		stridedCopyAny(dst, e.val(root), dims, strides, off)
		return dst
	}
}

// lowerGeneric computes one op with its generic implementation (Eval).
func lowerGeneric(n *plan.Node) (stepFunc, error) {
	if !Implements(n.Op) {
		return nil, errors.Errorf("castgo backend: op %s not implemented", n.Op)
	}
	ins := n.Inputs
	return func(e *env) any {
		vals := make([]any, len(ins))
		for i, in := range ins {
			vals[i] = e.val(in)
		}
		v, err := Eval(n, vals)
		if err != nil {
			panic(err)
		}
		if n.Op == backends.OpTypeReshape || n.Op == backends.OpTypeIdentity {
			cp := makeFlat(n.Shape.DType, n.Shape.Size())
			stridedCopyAny(cp, v, []int{n.Shape.Size()}, []int{1}, 0)
			v = cp
		}
		return v
	}, nil
}
