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
		if c.live[n.id] && n.op == backends.OpTypeDotGeneral && c.free(n) {
			c.matchTrainAttention(n)
		}
		if c.live[n.id] && n.op == backends.OpTypeScatterSum && c.free(n) {
			c.matchScatterZero(n)
		}
	}
}

// matchScatterZero gives ScatterSum into zeros (Gather's gradient: the operand a broadcast 0) a step that
// clears a pooled buffer and adds the updates, instead of materialising the zeros and copying them.
func (c *compiler) matchScatterZero(n *node) {
	if n.shape.DType != dtypes.Float32 || n.inputs[2].shape.DType != dtypes.Float32 {
		return
	}
	if v, ok := constScalar(n.inputs[0]); !ok || v != 0 {
		return
	}
	idx, upd := n.inputs[1], n.inputs[2]
	st := &step{label: fmt.Sprintf("scatter-into-zeros %v", n.shape.Dimensions), out: n, ins: []*node{idx, upd}}
	st.run = func(e *env) any {
		dst := e.allocF32(n.shape.Size())
		clear(dst)
		scatterAdd(n, dst, e.f32(upd), toInts(e.val(idx)))
		return dst
	}
	c.fused[n] = st
}

// fuseTrainDots gives every float32 DotGeneral no other matcher took a step writing into a pooled buffer.
func (c *compiler) fuseTrainDots() {
	for _, n := range c.b.nodes {
		if c.live[n.id] && n.op == backends.OpTypeDotGeneral && c.free(n) && n.shape.DType == dtypes.Float32 &&
			n.inputs[0].shape.DType == dtypes.Float32 && n.inputs[1].shape.DType == dtypes.Float32 {
			c.matchDot(n)
		}
	}
}

func (c *compiler) matchDot(n *node) {
	l, r := n.inputs[0], n.inputs[1]
	st := &step{label: fmt.Sprintf("%s %v", n.op, n.shape.Dimensions), out: n, ins: []*node{l, r}}
	st.run = func(e *env) any {
		dst := e.allocF32(n.shape.Size())
		dotInto(n, e.f32(l), e.f32(r), dst, e.allocF32, e.release)
		return dst
	}
	c.fused[n] = st
}

// rowBroadcast reports whether n is root ([d0, …, dk]) broadcast along a new (or size-1) last axis.
func (c *compiler) rowBroadcast(n, root *node) bool {
	v := c.viewOf(n)
	r := len(v.dims)
	if v.root != root || v.off != 0 || r != root.shape.Rank()+1 || r == 0 {
		return false
	}
	rs := rowMajorStrides(root.shape.Dimensions)
	for i := 0; i < r-1; i++ {
		if v.dims[i] != root.shape.Dimensions[i] || (v.strides[i] != rs[i] && v.dims[i] != 1) {
			return false
		}
	}
	return v.dims[r-1] == 1 || v.strides[r-1] == 0
}

// other returns the operand of binary n that is not x (nil if none is x).
func other(n, x *node) *node {
	switch {
	case n.inputs[0] == x:
		return n.inputs[1]
	case n.inputs[1] == x:
		return n.inputs[0]
	}
	return nil
}

// attnOperand converts a 4-D view with contiguous last axis to a kernels.Strided, given which view axes are
// the batch, row and head axes.
func attnOperand(v view, b, row, h int) (strided, bool) {
	if len(v.dims) != 4 || (v.strides[3] != 1 && v.dims[3] > 1) || v.root.shape.DType != dtypes.Float32 {
		return strided{}, false
	}
	return strided{v: v, bs: v.strides[b], rs: v.strides[row], hs: v.strides[h]}, true
}

type strided struct {
	v          view
	bs, rs, hs int
}

func (s strided) at(e *env) kernels.Strided {
	return kernels.Strided{Data: e.f32(s.v.root)[s.v.off:], BatchStride: s.bs, RowStride: s.rs, HeadStride: s.hs}
}

// matchTrainAttention recognises, from the scores s = DotGeneral(q [B,Lq,H,D], k [B,Lk,H,D]) → [B,H,Lq,Lk],
// the softmax P = E / Σ E with E = exp(s − max s) (the max through a stop-gradient), and, where E's other
// uses are the softmax backward
//
//	dS = (dP / d + bcast(Σ −(dP · E / (d·d)))) · E      (d = Σ E, dP = DotGeneral(dOᵀ [B,H,Lq,D], v [B,Lk,H,D]))
//
// that backward too.
func (c *compiler) matchTrainAttention(s *node) {
	p := s.dg
	if s.shape.DType != dtypes.Float32 || s.shape.Rank() != 4 || !slices.Equal(p.lc, []int{3}) ||
		!slices.Equal(p.lb, []int{0, 2}) || !slices.Equal(p.rc, []int{3}) || !slices.Equal(p.rb, []int{0, 2}) {
		return
	}
	cs := c.consumers[s]
	if s.uses != 2 || len(cs) != 2 {
		return
	}
	var mx, sub *node
	for _, x := range cs {
		switch x.op {
		case backends.OpTypeReduceMax:
			mx = x
		case backends.OpTypeSub:
			sub = x
		}
	}
	if mx == nil || sub == nil || !slices.Equal(mx.axes, []int{3}) || !c.single(mx) || !c.single(sub) ||
		sub.inputs[0] != s || !c.rowBroadcast(sub.inputs[1], mx) {
		return
	}
	ecs := c.consumers[sub]
	if len(ecs) != 1 || ecs[0].op != backends.OpTypeExp || !c.free(ecs[0]) {
		return
	}
	ex := ecs[0]
	var den, probs *node
	for _, x := range c.consumers[ex] {
		if x.op == backends.OpTypeReduceSum && x.inputs[0] == ex && slices.Equal(x.axes, []int{3}) && c.single(x) {
			den = x
		}
	}
	if den == nil {
		return
	}
	var rest []*node
	for _, x := range c.consumers[ex] {
		switch {
		case x == den:
		case probs == nil && x.op == backends.OpTypeDiv && x.inputs[0] == ex && c.rowBroadcast(x.inputs[1], den) && c.free(x):
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
	} else if probs.uses == 1 {
		return // inference: matchAttention fuses the whole attention
	}
	qv, kv := c.viewOf(s.inputs[0]), c.viewOf(s.inputs[1])
	q, ok1 := attnOperand(qv, 0, 1, 2)
	k, ok2 := attnOperand(kv, 0, 1, 2)
	if !ok1 || !ok2 {
		return
	}
	B, H, lq, lk, hd := s.shape.Dimensions[0], s.shape.Dimensions[1], s.shape.Dimensions[2], s.shape.Dimensions[3], qv.dims[3]
	for _, x := range []*node{s, mx, sub, ex, den} {
		c.claimed[x] = true
	}
	if !c.matchAttentionForward(probs, q, k, B, H, lq, lk, hd) {
		st := &step{label: fmt.Sprintf("attention-probs [b=%d h=%d %d×%d hd=%d]", B, H, lq, lk, hd), out: probs,
			ins: []*node{qv.root, kv.root}}
		st.run = func(e *env) any {
			dst := e.allocF32(probs.shape.Size())
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
		ins: []*node{bwd.do.v.root, bwd.v.v.root, probs}}
	do, v := bwd.do, bwd.v
	bst.run = func(e *env) any {
		dst := e.allocF32(out.shape.Size())
		a := kernels.AttentionScoresGrad{Batch: B, Heads: H, Lq: lq, Lk: lk, HeadDim: bwd.hd, DO: do.at(e), V: v.at(e),
			P: e.f32(probs), DS: dst}
		a.Run()
		return dst
	}
	c.fused[out] = bst
}

type softmaxBwd struct {
	out   *node // the scores' gradient
	claim []*node
	do, v strided
	hd    int
	dOT   *node // dOᵀ [B,H,Lq,D], dP's left-hand operand
}

// matchSoftmaxBwd matches the softmax backward (see matchTrainAttention) among rest, the uses of ex other
// than den and the probabilities.
func (c *compiler) matchSoftmaxBwd(ex, den *node, rest []*node) *softmaxBwd {
	if len(rest) != 2 {
		return nil
	}
	var out, d2 *node
	for _, x := range rest {
		switch {
		case x.op == backends.OpTypeMul && other(x, ex) != nil:
			out = x
		case x.op == backends.OpTypeDiv && x.inputs[0] == ex:
			d2 = x
		}
	}
	if out == nil || d2 == nil || !c.free(out) || !c.single(d2) {
		return nil
	}
	// d2 = E / (d·d)
	sq := d2.inputs[1]
	if sq.op != backends.OpTypeMul || !c.single(sq) || !c.rowBroadcast(sq.inputs[0], den) || !c.rowBroadcast(sq.inputs[1], den) {
		return nil
	}
	// m2 = dP · d2, ng = −m2, rs = Σ ng
	m2cs := c.consumers[d2]
	if len(m2cs) != 1 || m2cs[0].op != backends.OpTypeMul || !c.single(m2cs[0]) {
		return nil
	}
	m2 := m2cs[0]
	dP := other(m2, d2)
	ngcs := c.consumers[m2]
	if len(ngcs) != 1 || ngcs[0].op != backends.OpTypeNeg || !c.single(ngcs[0]) {
		return nil
	}
	ng := ngcs[0]
	rscs := c.consumers[ng]
	if len(rscs) != 1 || rscs[0].op != backends.OpTypeReduceSum || !slices.Equal(rscs[0].axes, []int{3}) || !c.single(rscs[0]) {
		return nil
	}
	rs := rscs[0]
	// out = (dP / d + bcast(rs)) · E
	add := other(out, ex)
	if add.op != backends.OpTypeAdd || !c.single(add) {
		return nil
	}
	var x *node
	switch {
	case c.rowBroadcast(add.inputs[1], rs):
		x = add.inputs[0]
	case c.rowBroadcast(add.inputs[0], rs):
		x = add.inputs[1]
	default:
		return nil
	}
	if x.op != backends.OpTypeDiv || !c.single(x) || x.inputs[0] != dP || !c.rowBroadcast(x.inputs[1], den) {
		return nil
	}
	// dP = DotGeneral(dOᵀ [B,H,Lq,D], v [B,Lk,H,D])
	pp := dP.dg
	if dP.op != backends.OpTypeDotGeneral || dP.uses != 2 || !c.free(dP) || dP.shape.DType != dtypes.Float32 ||
		!slices.Equal(pp.lc, []int{3}) || !slices.Equal(pp.lb, []int{0, 1}) || !slices.Equal(pp.rc, []int{3}) ||
		!slices.Equal(pp.rb, []int{0, 2}) || !slices.Equal(dP.shape.Dimensions, ex.shape.Dimensions) {
		return nil
	}
	dov, vv := c.viewOf(dP.inputs[0]), c.viewOf(dP.inputs[1])
	do, ok1 := attnOperand(dov, 0, 2, 1)
	v, ok2 := attnOperand(vv, 0, 1, 2)
	if !ok1 || !ok2 {
		return nil
	}
	return &softmaxBwd{out: out, claim: []*node{d2, sq, m2, ng, rs, add, x, dP}, do: do, v: v, hd: dov.dims[3],
		dOT: dP.inputs[0]}
}

// dotIs reports whether n is a float32 DotGeneral of lhs and rhs with the given axes.
func dotIs(n, lhs, rhs *node, lc, lb, rc, rb []int) bool {
	if n.op != backends.OpTypeDotGeneral || n.inputs[0] != lhs || n.inputs[1] != rhs || n.shape.DType != dtypes.Float32 {
		return false
	}
	p := n.dg
	return slices.Equal(p.lc, lc) && slices.Equal(p.lb, lb) && slices.Equal(p.rc, rc) && slices.Equal(p.rb, rb)
}

// matchAttentionBackward extends a matched softmax backward to the whole attention backward when the
// scores' gradient dS only feeds dQ = DotGeneral(dS, k) and dK = DotGeneral(dS, q), and dOᵀ also feeds
// dVᵀ = DotGeneral(dOᵀ, P): one kernels.AttentionBackward step computes the three (dS is never
// materialised). The step produces the first of them; the other two are handed over by steps that read
// it (a plan step has one output).
func (c *compiler) matchAttentionBackward(bwd *softmaxBwd, probs *node, B, H, lq, lk int) bool {
	ds := bwd.out
	if ds.uses != 2 || len(c.consumers[ds]) != 2 {
		return false
	}
	var dq, dk, dv *node
	for _, x := range c.consumers[ds] {
		switch {
		case dotIs(x, ds, x.inputs[1], []int{3}, []int{0, 1}, []int{1}, []int{0, 2}):
			dq = x
		case dotIs(x, ds, x.inputs[1], []int{2}, []int{0, 1}, []int{1}, []int{0, 2}):
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
	kv, qv := c.viewOf(dq.inputs[1]), c.viewOf(dk.inputs[1])
	k, ok1 := attnOperand(kv, 0, 1, 2)
	q, ok2 := attnOperand(qv, 0, 1, 2)
	hd := bwd.hd
	if !ok1 || !ok2 || kv.dims[3] != hd || qv.dims[3] != hd {
		return false
	}
	outs := []*node{dq, dk, dv}
	slices.SortFunc(outs, func(a, b *node) int { return a.id - b.id })
	main := outs[0]
	ins := []*node{qv.root, kv.root, bwd.v.v.root, bwd.do.v.root, probs}
	for _, in := range ins {
		if in.id >= main.id {
			return false
		}
	}
	for _, x := range bwd.claim {
		c.claimed[x] = true
	}
	c.claimed[ds] = true
	// output layouts: dq [B,H,Lq,D], dk [B,H,Lk,D], dv [B,H,D,Lk]
	rowsOut := func(rows int) (bs, rs, hs, dstr int) { return H * rows * hd, hd, rows * hd, 1 }
	var bufs map[*node][]float32 // this execution's outputs (an executable runs one execution at a time)
	do, v := bwd.do, bwd.v
	st := &step{label: fmt.Sprintf("attention-backward [b=%d h=%d %d×%d hd=%d]", B, H, lq, lk, hd), out: main, ins: ins}
	st.run = func(e *env) any {
		bufs = map[*node][]float32{dq: e.allocF32(dq.shape.Size()), dk: e.allocF32(dk.shape.Size()), dv: e.allocF32(dv.shape.Size())}
		s4 := func(n *node, bs, rs, hs, dstr int) kernels.Strided4 {
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
		c.fused[o] = &step{label: "attention-backward (output)", out: o, ins: []*node{main}, run: func(e *env) any {
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
func (c *compiler) matchAttentionForward(probs *node, q, k strided, B, H, lq, lk, hd int) bool {
	var pv *node
	for _, x := range c.consumers[probs] {
		if dotIs(x, probs, x.inputs[1], []int{3}, []int{0, 1}, []int{1}, []int{0, 2}) && c.free(x) {
			pv = x
		}
	}
	if pv == nil {
		return false
	}
	vv := c.viewOf(pv.inputs[1])
	v, ok := attnOperand(vv, 0, 1, 2)
	if !ok || vv.dims[3] != hd {
		return false
	}
	ins := []*node{q.v.root, k.v.root, vv.root}
	for _, in := range ins {
		if in.id >= probs.id {
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
		dst := e.allocF32(probs.shape.Size())
		o = e.allocF32(out.shape.Size())
		a := kernels.Attention{Batch: B, Heads: H, Lq: lq, Lk: lk, HeadDim: hd, Scale: 1, Q: q.at(e), K: k.at(e), V: v.at(e),
			Out: kernels.Strided{Data: o, BatchStride: outS.bs, RowStride: outS.rs, HeadStride: outS.hs}, Probs: dst}
		a.Run()
		return dst
	}
	c.fused[probs] = st
	c.fused[out] = &step{label: "attention+probs (output)", out: out, ins: []*node{probs}, run: func(e *env) any {
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
