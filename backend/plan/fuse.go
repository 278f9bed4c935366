package plan

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// fuse runs the pattern matchers, recording fused steps in c.fused (by the node each produces) and the
// nodes they compute internally in c.claimed. Nodes no fused step claims fall back to generic steps. A
// matcher only claims unclaimed nodes, so the order decides which pattern wins where they overlap:
//
//  1. the training attention (fuse_train.go), which must see the softmax before matchSoftmax takes it,
//     and ScatterSum into zeros;
//  2. inference attention (it contains a softmax and two DotGenerals);
//  3. layer norm, softmax and concatenation;
//  4. weight GEMMs with their epilogues (bias, activation, scale, residual: elementwise ops the last pass
//     would otherwise take);
//  5. the remaining float32 DotGenerals of training;
//  6. elementwise chains, from the last node backwards so each loop starts at a chain's root.
func (c *compiler) fuse() {
	c.consumers = map[*Node][]*Node{}
	for _, n := range c.nodes {
		if c.live[n.ID] {
			for _, in := range n.Inputs {
				if !slices.Contains(c.consumers[in], n) {
					c.consumers[in] = append(c.consumers[in], n)
				}
			}
		}
	}
	c.fuseTrain()
	for _, n := range c.nodes {
		if c.live[n.ID] && n.Op == backends.OpTypeDotGeneral {
			c.matchAttention(n)
		}
	}
	for _, n := range c.nodes {
		if c.live[n.ID] && n.Op == backends.OpTypeAdd {
			c.matchLayerNorm(n)
		}
		if c.live[n.ID] && n.Op == backends.OpTypeDiv {
			c.matchSoftmax(n)
		}
		if c.live[n.ID] && n.Op == backends.OpTypeConcatenate {
			c.matchConcat(n)
		}
	}
	for _, n := range c.nodes {
		if c.live[n.ID] && n.Op == backends.OpTypeDotGeneral && !c.claimed[n] {
			c.matchGemm(n)
		}
	}
	c.fuseTrainDots()
	for i := len(c.nodes) - 1; i >= 0; i-- {
		n := c.nodes[i]
		if c.live[n.ID] && IsElementwise(n) && !c.claimed[n] && c.fused[n] == nil {
			c.matchElementwise(n)
		}
	}
}

// strip looks through Identity, Reshape and BroadcastInDim.
func strip(n *Node) *Node {
	for n.Op == backends.OpTypeIdentity || n.Op == backends.OpTypeReshape || n.Op == backends.OpTypeBroadcastInDim {
		n = n.Inputs[0]
	}
	return n
}

// constScalar returns the value of a float32 constant holding one value (possibly reshaped or broadcast).
func constScalar(n *Node) (float64, bool) {
	n = strip(n)
	if n.Op != backends.OpTypeConstant || n.Shape.Size() != 1 {
		return 0, false
	}
	switch v := n.Data.(type) {
	case []float32:
		return float64(v[0]), true
	case []float64:
		return v[0], true
	}
	return 0, false
}

func isConst(n *Node, want float64) bool {
	v, ok := constScalar(n)
	return ok && math.Abs(v-want) <= 1e-6*math.Max(1, math.Abs(want))
}

func (c *compiler) unclaimed(n *Node) bool { return !c.claimed[n] && c.fused[n] == nil }

// single reports whether n is used exactly once and not yet part of a fused step.
func (c *compiler) single(n *Node) bool { return n.Uses == 1 && c.unclaimed(n) }

// operands returns the operands of binary n in both orders.
func operands(n *Node) [][2]*Node {
	return [][2]*Node{{n.Inputs[0], n.Inputs[1]}, {n.Inputs[1], n.Inputs[0]}}
}

// vectorView checks that n (shape of rank ≥ 1, last dim size) is a vector along its last axis broadcast over
// the others, and returns its root and offset.
func (c *compiler) vectorView(n *Node, size int) (*Node, int, bool) {
	if n.Shape.DType != dtypes.Float32 || n.Shape.Rank() == 0 || n.Shape.Dimensions[n.Shape.Rank()-1] != size {
		return nil, 0, false
	}
	v := c.viewOf(n)
	r := len(v.Dims)
	for i, s := range v.Strides {
		if (i < r-1 && s != 0 && v.Dims[i] != 1) || (i == r-1 && s != 1 && size > 1) {
			return nil, 0, false
		}
	}
	if v.Root.Shape.DType != dtypes.Float32 {
		return nil, 0, false
	}
	return v.Root, v.Off, true
}

// ---------------------------------------------------------------- GEMM with packed weights and epilogue

type weightSpec struct {
	w, scale   *Node // parameter (float32, or int8 with its float32 per-output-channel scale)
	transposed bool
}

// weightOf recognises a right-hand operand [K, N] or [N, K] (transposed) that is a parameter, possibly
// reshaped, or an int8 parameter dequantized in the graph: ConvertDType(w) · Reshape(scale).
func weightOf(rhs *Node, rc []int) (weightSpec, bool) {
	if rhs.Shape.Rank() != 2 || len(rc) != 1 {
		return weightSpec{}, false
	}
	transposed := rc[0] == 1
	s := rhs
	for s.Op == backends.OpTypeReshape || s.Op == backends.OpTypeIdentity {
		s = s.Inputs[0]
	}
	if s.Op == backends.OpTypeParameter && s.Shape.DType == dtypes.Float32 {
		return weightSpec{w: s, transposed: transposed}, true
	}
	if s.Op != backends.OpTypeMul || !transposed {
		return weightSpec{}, false
	}
	for _, ops := range operands(s) {
		cv, sc := ops[0], ops[1]
		if cv.Op != backends.OpTypeConvertDType || cv.Inputs[0].Op != backends.OpTypeParameter ||
			cv.Inputs[0].Shape.DType != dtypes.Int8 || cv.Shape.Rank() < 1 {
			continue
		}
		n := cv.Shape.Dimensions[0]
		if sc.Shape.Dimensions[0] != n || sc.Shape.Size() != n {
			continue
		}
		sp := strip(sc)
		if sp.Op != backends.OpTypeParameter || sp.Shape.DType != dtypes.Float32 || sp.Shape.Size() != n {
			continue
		}
		if rhs.Shape.Dimensions[0] != n {
			continue
		}
		return weightSpec{w: cv.Inputs[0], scale: sp, transposed: true}, true
	}
	return weightSpec{}, false
}

// matchGemm recognises a DotGeneral d of activations [..., K] by a weight W (a float32 parameter [K, N] or
// [N, K], or an int8 parameter [N, K] dequantized in the graph by its per-channel scale) and the single-use
// chain after it: + bias vector, GELU or QuickGELU, · scalar, + residual. It claims them as one Gemm step
// (the weight is packed once by the executor).
func (c *compiler) matchGemm(d *Node) {
	p := d.Dot
	lhs, rhs := d.Inputs[0], d.Inputs[1]
	if len(p.LhsBatch) != 0 || len(p.LhsContract) != 1 || p.LhsContract[0] != lhs.Shape.Rank()-1 {
		return
	}
	ws, ok := weightOf(rhs, p.RhsContract)
	if !ok {
		return
	}
	k := lhs.Shape.Dimensions[lhs.Shape.Rank()-1]
	n := rhs.Shape.Dimensions[1-p.RhsContract[0]]
	m := lhs.Shape.Size() / max(k, 1)
	var (
		biasRoot, res *Node
		biasOff       int
		act           Activation
		postScale     float32
		parts         []string
	)
	cur := d
	claim := []*Node{d}
	next := func(x *Node) *Node {
		cs := c.consumers[x]
		if x.Uses != 1 || len(cs) != 1 || !c.unclaimed(cs[0]) {
			return nil
		}
		return cs[0]
	}
	// bias
	if a := next(cur); a != nil && a.Op == backends.OpTypeAdd && slices.Equal(a.Shape.Dimensions, d.Shape.Dimensions) {
		for _, ops := range operands(a) {
			if ops[0] != cur {
				continue
			}
			if r, off, ok := c.vectorView(ops[1], n); ok {
				biasRoot, biasOff, cur = r, off, a
				claim = append(claim, a)
				parts = append(parts, "bias")
				break
			}
		}
	}
	// activation
	if g, extra, a := c.matchAct(cur); g != nil {
		act, cur = a, g
		claim = append(claim, extra...)
		if a == ActGELU {
			parts = append(parts, "gelu")
		} else {
			parts = append(parts, "quickgelu")
		}
	}
	// post-scale
	if s := next(cur); s != nil && s.Op == backends.OpTypeMul {
		for _, ops := range operands(s) {
			if ops[0] != cur {
				continue
			}
			if v, ok := constScalar(ops[1]); ok && ops[1].Shape.Rank() == 0 || ok && ops[1].Shape.Size() == 1 {
				postScale, cur = float32(v), s
				claim = append(claim, s)
				parts = append(parts, "scale")
				break
			}
		}
	}
	// residual
	if a := next(cur); a != nil && a.Op == backends.OpTypeAdd {
		for _, ops := range operands(a) {
			if ops[0] != cur || !slices.Equal(ops[1].Shape.Dimensions, d.Shape.Dimensions) || ops[1] == cur {
				continue
			}
			res, cur = ops[1], a
			claim = append(claim, a)
			parts = append(parts, "residual")
			break
		}
	}
	for _, x := range claim {
		c.claimed[x] = true
	}
	out := cur
	ins := []*Node{lhs, ws.w}
	if ws.scale != nil {
		ins = append(ins, ws.scale)
	}
	if biasRoot != nil {
		ins = append(ins, biasRoot)
	}
	if res != nil {
		ins = append(ins, res)
	}
	kind := "gemm"
	if ws.scale != nil {
		kind = "gemm-int8"
	}
	for _, p := range parts {
		kind += "+" + p
	}
	c.fused[out] = &Step{Label: fmt.Sprintf("%s [%d×%d×%d]", kind, m, k, n), Out: out, Ins: ins,
		Kind: &Gemm{M: m, K: k, N: n, LHS: lhs, W: ws.w, Scale: ws.scale, Transposed: ws.transposed,
			Bias: biasRoot, BiasOff: biasOff, Residual: res, Act: act, PostScale: postScale}}
}

// matchAct recognises GELU 0.5·x·(1+erf(x/√2)) or QuickGELU x·σ(1.702·x) applied to x; it returns the
// activation's output node and the nodes it spans.
func (c *compiler) matchAct(x *Node) (*Node, []*Node, Activation) {
	cs := c.consumers[x]
	if x.Uses != 2 || len(cs) != 2 {
		return nil, nil, 0
	}
	mulBy := func(m *Node, v float64) bool {
		if m.Op != backends.OpTypeMul || !c.single(m) {
			return false
		}
		for _, ops := range operands(m) {
			if ops[0] == x && isConst(ops[1], v) {
				return true
			}
		}
		return false
	}
	onlyConsumer := func(n *Node) *Node {
		if n.Uses != 1 || len(c.consumers[n]) != 1 || !c.unclaimed(c.consumers[n][0]) {
			return nil
		}
		return c.consumers[n][0]
	}
	for _, pair := range [][2]*Node{{cs[0], cs[1]}, {cs[1], cs[0]}} {
		half, inner := pair[0], pair[1]
		// GELU
		if mulBy(half, 0.5) && mulBy(inner, 1/math.Sqrt2) {
			erf := onlyConsumer(inner)
			if erf == nil || erf.Op != backends.OpTypeErf {
				continue
			}
			one := onlyConsumer(erf)
			if one == nil || one.Op != backends.OpTypeAdd || !(isConst(one.Inputs[0], 1) || isConst(one.Inputs[1], 1)) {
				continue
			}
			g := onlyConsumer(one)
			if g == nil || g.Op != backends.OpTypeMul || onlyConsumer(half) != g {
				continue
			}
			return g, []*Node{half, inner, erf, one, g}, ActGELU
		}
		// QuickGELU: Mul(x, Logistic(Mul(x, 1.702)))
		if mulBy(inner, 1.702) && half.Op == backends.OpTypeMul && c.single(half) {
			lg := onlyConsumer(inner)
			if lg == nil || lg.Op != backends.OpTypeLogistic || onlyConsumer(lg) != half {
				continue
			}
			if !((half.Inputs[0] == x && half.Inputs[1] == lg) || (half.Inputs[1] == x && half.Inputs[0] == lg)) {
				continue
			}
			return half, []*Node{inner, lg, half}, ActQuickGELU
		}
	}
	return nil, nil, 0
}

// ---------------------------------------------------------------- attention

// matchAttention recognises, from the output pv = DotGeneral(P [B,H,Lq,Lk], v [B,Lk,H,D]), cast's attention
// softmax((q·scale)·kᵀ)·v with the softmax exp(s − max s) / Σ exp(s − max s) over the keys, q, k and v read
// through their views (the head split is a transpose, no copy), and claims it as one Attention step whose
// output is pv or, when pv only feeds the transpose back to [B,Lq,H,D], that transpose.
func (c *compiler) matchAttention(pv *Node) {
	p := pv.Dot
	if !slices.Equal(p.LhsContract, []int{3}) || !slices.Equal(p.LhsBatch, []int{0, 1}) || !slices.Equal(p.RhsContract, []int{1}) || !slices.Equal(p.RhsBatch, []int{0, 2}) {
		return
	}
	probs, vNode := pv.Inputs[0], pv.Inputs[1]
	if probs.Op != backends.OpTypeDiv || !c.single(probs) {
		return
	}
	ex, den := probs.Inputs[0], strip(probs.Inputs[1])
	if ex.Op != backends.OpTypeExp || ex.Uses != 2 || den.Op != backends.OpTypeReduceSum || den.Inputs[0] != ex ||
		!slices.Equal(den.Axes, []int{3}) || !c.single(den) {
		return
	}
	sub := ex.Inputs[0]
	if sub.Op != backends.OpTypeSub || !c.single(sub) {
		return
	}
	scores, mx := sub.Inputs[0], strip(sub.Inputs[1])
	if mx.Op != backends.OpTypeReduceMax || mx.Inputs[0] != scores || !slices.Equal(mx.Axes, []int{3}) || !c.single(mx) {
		return
	}
	sp := scores.Dot
	if scores.Op != backends.OpTypeDotGeneral || scores.Uses != 2 || !slices.Equal(sp.LhsContract, []int{3}) ||
		!slices.Equal(sp.LhsBatch, []int{0, 2}) || !slices.Equal(sp.RhsContract, []int{3}) || !slices.Equal(sp.RhsBatch, []int{0, 2}) {
		return
	}
	qNode, kNode := scores.Inputs[0], scores.Inputs[1]
	scale := float32(1)
	var qs *Node
	if qNode.Op == backends.OpTypeMul && c.single(qNode) {
		for _, ops := range operands(qNode) {
			if v, ok := constScalar(ops[1]); ok && ops[0].Shape.Rank() == 4 && slices.Equal(ops[0].Shape.Dimensions, qNode.Shape.Dimensions) {
				scale, qs, qNode = float32(v), qNode, ops[0]
				break
			}
		}
	}
	qv, kv, vv := c.viewOf(qNode), c.viewOf(kNode), c.viewOf(vNode)
	for _, v := range []View{qv, kv, vv} {
		if len(v.Dims) != 4 || v.Strides[3] != 1 || v.Root.Shape.DType != dtypes.Float32 {
			return
		}
	}
	b, lq, h, hd := qv.Dims[0], qv.Dims[1], qv.Dims[2], qv.Dims[3]
	lk := kv.Dims[1]
	out, outS := c.attentionOutput(pv, h, lq, hd)
	if out != pv {
		c.claimed[out] = true
	}
	for _, x := range []*Node{pv, probs, ex, den, sub, mx, scores, qs} {
		if x != nil {
			c.claimed[x] = true
		}
	}
	c.fused[out] = &Step{Label: fmt.Sprintf("attention [b=%d h=%d %d×%d hd=%d]", b, h, lq, lk, hd), Out: out,
		Ins:  []*Node{qv.Root, kv.Root, vv.Root},
		Kind: &Attention{B: b, H: h, Lq: lq, Lk: lk, HD: hd, Scale: scale, Q: qv, K: kv, V: vv, Out: outS}}
}

// attentionOutput is where an attention writes its output pv ([b, h, lq, hd]): into pv, or straight into pv's
// only consumer when that is the transpose to [b, lq, h, hd] (heads back beside each other), with the strides
// of the chosen layout.
func (c *compiler) attentionOutput(pv *Node, h, lq, hd int) (*Node, HeadStrides) {
	if cs := c.consumers[pv]; pv.Uses == 1 && len(cs) == 1 && cs[0].Op == backends.OpTypeTranspose &&
		slices.Equal(cs[0].Axes, []int{0, 2, 1, 3}) && c.unclaimed(cs[0]) {
		return cs[0], HeadStrides{Batch: lq * h * hd, Row: h * hd, Head: hd}
	}
	return pv, HeadStrides{Batch: h * lq * hd, Row: hd, Head: lq * hd}
}

// ---------------------------------------------------------------- layer norm

// matchLayerNorm recognises cast's layerNorm: (x-μ)/√(σ²+eps)·γ + β over the last axis.
func (c *compiler) matchLayerNorm(out *Node) {
	if out.Shape.DType != dtypes.Float32 || out.Shape.Rank() == 0 || !c.unclaimed(out) {
		return
	}
	n := out.Shape.Dimensions[out.Shape.Rank()-1]
	meanOf := func(m *Node, of *Node) bool { // m = Mul(ReduceSum(of, last), 1/n)
		m = strip(m)
		if m.Op != backends.OpTypeMul || !c.single(m) {
			return false
		}
		for _, ops := range operands(m) {
			r := ops[0]
			if r.Op == backends.OpTypeReduceSum && r.Inputs[0] == of && slices.Equal(r.Axes, []int{of.Shape.Rank() - 1}) &&
				c.single(r) && isConst(ops[1], 1/float64(n)) {
				c.claimed[m], c.claimed[r] = true, true
				return true
			}
		}
		return false
	}
	for _, o1 := range operands(out) {
		mul, bb := o1[0], o1[1]
		betaRoot, betaOff, ok := c.vectorView(bb, n)
		if !ok || mul.Op != backends.OpTypeMul || !c.single(mul) {
			continue
		}
		for _, o2 := range operands(mul) {
			y, gb := o2[0], o2[1]
			gammaRoot, gammaOff, ok := c.vectorView(gb, n)
			if !ok || y.Op != backends.OpTypeDiv || !c.single(y) {
				continue
			}
			xc, sq := y.Inputs[0], strip(y.Inputs[1])
			if xc.Op != backends.OpTypeSub || xc.Uses != 3 || !c.unclaimed(xc) || sq.Op != backends.OpTypeSqrt || !c.single(sq) {
				continue
			}
			ae := sq.Inputs[0]
			if ae.Op != backends.OpTypeAdd || !c.single(ae) {
				continue
			}
			var eps float64
			var variance *Node
			for _, o3 := range operands(ae) {
				if v, ok := constScalar(o3[1]); ok {
					eps, variance = v, o3[0]
				}
			}
			if variance == nil {
				continue
			}
			x := xc.Inputs[0]
			sqr := strip(variance)
			if sqr.Op != backends.OpTypeMul {
				continue
			}
			var sq2 *Node
			for _, o4 := range operands(sqr) {
				if r := o4[0]; r.Op == backends.OpTypeReduceSum {
					sq2 = r.Inputs[0]
				}
			}
			if sq2 == nil || sq2.Op != backends.OpTypeMul || sq2.Inputs[0] != xc || sq2.Inputs[1] != xc || !c.unclaimed(sq2) {
				continue
			}
			if !slices.Equal(x.Shape.Dimensions, out.Shape.Dimensions) || x.Shape.DType != dtypes.Float32 {
				continue
			}
			if !meanOf(variance, sq2) || !meanOf(xc.Inputs[1], x) {
				continue
			}
			for _, z := range []*Node{out, mul, y, xc, sq, ae, sq2} {
				c.claimed[z] = true
			}
			rows := out.Shape.Size() / max(n, 1)
			c.fused[out] = &Step{Label: fmt.Sprintf("layernorm [%d×%d]", rows, n), Out: out, Ins: []*Node{x, gammaRoot, betaRoot},
				Kind: &LayerNorm{Rows: rows, N: n, X: x, Gamma: gammaRoot, GammaOff: gammaOff, Beta: betaRoot, BetaOff: betaOff, Eps: float32(eps)}}
			return
		}
	}
}

// ---------------------------------------------------------------- elementwise

// IsElementwise reports whether n is a float32 elementwise op that a fused elementwise loop implements.
func IsElementwise(n *Node) bool {
	if n.Shape.DType != dtypes.Float32 {
		return false
	}
	switch n.Op {
	case backends.OpTypeAdd, backends.OpTypeSub, backends.OpTypeMul, backends.OpTypeDiv, backends.OpTypeMax,
		backends.OpTypeMin, backends.OpTypeNeg, backends.OpTypeExp, backends.OpTypeErf, backends.OpTypeLogistic,
		backends.OpTypeTanh, backends.OpTypeSqrt, backends.OpTypeRsqrt, backends.OpTypeAbs, backends.OpTypeLog:
		return true
	}
	return false
}

// matchElementwise builds one fused loop from root over the tree of single-use float32 elementwise ops of
// the same shape that feed it; every other input is a leaf read through its View (broadcasts and transposes
// become strides).
func (c *compiler) matchElementwise(root *Node) {
	dims := root.Shape.Dimensions
	var leaves []Leaf
	var instrs []Instr
	var labelOps []string
	leafReg := map[*Node]int{}
	var build func(n *Node) int
	build = func(n *Node) int {
		if n != root && !(IsElementwise(n) && c.single(n) && slices.Equal(n.Shape.Dimensions, dims)) {
			if r, ok := leafReg[n]; ok {
				return r
			}
			var l Leaf
			if v, ok := constScalar(n); ok {
				l = Leaf{IsScalar: true, Scalar: float32(v)}
			} else {
				v := c.viewOf(n)
				strides := make([]int, len(dims))
				allZero := true
				for i := range dims {
					if i < len(v.Dims) && v.Dims[i] == dims[i] {
						strides[i] = v.Strides[i]
					}
					if strides[i] != 0 && dims[i] > 1 {
						allZero = false
					}
				}
				l = Leaf{Root: v.Root, Off: v.Off, Strides: strides,
					Contiguous: slices.Equal(strides, RowMajorStrides(dims)) || len(dims) == 0}
				if allZero && len(dims) > 0 {
					l.Contiguous = false
				}
			}
			leaves = append(leaves, l)
			r := -len(leaves) // leaves are negative registers, -1 - index
			leafReg[n] = r
			return r
		}
		c.claimed[n] = true
		a := build(n.Inputs[0])
		b := 0
		if len(n.Inputs) > 1 {
			b = build(n.Inputs[1])
		}
		instrs = append(instrs, Instr{Op: n.Op, Dst: len(instrs), A: a, B: b})
		labelOps = append(labelOps, n.Op.String())
		return len(instrs) - 1
	}
	build(root)
	delete(c.claimed, root)
	var ins []*Node
	for _, l := range leaves {
		if l.Root != nil && !slices.Contains(ins, l.Root) {
			ins = append(ins, l.Root)
		}
	}
	label := fmt.Sprintf("elementwise(%s) %v", joinOps(labelOps), dims)
	c.fused[root] = &Step{Label: label, Out: root, Ins: ins, Kind: &Elementwise{Dims: dims, Leaves: leaves, Instrs: instrs}}
}

func joinOps(ops []string) string {
	s := ""
	for i, o := range ops {
		if i > 0 {
			s += ","
		}
		s += o
	}
	return s
}

// ---------------------------------------------------------------- softmax and concatenation

// softmaxParts recognises graph.Softmax over the last axis ending at Div node probs:
// exp(x - max(x)) / Σ exp(x - max(x)). It returns x and the nodes inside the pattern.
func (c *compiler) softmaxParts(probs *Node) (*Node, []*Node) {
	if probs.Op != backends.OpTypeDiv || probs.Shape.DType != dtypes.Float32 || probs.Shape.Rank() == 0 || !c.unclaimed(probs) {
		return nil, nil
	}
	last := probs.Shape.Rank() - 1
	ex, den := probs.Inputs[0], strip(probs.Inputs[1])
	if ex.Op != backends.OpTypeExp || ex.Uses != 2 || den.Op != backends.OpTypeReduceSum || den.Inputs[0] != ex ||
		!slices.Equal(den.Axes, []int{last}) || !c.single(den) || !c.unclaimed(ex) {
		return nil, nil
	}
	sub := ex.Inputs[0]
	if sub.Op != backends.OpTypeSub || !c.single(sub) {
		return nil, nil
	}
	x, mx := sub.Inputs[0], strip(sub.Inputs[1])
	if mx.Op != backends.OpTypeReduceMax || mx.Inputs[0] != x || !slices.Equal(mx.Axes, []int{last}) || !c.single(mx) {
		return nil, nil
	}
	return x, []*Node{probs, ex, den, sub, mx}
}

// matchSoftmax claims a softmax over the last axis as one Softmax step.
func (c *compiler) matchSoftmax(probs *Node) {
	x, parts := c.softmaxParts(probs)
	if x == nil {
		return
	}
	for _, p := range parts {
		c.claimed[p] = true
	}
	n := probs.Shape.Dimensions[probs.Shape.Rank()-1]
	rows := probs.Shape.Size() / max(n, 1)
	c.fused[probs] = &Step{Label: fmt.Sprintf("softmax [%d×%d]", rows, n), Out: probs, Ins: []*Node{x}, Kind: &Softmax{Rows: rows, N: n, X: x}}
}

// matchConcat writes each float32 operand of a Concatenate straight into its block of the output, reading
// it through its View (slices and transposes of other values need no copy of their own).
func (c *compiler) matchConcat(n *Node) {
	if n.Shape.DType != dtypes.Float32 || !c.unclaimed(n) {
		return
	}
	axis := n.Axes[0]
	outStrides := RowMajorStrides(n.Shape.Dimensions)
	type part struct {
		v   View
		off int
	}
	var parts []part
	var ins []*Node
	off := 0
	for _, in := range n.Inputs {
		v := c.viewOf(in)
		if v.Root.Shape.DType != dtypes.Float32 {
			return
		}
		parts = append(parts, part{v: v, off: off * outStrides[axis]})
		off += in.Shape.Dimensions[axis]
		if !slices.Contains(ins, v.Root) {
			ins = append(ins, v.Root)
		}
	}
	concat := &Concat{}
	for _, p := range parts {
		concat.Parts = append(concat.Parts, Copy{Src: p.v, DstOff: p.off, DstStrides: outStrides})
	}
	c.fused[n] = &Step{Label: fmt.Sprintf("concat %v", n.Shape.Dimensions), Out: n, Ins: ins, Kind: concat}
}
