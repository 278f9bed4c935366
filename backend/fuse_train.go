package backend

// Fusions of the training graph (GoMLX autodiff of cast.Forward): an attention's forward scores and
// softmax as one step that writes the probabilities P, and the softmax backward together with the gradient
// of P (dP = dO·Vᵀ) as one step that writes the scores' gradient P ⊙ (dP − rowsum(dP ⊙ P)); neither the
// scores, exp(scores − max) nor dP is materialised. The remaining DotGenerals (not weight GEMMs) get steps
// that write into pooled buffers.

import (
	"fmt"
	"slices"

	"github.com/castvideo/castgo/backend/kernels"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// fuseTrain runs the training matchers that must see the graph before the inference ones.
func (c *compiler) fuseTrain() {
	for _, n := range c.b.nodes {
		if c.live[n.ID] && n.Op == backends.OpTypeDotGeneral && c.free(n) {
			c.matchTrainAttention(n)
		}
		if c.live[n.ID] && n.Op == backends.OpTypeScatterSum && c.free(n) {
			c.matchScatterZero(n)
		}
	}
}

// matchScatterZero gives ScatterSum into zeros (Gather's gradient: the operand a broadcast 0) a step that
// clears a pooled buffer and adds the updates, instead of materialising the zeros and copying them.
func (c *compiler) matchScatterZero(n *Node) {
	if n.Shape.DType != dtypes.Float32 || n.Inputs[2].Shape.DType != dtypes.Float32 {
		return
	}
	if v, ok := constScalar(n.Inputs[0]); !ok || v != 0 {
		return
	}
	idx, upd := n.Inputs[1], n.Inputs[2]
	st := &step{label: fmt.Sprintf("scatter-into-zeros %v", n.Shape.Dimensions), out: n, ins: []*Node{idx, upd}}
	st.run = func(e *env) any {
		dst := e.allocF32(n.Shape.Size())
		clear(dst)
		scatterAdd(n, dst, e.f32(upd), toInts(e.val(idx)))
		return dst
	}
	c.fused[n] = st
}

// fuseTrainDots gives every float32 DotGeneral no other matcher took a step writing into a pooled buffer.
func (c *compiler) fuseTrainDots() {
	for _, n := range c.b.nodes {
		if c.live[n.ID] && n.Op == backends.OpTypeDotGeneral && c.free(n) && n.Shape.DType == dtypes.Float32 &&
			n.Inputs[0].Shape.DType == dtypes.Float32 && n.Inputs[1].Shape.DType == dtypes.Float32 {
			c.matchDot(n)
		}
	}
}

func (c *compiler) matchDot(n *Node) {
	l, r := n.Inputs[0], n.Inputs[1]
	st := &step{label: fmt.Sprintf("%s %v", n.Op, n.Shape.Dimensions), out: n, ins: []*Node{l, r}}
	st.run = func(e *env) any {
		dst := e.allocF32(n.Shape.Size())
		dotInto(n, e.f32(l), e.f32(r), dst, e.allocF32, e.release)
		return dst
	}
	c.fused[n] = st
}

// rowBroadcast reports whether n is root ([d0, …, dk]) broadcast along a new (or size-1) last axis.
func (c *compiler) rowBroadcast(n, root *Node) bool {
	v := c.viewOf(n)
	r := len(v.Dims)
	if v.Root != root || v.Off != 0 || r != root.Shape.Rank()+1 || r == 0 {
		return false
	}
	rs := rowMajorStrides(root.Shape.Dimensions)
	for i := 0; i < r-1; i++ {
		if v.Dims[i] != root.Shape.Dimensions[i] || (v.Strides[i] != rs[i] && v.Dims[i] != 1) {
			return false
		}
	}
	return v.Dims[r-1] == 1 || v.Strides[r-1] == 0
}

// other returns the operand of binary n that is not x (nil if none is x).
func other(n, x *Node) *Node {
	switch {
	case n.Inputs[0] == x:
		return n.Inputs[1]
	case n.Inputs[1] == x:
		return n.Inputs[0]
	}
	return nil
}

// attnOperand converts a 4-D View with contiguous last axis to a kernels.Strided, given which View axes are
// the batch, row and head axes.
func attnOperand(v View, b, row, h int) (strided, bool) {
	if len(v.Dims) != 4 || (v.Strides[3] != 1 && v.Dims[3] > 1) || v.Root.Shape.DType != dtypes.Float32 {
		return strided{}, false
	}
	return strided{v: v, bs: v.Strides[b], rs: v.Strides[row], hs: v.Strides[h]}, true
}

type strided struct {
	v          View
	bs, rs, hs int
}

func (s strided) at(e *env) kernels.Strided {
	return kernels.Strided{Data: e.f32(s.v.Root)[s.v.Off:], BatchStride: s.bs, RowStride: s.rs, HeadStride: s.hs}
}

// matchTrainAttention recognises, from the scores s = DotGeneral(q [B,Lq,H,D], k [B,Lk,H,D]) → [B,H,Lq,Lk],
// the softmax P = E / Σ E with E = exp(s − max s) (the max through a stop-gradient), and, where E's other
// uses are the softmax backward
//
//	dS = (dP / d + bcast(Σ −(dP · E / (d·d)))) · E      (d = Σ E, dP = DotGeneral(dOᵀ [B,H,Lq,D], v [B,Lk,H,D]))
//
// that backward too.
func (c *compiler) matchTrainAttention(s *Node) {
	p := s.Dot
	if s.Shape.DType != dtypes.Float32 || s.Shape.Rank() != 4 || !slices.Equal(p.LhsContract, []int{3}) ||
		!slices.Equal(p.LhsBatch, []int{0, 2}) || !slices.Equal(p.RhsContract, []int{3}) || !slices.Equal(p.RhsBatch, []int{0, 2}) {
		return
	}
	cs := c.consumers[s]
	if s.Uses != 2 || len(cs) != 2 {
		return
	}
	var mx, sub *Node
	for _, x := range cs {
		switch x.Op {
		case backends.OpTypeReduceMax:
			mx = x
		case backends.OpTypeSub:
			sub = x
		}
	}
	if mx == nil || sub == nil || !slices.Equal(mx.Axes, []int{3}) || !c.single(mx) || !c.single(sub) ||
		sub.Inputs[0] != s || !c.rowBroadcast(sub.Inputs[1], mx) {
		return
	}
	ecs := c.consumers[sub]
	if len(ecs) != 1 || ecs[0].Op != backends.OpTypeExp || !c.free(ecs[0]) {
		return
	}
	ex := ecs[0]
	var den, probs *Node
	for _, x := range c.consumers[ex] {
		if x.Op == backends.OpTypeReduceSum && x.Inputs[0] == ex && slices.Equal(x.Axes, []int{3}) && c.single(x) {
			den = x
		}
	}
	if den == nil {
		return
	}
	var rest []*Node
	for _, x := range c.consumers[ex] {
		switch {
		case x == den:
		case probs == nil && x.Op == backends.OpTypeDiv && x.Inputs[0] == ex && c.rowBroadcast(x.Inputs[1], den) && c.free(x):
			probs = x
		default:
			rest = append(rest, x)
		}
	}
	if probs == nil {
		return
	}
	var bwd *softmaxBwd
	if len(rest) > 0 {
		if bwd = c.matchSoftmaxBwd(ex, den, rest); bwd == nil {
			return
		}
	} else if probs.Uses == 1 {
		return // inference: matchAttention fuses the whole attention
	}
	qv, kv := c.viewOf(s.Inputs[0]), c.viewOf(s.Inputs[1])
	q, ok1 := attnOperand(qv, 0, 1, 2)
	k, ok2 := attnOperand(kv, 0, 1, 2)
	if !ok1 || !ok2 {
		return
	}
	B, H, lq, lk, hd := s.Shape.Dimensions[0], s.Shape.Dimensions[1], s.Shape.Dimensions[2], s.Shape.Dimensions[3], qv.Dims[3]
	for _, x := range []*Node{s, mx, sub, ex, den} {
		c.claimed[x] = true
	}
	if !c.matchAttentionForward(probs, q, k, B, H, lq, lk, hd) {
		st := &step{label: fmt.Sprintf("attention-probs [b=%d h=%d %d×%d hd=%d]", B, H, lq, lk, hd), out: probs,
			ins: []*Node{qv.Root, kv.Root}}
		st.run = func(e *env) any {
			dst := e.allocF32(probs.Shape.Size())
			a := kernels.AttentionProbs{Batch: B, Heads: H, Lq: lq, Lk: lk, HeadDim: hd, Scale: 1, Q: q.at(e), K: k.at(e), P: dst}
			a.Run()
			return dst
		}
		c.fused[probs] = st
	}
	if bwd == nil {
		return
	}
	if c.matchAttentionBackward(bwd, probs, B, H, lq, lk) {
		return
	}
	for _, x := range bwd.claim {
		c.claimed[x] = true
	}
	out := bwd.out
	bst := &step{label: fmt.Sprintf("attention-scores-grad [b=%d h=%d %d×%d hd=%d]", B, H, lq, lk, hd), out: out,
		ins: []*Node{bwd.do.v.Root, bwd.v.v.Root, probs}}
	do, v := bwd.do, bwd.v
	bst.run = func(e *env) any {
		dst := e.allocF32(out.Shape.Size())
		a := kernels.AttentionScoresGrad{Batch: B, Heads: H, Lq: lq, Lk: lk, HeadDim: bwd.hd, DO: do.at(e), V: v.at(e),
			P: e.f32(probs), DS: dst}
		a.Run()
		return dst
	}
	c.fused[out] = bst
}

type softmaxBwd struct {
	out   *Node // the scores' gradient
	claim []*Node
	do, v strided
	hd    int
	dOT   *Node // dOᵀ [B,H,Lq,D], dP's left-hand operand
}

// matchSoftmaxBwd matches the softmax backward (see matchTrainAttention) among rest, the uses of ex other
// than den and the probabilities.
func (c *compiler) matchSoftmaxBwd(ex, den *Node, rest []*Node) *softmaxBwd {
	if len(rest) != 2 {
		return nil
	}
	var out, d2 *Node
	for _, x := range rest {
		switch {
		case x.Op == backends.OpTypeMul && other(x, ex) != nil:
			out = x
		case x.Op == backends.OpTypeDiv && x.Inputs[0] == ex:
			d2 = x
		}
	}
	if out == nil || d2 == nil || !c.free(out) || !c.single(d2) {
		return nil
	}
	// d2 = E / (d·d)
	sq := d2.Inputs[1]
	if sq.Op != backends.OpTypeMul || !c.single(sq) || !c.rowBroadcast(sq.Inputs[0], den) || !c.rowBroadcast(sq.Inputs[1], den) {
		return nil
	}
	// m2 = dP · d2, ng = −m2, rs = Σ ng
	m2cs := c.consumers[d2]
	if len(m2cs) != 1 || m2cs[0].Op != backends.OpTypeMul || !c.single(m2cs[0]) {
		return nil
	}
	m2 := m2cs[0]
	dP := other(m2, d2)
	ngcs := c.consumers[m2]
	if len(ngcs) != 1 || ngcs[0].Op != backends.OpTypeNeg || !c.single(ngcs[0]) {
		return nil
	}
	ng := ngcs[0]
	rscs := c.consumers[ng]
	if len(rscs) != 1 || rscs[0].Op != backends.OpTypeReduceSum || !slices.Equal(rscs[0].Axes, []int{3}) || !c.single(rscs[0]) {
		return nil
	}
	rs := rscs[0]
	// out = (dP / d + bcast(rs)) · E
	add := other(out, ex)
	if add.Op != backends.OpTypeAdd || !c.single(add) {
		return nil
	}
	var x *Node
	switch {
	case c.rowBroadcast(add.Inputs[1], rs):
		x = add.Inputs[0]
	case c.rowBroadcast(add.Inputs[0], rs):
		x = add.Inputs[1]
	default:
		return nil
	}
	if x.Op != backends.OpTypeDiv || !c.single(x) || x.Inputs[0] != dP || !c.rowBroadcast(x.Inputs[1], den) {
		return nil
	}
	// dP = DotGeneral(dOᵀ [B,H,Lq,D], v [B,Lk,H,D])
	pp := dP.Dot
	if dP.Op != backends.OpTypeDotGeneral || dP.Uses != 2 || !c.free(dP) || dP.Shape.DType != dtypes.Float32 ||
		!slices.Equal(pp.LhsContract, []int{3}) || !slices.Equal(pp.LhsBatch, []int{0, 1}) || !slices.Equal(pp.RhsContract, []int{3}) ||
		!slices.Equal(pp.RhsBatch, []int{0, 2}) || !slices.Equal(dP.Shape.Dimensions, ex.Shape.Dimensions) {
		return nil
	}
	dov, vv := c.viewOf(dP.Inputs[0]), c.viewOf(dP.Inputs[1])
	do, ok1 := attnOperand(dov, 0, 2, 1)
	v, ok2 := attnOperand(vv, 0, 1, 2)
	if !ok1 || !ok2 {
		return nil
	}
	return &softmaxBwd{out: out, claim: []*Node{d2, sq, m2, ng, rs, add, x, dP}, do: do, v: v, hd: dov.Dims[3],
		dOT: dP.Inputs[0]}
}

// dotIs reports whether n is a float32 DotGeneral of lhs and rhs with the given axes.
func dotIs(n, lhs, rhs *Node, lc, lb, rc, rb []int) bool {
	if n.Op != backends.OpTypeDotGeneral || n.Inputs[0] != lhs || n.Inputs[1] != rhs || n.Shape.DType != dtypes.Float32 {
		return false
	}
	p := n.Dot
	return slices.Equal(p.LhsContract, lc) && slices.Equal(p.LhsBatch, lb) && slices.Equal(p.RhsContract, rc) && slices.Equal(p.RhsBatch, rb)
}

// matchAttentionBackward extends a matched softmax backward to the whole attention backward when the
// scores' gradient dS only feeds dQ = DotGeneral(dS, k) and dK = DotGeneral(dS, q), and dOᵀ also feeds
// dVᵀ = DotGeneral(dOᵀ, P): one kernels.AttentionBackward step computes the three (dS is never
// materialised). The step produces the first of them; the other two are handed over by steps that read
// it (a plan step has one output).
func (c *compiler) matchAttentionBackward(bwd *softmaxBwd, probs *Node, B, H, lq, lk int) bool {
	ds := bwd.out
	if ds.Uses != 2 || len(c.consumers[ds]) != 2 {
		return false
	}
	var dq, dk, dv *Node
	for _, x := range c.consumers[ds] {
		switch {
		case dotIs(x, ds, x.Inputs[1], []int{3}, []int{0, 1}, []int{1}, []int{0, 2}):
			dq = x
		case dotIs(x, ds, x.Inputs[1], []int{2}, []int{0, 1}, []int{1}, []int{0, 2}):
			dk = x
		}
	}
	for _, x := range c.consumers[bwd.dOT] {
		if dotIs(x, bwd.dOT, probs, []int{2}, []int{0, 1}, []int{2}, []int{0, 1}) {
			dv = x
		}
	}
	if dq == nil || dk == nil || dv == nil || !c.free(dq) || !c.free(dk) || !c.free(dv) {
		return false
	}
	kv, qv := c.viewOf(dq.Inputs[1]), c.viewOf(dk.Inputs[1])
	k, ok1 := attnOperand(kv, 0, 1, 2)
	q, ok2 := attnOperand(qv, 0, 1, 2)
	hd := bwd.hd
	if !ok1 || !ok2 || kv.Dims[3] != hd || qv.Dims[3] != hd {
		return false
	}
	outs := []*Node{dq, dk, dv}
	slices.SortFunc(outs, func(a, b *Node) int { return a.ID - b.ID })
	main := outs[0]
	ins := []*Node{qv.Root, kv.Root, bwd.v.v.Root, bwd.do.v.Root, probs}
	for _, in := range ins {
		if in.ID >= main.ID {
			return false
		}
	}
	for _, x := range bwd.claim {
		c.claimed[x] = true
	}
	c.claimed[ds] = true
	// output layouts: dq [B,H,Lq,D], dk [B,H,Lk,D], dv [B,H,D,Lk]
	rowsOut := func(rows int) (bs, rs, hs, dstr int) { return H * rows * hd, hd, rows * hd, 1 }
	var bufs map[*Node][]float32 // this execution's outputs (an executable runs one execution at a time)
	do, v := bwd.do, bwd.v
	st := &step{label: fmt.Sprintf("attention-backward [b=%d h=%d %d×%d hd=%d]", B, H, lq, lk, hd), out: main, ins: ins}
	st.run = func(e *env) any {
		bufs = map[*Node][]float32{dq: e.allocF32(dq.Shape.Size()), dk: e.allocF32(dk.Shape.Size()), dv: e.allocF32(dv.Shape.Size())}
		s4 := func(n *Node, bs, rs, hs, dstr int) kernels.Strided4 {
			return kernels.Strided4{Data: bufs[n], BatchStride: bs, RowStride: rs, HeadStride: hs, DimStride: dstr}
		}
		qb, qr, qh, qd := rowsOut(lq)
		kb, kr, kh, kd := rowsOut(lk)
		a := kernels.AttentionBackward{Batch: B, Heads: H, Lq: lq, Lk: lk, HeadDim: hd,
			Q: q.at(e), K: k.at(e), V: v.at(e), DO: do.at(e), P: e.f32(probs),
			DQ: s4(dq, qb, qr, qh, qd), DK: s4(dk, kb, kr, kh, kd), DV: s4(dv, H*hd*lk, 1, hd*lk, lk)}
		a.Run()
		return bufs[main]
	}
	c.fused[main] = st
	for _, o := range outs[1:] {
		o := o
		c.fused[o] = &step{label: "attention-backward (output)", out: o, ins: []*Node{main}, run: func(e *env) any {
			b := bufs[o]
			delete(bufs, o)
			return b
		}}
	}
	return true
}

// matchAttentionForward fuses the attention's output O = DotGeneral(P, v [B,Lk,H,D]) (or its transpose to
// [B,Lq,H,D]) into the step of the probabilities: kernels.Attention with Probs computes both in one pass.
// The step produces P; O is handed over by a step that reads it.
func (c *compiler) matchAttentionForward(probs *Node, q, k strided, B, H, lq, lk, hd int) bool {
	var pv *Node
	for _, x := range c.consumers[probs] {
		if dotIs(x, probs, x.Inputs[1], []int{3}, []int{0, 1}, []int{1}, []int{0, 2}) && c.free(x) {
			pv = x
		}
	}
	if pv == nil {
		return false
	}
	vv := c.viewOf(pv.Inputs[1])
	v, ok := attnOperand(vv, 0, 1, 2)
	if !ok || vv.Dims[3] != hd {
		return false
	}
	ins := []*Node{q.v.Root, k.v.Root, vv.Root}
	for _, in := range ins {
		if in.ID >= probs.ID {
			return false
		}
	}
	out, outS := c.attentionOutput(pv, H, lq, hd)
	if out != pv {
		c.claimed[pv] = true
	}
	var o []float32 // this execution's output (an executable runs one execution at a time)
	st := &step{label: fmt.Sprintf("attention+probs [b=%d h=%d %d×%d hd=%d]", B, H, lq, lk, hd), out: probs, ins: ins}
	st.run = func(e *env) any {
		dst := e.allocF32(probs.Shape.Size())
		o = e.allocF32(out.Shape.Size())
		a := kernels.Attention{Batch: B, Heads: H, Lq: lq, Lk: lk, HeadDim: hd, Scale: 1, Q: q.at(e), K: k.at(e), V: v.at(e),
			Out: kernels.Strided{Data: o, BatchStride: outS.bs, RowStride: outS.rs, HeadStride: outS.hs}, Probs: dst}
		a.Run()
		return dst
	}
	c.fused[probs] = st
	c.fused[out] = &step{label: "attention+probs (output)", out: out, ins: []*Node{probs}, run: func(e *env) any {
		r := o
		o = nil
		return r
	}}
	return true
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
