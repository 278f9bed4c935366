package backend

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"weak"

	"github.com/castvideo/castgo/backend/kernels"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// fuse runs the pattern matchers, recording fused steps in c.fused (by the node each produces) and the
// nodes they compute internally in c.claimed. Nodes no fused step claims fall back to generic steps.
func (c *compiler) fuse() {
	c.consumers = map[*Node][]*Node{}
	for _, n := range c.b.nodes {
		if c.live[n.ID] {
			for _, in := range n.Inputs {
				if !slices.Contains(c.consumers[in], n) {
					c.consumers[in] = append(c.consumers[in], n)
				}
			}
		}
	}
	c.fuseTrain()
	for _, n := range c.b.nodes {
		if c.live[n.ID] && n.Op == backends.OpTypeDotGeneral {
			c.matchAttention(n)
		}
	}
	for _, n := range c.b.nodes {
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
	for _, n := range c.b.nodes {
		if c.live[n.ID] && n.Op == backends.OpTypeDotGeneral && !c.claimed[n] {
			c.matchGemm(n)
		}
	}
	c.fuseTrainDots()
	for i := len(c.b.nodes) - 1; i >= 0; i-- {
		n := c.b.nodes[i]
		if c.live[n.ID] && c.isElementwise(n) && !c.claimed[n] && c.fused[n] == nil {
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

func (c *compiler) free(n *Node) bool { return !c.claimed[n] && c.fused[n] == nil }

// single reports whether n is used exactly once and not yet part of a fused step.
func (c *compiler) single(n *Node) bool { return n.Uses == 1 && c.free(n) }

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

// packed returns the packed form of a weight, packing it on first use per weight buffer (shared by every
// executable of this backend: the forward graph of each batch size, the taps graph).
func (b *Backend) packed(w, scale *Buffer, transposed bool, k, n int) *kernels.PackedB {
	key := packKey{buf: weak.Make(w), transposed: transposed}
	ws := weak.Make(scale)
	fp := fingerprint(w, scale)
	b.packMu.Lock()
	defer b.packMu.Unlock()
	if e := b.packs[key]; e != nil && e.p.K == k && e.p.N == n && e.scale == ws && e.print == fp {
		return e.p
	}
	var p *kernels.PackedB
	if scale != nil {
		p = kernels.PackBInt8(w.Flat.([]int8), scale.Flat.([]float32), k, n)
	} else if transposed {
		p = kernels.PackB(nil, w.Flat.([]float32), k, k, n, true)
	} else {
		p = kernels.PackB(nil, w.Flat.([]float32), n, k, n, false)
	}
	if _, had := b.packs[key]; !had {
		runtime.AddCleanup(w, func(key packKey) {
			b.packMu.Lock()
			delete(b.packs, key)
			b.packMu.Unlock()
		}, key)
	}
	b.packs[key] = &packEntry{p: p, scale: ws, print: fp}
	return p
}

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
		act           kernels.Activation
		postScale     float32
		parts         []string
	)
	cur := d
	claim := []*Node{d}
	next := func(x *Node) *Node {
		cs := c.consumers[x]
		if x.Uses != 1 || len(cs) != 1 || !c.free(cs[0]) {
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
		if a == kernels.ActGELU {
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
	st := &step{label: fmt.Sprintf("%s [%d×%d×%d]", kind, m, k, n), out: out, ins: ins}
	st.gpu = gpuGemm{m: m, k: k, n: n, lhs: lhs, w: ws.w, scale: ws.scale, transposed: ws.transposed,
		bias: biasRoot, biasOff: biasOff, res: res, act: act, postScale: postScale}
	st.run = func(e *env) any {
		var scaleBuf *Buffer
		if ws.scale != nil {
			scaleBuf = e.Inputs[ws.scale.Param]
		}
		pk := e.ex.backend.packed(e.Inputs[ws.w.Param], scaleBuf, ws.transposed, k, n)
		ep := kernels.Epilogue{Act: act, PostScale: postScale}
		if biasRoot != nil {
			ep.Bias = e.f32(biasRoot)[biasOff : biasOff+n]
		}
		if res != nil {
			ep.Residual, ep.LdRes = e.f32(res), n
		}
		dst := e.allocF32(out.Shape.Size())
		kernels.Gemm(m, e.f32(lhs), k, pk, dst, n, &ep)
		return dst
	}
	c.fused[out] = st
}

// matchAct recognises GELU 0.5·x·(1+erf(x/√2)) or QuickGELU x·σ(1.702·x) applied to x; it returns the
// activation's output node and the nodes it spans.
func (c *compiler) matchAct(x *Node) (*Node, []*Node, kernels.Activation) {
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
		if n.Uses != 1 || len(c.consumers[n]) != 1 || !c.free(c.consumers[n][0]) {
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
			return g, []*Node{half, inner, erf, one, g}, kernels.ActGELU
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
			return half, []*Node{inner, lg, half}, kernels.ActQuickGELU
		}
	}
	return nil, nil, 0
}

// ---------------------------------------------------------------- attention

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
	st := &step{label: fmt.Sprintf("attention [b=%d h=%d %d×%d hd=%d]", b, h, lq, lk, hd), out: out,
		ins: []*Node{qv.Root, kv.Root, vv.Root}}
	st.gpu = gpuAttention{b: b, h: h, lq: lq, lk: lk, hd: hd, scale: scale, q: qv, k: kv, v: vv, out: outS}
	st.run = func(e *env) any {
		dst := e.allocF32(out.Shape.Size())
		a := kernels.Attention{Batch: b, Heads: h, Lq: lq, Lk: lk, HeadDim: hd, Scale: scale,
			Q:   kernels.Strided{Data: e.f32(qv.Root)[qv.Off:], BatchStride: qv.Strides[0], RowStride: qv.Strides[1], HeadStride: qv.Strides[2]},
			K:   kernels.Strided{Data: e.f32(kv.Root)[kv.Off:], BatchStride: kv.Strides[0], RowStride: kv.Strides[1], HeadStride: kv.Strides[2]},
			V:   kernels.Strided{Data: e.f32(vv.Root)[vv.Off:], BatchStride: vv.Strides[0], RowStride: vv.Strides[1], HeadStride: vv.Strides[2]},
			Out: kernels.Strided{Data: dst, BatchStride: outS.bs, RowStride: outS.rs, HeadStride: outS.hs}}
		a.Run()
		return dst
	}
	c.fused[out] = st
}

// attentionOutput is where an attention writes its output pv ([b, h, lq, hd]): into pv, or straight into pv's
// only consumer when that is the transpose to [b, lq, h, hd] (heads back beside each other), with the strides
// of the chosen layout.
func (c *compiler) attentionOutput(pv *Node, h, lq, hd int) (*Node, kernelsStrided) {
	if cs := c.consumers[pv]; pv.Uses == 1 && len(cs) == 1 && cs[0].Op == backends.OpTypeTranspose &&
		slices.Equal(cs[0].Axes, []int{0, 2, 1, 3}) && c.free(cs[0]) {
		return cs[0], kernelsStrided{bs: lq * h * hd, rs: h * hd, hs: hd}
	}
	return pv, kernelsStrided{bs: h * lq * hd, rs: hd, hs: lq * hd}
}

type kernelsStrided struct{ bs, rs, hs int }

// ---------------------------------------------------------------- layer norm

// matchLayerNorm recognises cast's layerNorm: (x-μ)/√(σ²+eps)·γ + β over the last axis.
func (c *compiler) matchLayerNorm(out *Node) {
	if out.Shape.DType != dtypes.Float32 || out.Shape.Rank() == 0 || !c.free(out) {
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
			if xc.Op != backends.OpTypeSub || xc.Uses != 3 || !c.free(xc) || sq.Op != backends.OpTypeSqrt || !c.single(sq) {
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
			if sq2 == nil || sq2.Op != backends.OpTypeMul || sq2.Inputs[0] != xc || sq2.Inputs[1] != xc || !c.free(sq2) {
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
			st := &step{label: fmt.Sprintf("layernorm [%d×%d]", rows, n), out: out, ins: []*Node{x, gammaRoot, betaRoot}}
			st.gpu = gpuLayerNorm{rows: rows, n: n, x: x, gamma: gammaRoot, gammaOff: gammaOff, beta: betaRoot, betaOff: betaOff, eps: float32(eps)}
			st.run = func(e *env) any {
				dst, src := e.allocF32(out.Shape.Size()), e.f32(x)
				gamma, beta := e.f32(gammaRoot)[gammaOff:gammaOff+n], e.f32(betaRoot)[betaOff:betaOff+n]
				kernels.ParallelFor(rows, max(1, 4096/max(n, 1)), func(lo, hi int) {
					kernels.LayerNormRows(dst[lo*n:hi*n], n, src[lo*n:hi*n], n, hi-lo, n, gamma, beta, float32(eps))
				})
				return dst
			}
			c.fused[out] = st
			return
		}
	}
}

// ---------------------------------------------------------------- elementwise

func (c *compiler) isElementwise(n *Node) bool {
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

// ewLeaf is one input of a fused elementwise loop: a strided read of a materialised node, or a scalar.
type ewLeaf struct {
	Root       *Node
	Off        int
	Strides    []int // in the output's dims
	contiguous bool
	isScalar   bool
	scalar     float32
}

// ewInstr computes register dst from registers a (and b) with op.
type ewInstr struct {
	Op        backends.OpType
	dst, a, b int
}

const ewChunk = 256

// matchElementwise builds one fused loop from root over the tree of single-use float32 elementwise ops of
// the same shape that feed it; every other input is a leaf read through its View (broadcasts and transposes
// become strides).
func (c *compiler) matchElementwise(root *Node) {
	dims := root.Shape.Dimensions
	var leaves []ewLeaf
	var instrs []ewInstr
	var labelOps []string
	leafReg := map[*Node]int{}
	var build func(n *Node) int
	build = func(n *Node) int {
		if n != root && !(c.isElementwise(n) && c.single(n) && slices.Equal(n.Shape.Dimensions, dims)) {
			if r, ok := leafReg[n]; ok {
				return r
			}
			var l ewLeaf
			if v, ok := constScalar(n); ok {
				l = ewLeaf{isScalar: true, scalar: float32(v)}
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
				l = ewLeaf{Root: v.Root, Off: v.Off, Strides: strides,
					contiguous: slices.Equal(strides, rowMajorStrides(dims)) || len(dims) == 0}
				if allZero && len(dims) > 0 {
					l.contiguous = false
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
		instrs = append(instrs, ewInstr{Op: n.Op, dst: len(instrs), a: a, b: b})
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
	size := root.Shape.Size()
	label := fmt.Sprintf("elementwise(%s) %v", joinOps(labelOps), dims)
	st := &step{label: label, out: root, ins: ins, gpu: gpuElementwise{Dims: dims, leaves: leaves, instrs: instrs}}
	st.run = func(e *env) any {
		dst := e.allocF32(size)
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
					case l.isScalar:
						lregs[i] = nil
					case l.contiguous:
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
							if l.isScalar {
								return nil, l.scalar, true
							}
							return lregs[-r-1], 0, false
						}
						return regs[r][:cnt], 0, false
					}
					a, as, aScalar := get(in.a)
					if aScalar { // a scalar first operand (rare): materialise it
						a = fill(regs[k][:cnt], as)
						if k == len(instrs)-1 {
							a = fill(make([]float32, cnt), as)
						}
					}
					var b []float32
					var bs float32
					var bScalar bool
					if binaryOps[in.Op] {
						b, bs, bScalar = get(in.b)
					}
					ewApply(in.Op, d, a, b, bs, bScalar)
				}
			}
		})
		return dst
	}
	c.fused[root] = st
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

func ewApply(op backends.OpType, d, a, b []float32, bs float32, bScalar bool) {
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

// ---------------------------------------------------------------- softmax and concatenation

// softmaxParts recognises graph.Softmax over the last axis ending at Div node probs:
// exp(x - max(x)) / Σ exp(x - max(x)). It returns x and the nodes inside the pattern.
func (c *compiler) softmaxParts(probs *Node) (*Node, []*Node) {
	if probs.Op != backends.OpTypeDiv || probs.Shape.DType != dtypes.Float32 || probs.Shape.Rank() == 0 || !c.free(probs) {
		return nil, nil
	}
	last := probs.Shape.Rank() - 1
	ex, den := probs.Inputs[0], strip(probs.Inputs[1])
	if ex.Op != backends.OpTypeExp || ex.Uses != 2 || den.Op != backends.OpTypeReduceSum || den.Inputs[0] != ex ||
		!slices.Equal(den.Axes, []int{last}) || !c.single(den) || !c.free(ex) {
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

// matchSoftmax turns a softmax over the last axis into kernels.SoftmaxRows on a copy of its input.
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
	st := &step{label: fmt.Sprintf("softmax [%d×%d]", rows, n), out: probs, ins: []*Node{x}, gpu: gpuSoftmax{rows: rows, n: n, x: x}}
	st.run = func(e *env) any {
		dst := e.allocF32(probs.Shape.Size())
		copy(dst, e.f32(x))
		kernels.ParallelFor(rows, max(1, 4096/max(n, 1)), func(lo, hi int) {
			kernels.SoftmaxRows(dst[lo*n:hi*n], hi-lo, n, n)
		})
		return dst
	}
	c.fused[probs] = st
}

// matchConcat writes each float32 operand of a Concatenate straight into its block of the output, reading
// it through its View (slices and transposes of other values need no copy of their own).
func (c *compiler) matchConcat(n *Node) {
	if n.Shape.DType != dtypes.Float32 || !c.free(n) {
		return
	}
	axis := n.Axes[0]
	outStrides := rowMajorStrides(n.Shape.Dimensions)
	type part struct {
		v   View
		Off int
	}
	var parts []part
	var ins []*Node
	off := 0
	for _, in := range n.Inputs {
		v := c.viewOf(in)
		if v.Root.Shape.DType != dtypes.Float32 {
			return
		}
		parts = append(parts, part{v: v, Off: off * outStrides[axis]})
		off += in.Shape.Dimensions[axis]
		if !slices.Contains(ins, v.Root) {
			ins = append(ins, v.Root)
		}
	}
	st := &step{label: fmt.Sprintf("concat %v", n.Shape.Dimensions), out: n, ins: ins}
	var gpuParts gpuConcat
	for _, p := range parts {
		gpuParts = append(gpuParts, gpuCopy{src: p.v, dstOff: p.Off, dstStrides: outStrides})
	}
	st.gpu = gpuParts
	st.run = func(e *env) any {
		dst := e.allocF32(n.Shape.Size())
		for _, p := range parts {
			copyStrided2(dst, p.Off, outStrides, e.f32(p.v.Root), p.v.Off, p.v.Strides, p.v.Dims)
		}
		return dst
	}
	c.fused[n] = st
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
