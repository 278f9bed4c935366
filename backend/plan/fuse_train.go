package plan

// Fusions of the training graph (GoMLX autodiff of cast.Forward): an attention's forward scores and
// softmax as one step that writes the probabilities P, and the softmax backward together with the gradient
// of P (dP = dO·Vᵀ) as one step that writes the scores' gradient P ⊙ (dP − rowsum(dP ⊙ P)); neither the
// scores, exp(scores − max) nor dP is materialised. The remaining DotGenerals (not weight GEMMs) get steps
// that write into pooled buffers.

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// fuseTrain runs the training matchers that must see the graph before the inference ones.
func (c *compiler) fuseTrain() {
	for _, n := range c.nodes {
		if c.live[n.ID] && n.Op == backends.OpTypeDotGeneral && c.unclaimed(n) {
			c.matchTrainAttention(n)
		}
		if c.live[n.ID] && n.Op == backends.OpTypeScatterSum && c.unclaimed(n) {
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
	c.fused[n] = &Step{Label: fmt.Sprintf("scatter-into-zeros %v", n.Shape.Dimensions), Out: n, Ins: []*Node{idx, upd},
		Kind: &ScatterZeros{Indices: idx, Updates: upd}}
}

// fuseTrainDots gives every float32 DotGeneral no other matcher took a step writing into a pooled buffer.
func (c *compiler) fuseTrainDots() {
	for _, n := range c.nodes {
		if c.live[n.ID] && n.Op == backends.OpTypeDotGeneral && c.unclaimed(n) && n.Shape.DType == dtypes.Float32 &&
			n.Inputs[0].Shape.DType == dtypes.Float32 && n.Inputs[1].Shape.DType == dtypes.Float32 {
			c.matchDot(n)
		}
	}
}

func (c *compiler) matchDot(n *Node) {
	l, r := n.Inputs[0], n.Inputs[1]
	c.fused[n] = &Step{Label: fmt.Sprintf("%s %v", n.Op, n.Shape.Dimensions), Out: n, Ins: []*Node{l, r}, Kind: &Dot{}}
}

// rowBroadcast reports whether n is root ([d0, …, dk]) broadcast along a new (or size-1) last axis.
func (c *compiler) rowBroadcast(n, root *Node) bool {
	v := c.viewOf(n)
	r := len(v.Dims)
	if v.Root != root || v.Off != 0 || r != root.Shape.Rank()+1 || r == 0 {
		return false
	}
	rs := RowMajorStrides(root.Shape.Dimensions)
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

// attnOperand converts a 4-D view with contiguous last axis to an AttnOperand, given which view axes are
// the batch, row and head axes.
func attnOperand(v View, b, row, h int) (AttnOperand, bool) {
	if len(v.Dims) != 4 || (v.Strides[3] != 1 && v.Dims[3] > 1) || v.Root.Shape.DType != dtypes.Float32 {
		return AttnOperand{}, false
	}
	return AttnOperand{View: v, HeadStrides: HeadStrides{Batch: v.Strides[b], Row: v.Strides[row], Head: v.Strides[h]}}, true
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
	if len(ecs) != 1 || ecs[0].Op != backends.OpTypeExp || !c.unclaimed(ecs[0]) {
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
		case probs == nil && x.Op == backends.OpTypeDiv && x.Inputs[0] == ex && c.rowBroadcast(x.Inputs[1], den) && c.unclaimed(x):
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
		c.fused[probs] = &Step{Label: fmt.Sprintf("attention-probs [b=%d h=%d %d×%d hd=%d]", B, H, lq, lk, hd), Out: probs,
			Ins: []*Node{qv.Root, kv.Root}, Kind: &AttentionProbs{B: B, H: H, Lq: lq, Lk: lk, HD: hd, Q: q, K: k}}
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
	c.fused[out] = &Step{Label: fmt.Sprintf("attention-scores-grad [b=%d h=%d %d×%d hd=%d]", B, H, lq, lk, hd), Out: out,
		Ins:  []*Node{bwd.do.View.Root, bwd.v.View.Root, probs},
		Kind: &AttentionScoresGrad{B: B, H: H, Lq: lq, Lk: lk, HD: bwd.hd, DO: bwd.do, V: bwd.v, P: probs}}
}

type softmaxBwd struct {
	out   *Node // the scores' gradient
	claim []*Node
	do, v AttnOperand
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
	if out == nil || d2 == nil || !c.unclaimed(out) || !c.single(d2) {
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
	if dP.Op != backends.OpTypeDotGeneral || dP.Uses != 2 || !c.unclaimed(dP) || dP.Shape.DType != dtypes.Float32 ||
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
// dVᵀ = DotGeneral(dOᵀ, P): one AttentionBackward step computes the three (dS is never
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
	if dq == nil || dk == nil || dv == nil || !c.unclaimed(dq) || !c.unclaimed(dk) || !c.unclaimed(dv) {
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
	ins := []*Node{qv.Root, kv.Root, bwd.v.View.Root, bwd.do.View.Root, probs}
	for _, in := range ins {
		if in.ID >= main.ID {
			return false
		}
	}
	for _, x := range bwd.claim {
		c.claimed[x] = true
	}
	c.claimed[ds] = true
	st := &Step{Label: fmt.Sprintf("attention-backward [b=%d h=%d %d×%d hd=%d]", B, H, lq, lk, hd), Out: main, Ins: ins,
		Kind: &AttentionBackward{B: B, H: H, Lq: lq, Lk: lk, HD: hd, Q: q, K: k, V: bwd.v, DO: bwd.do, P: probs,
			DQ: dq, DK: dk, DV: dv}}
	c.fused[main] = st
	for _, o := range outs[1:] {
		c.fused[o] = &Step{Label: "attention-backward (output)", Out: o, Ins: []*Node{main}, Kind: &Handover{From: st}}
	}
	return true
}

// matchAttentionForward fuses the attention's output O = DotGeneral(P, v [B,Lk,H,D]) (or its transpose to
// [B,Lq,H,D]) into the step of the probabilities: one AttentionWithProbs step computes both in one pass.
// The step produces P; O is handed over by a step that reads it.
func (c *compiler) matchAttentionForward(probs *Node, q, k AttnOperand, B, H, lq, lk, hd int) bool {
	var pv *Node
	for _, x := range c.consumers[probs] {
		// Other consumers of P (a mean over heads for an explanation map, say) may have one input.
		if x.Op == backends.OpTypeDotGeneral && dotIs(x, probs, x.Inputs[1], []int{3}, []int{0, 1}, []int{1}, []int{0, 2}) && c.unclaimed(x) {
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
	ins := []*Node{q.View.Root, k.View.Root, vv.Root}
	for _, in := range ins {
		if in.ID >= probs.ID {
			return false
		}
	}
	out, outS := c.attentionOutput(pv, H, lq, hd)
	if out != pv {
		c.claimed[pv] = true
	}
	st := &Step{Label: fmt.Sprintf("attention+probs [b=%d h=%d %d×%d hd=%d]", B, H, lq, lk, hd), Out: probs, Ins: ins,
		Kind: &AttentionWithProbs{B: B, H: H, Lq: lq, Lk: lk, HD: hd, Q: q, K: k, V: v, Output: out, OutStrides: outS}}
	c.fused[probs] = st
	c.fused[out] = &Step{Label: "attention+probs (output)", Out: out, Ins: []*Node{probs}, Kind: &Handover{From: st}}
	return true
}
