package cast

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // the graph DSL reads like the spec.
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Taps collects named intermediate tensors during Forward when non-nil, under the goldens' names
// (e.g. "blocks.0.t2s_cross.out"), in this implementation's batch-first layout: the CLIP stream is
// [B·Ts, N+1, ·] (the goldens store it token-major, [N+1, B·Ts, ·]), the VideoMAE stream is [B, Tt·N, ·].
// Each attention's probabilities are tapped too, as "blocks.i.<module>.probs" [batch, heads, Lq, Lk] (module
// clip_attn, attn, t2s_cross or s2t_cross), for the attention maps of package explain.
type Taps map[string]*Node

func (t Taps) put(name string, x *Node) {
	if t != nil {
		t[name] = x
	}
}

// Forward builds CAST's forward pass (CAST.md §1) on a normalised clip x [B, 3, T, H, W] and returns one
// logits tensor per head, in Config.Heads() order: [B, classes], or (noun [B, 300], verb [B, 97]) for EPIC.
// Weights are read from ctx's variables, named like the official state dict (see Param).
// Its three parts, embed, blocks [from, to) and head, are also the stages of a split model (see Stage).
func Forward(ctx *context.Context, cfg Config, x *Node, taps Taps) []*Node {
	s, t := embed(ctx, cfg, x, taps)
	s, t = blocks(ctx, cfg, s, t, 0, cfg.Depth, taps)
	return head(ctx, cfg, s, t, taps)
}

// embed is both experts' embeddings. x [B,3,T,H,W] → s [B·Ts, N+1, D], t [B, Tt·N, D]; the stream of an
// expert the config leaves out is nil.
func embed(ctx *context.Context, cfg Config, x *Node, taps Taps) (s, t *Node) {
	if cfg.UsesSpatial() {
		s = spatialEmbed(ctx, cfg, x) // [B·Ts, N+1, D]
		taps.put("spatial_embed_after_ln_pre", s)
	}
	if cfg.UsesTemporal() {
		t = temporalEmbed(ctx, cfg, x) // [B, Tt·N, D]
		taps.put("temporal_embed_after_pos", t)
	}
	return s, t
}

// blocks runs blocks [from, to) in order. s [B·Ts, N+1, D], t [B, Tt·N, D] → same shapes.
func blocks(ctx *context.Context, cfg Config, s, t *Node, from, to int, taps Taps) (*Node, *Node) {
	for i := from; i < to; i++ {
		s, t = block(ctx.In("blocks").In(strconv.Itoa(i)), cfg, s, t, taps, fmt.Sprintf("blocks.%d.", i))
	}
	return s, t
}

// spatialEmbed is the CLIP embedding: frames 1,3,5,… → 16×16 patches (conv as matmul, no bias) → class token
// in front → learned positions → ln_pre. x [B,3,T,H,W] → [B·Ts, N+1, D].
func spatialEmbed(ctx *context.Context, cfg Config, x *Node) *Node {
	b, c, p, gr, g := x.Shape().Dimensions[0], cfg.InChans, cfg.PatchSize, Grid, x.Graph()
	ts, d := cfg.SpatialFrames(), cfg.EmbedDim
	// x[:, :, 1::2]: split T into (Ts, 2) and keep the odd frame of each pair.
	xs := Reshape(x, b, c, ts, 2, cfg.ImgSize, cfg.ImgSize)
	xs = Squeeze(SliceAxis(xs, 3, AxisElem(1)), 3)                         // [B, C, Ts, H, W]
	xs = Reshape(xs, b, c, ts, gr, p, gr, p)                               // [B, C, Ts, gh, ph, gw, pw]
	xs = TransposeAllDims(xs, 0, 2, 3, 5, 1, 4, 6)                         // [B, Ts, gh, gw, C, ph, pw]
	xs = Reshape(xs, b*ts, gr*gr, c*p*p)                                   // [B·Ts, N, C·p·p]
	w := Param(ctx, g, "clip_conv1.weight", d, c, p, p)                    // [D, C, p, p]
	patches := dot(xs, []int{2}, nil, Reshape(w, d, c*p*p), []int{1}, nil) // [B·Ts, N, D]
	cls := Param(ctx, g, "clip_class_embedding", d)
	cls = BroadcastToDims(Reshape(cls, 1, 1, d), b*ts, 1, d)
	s := Concatenate([]*Node{cls, patches}, 1) // [B·Ts, N+1, D]
	s = addB(s, Param(ctx, g, "clip_positional_embedding", PatchesPerFrame+1, d))
	return layerNorm(ctx.In("clip_ln_pre"), s, 1e-5)
}

// temporalEmbed is the VideoMAE embedding: 2×16×16 tubelets (conv as matmul, with bias) plus the fixed
// sinusoid table. x [B,3,T,H,W] → [B, Tt·N, D], token index t·196 + h·14 + w.
func temporalEmbed(ctx *context.Context, cfg Config, x *Node) *Node {
	b, c, p, gr, g := x.Shape().Dimensions[0], cfg.InChans, cfg.PatchSize, Grid, x.Graph()
	tt, d, k := cfg.TemporalSlots(), cfg.EmbedDim, cfg.TubeletSize
	xt := Reshape(x, b, c, tt, k, gr, p, gr, p)       // [B, C, Tt, k, gh, ph, gw, pw]
	xt = TransposeAllDims(xt, 0, 2, 4, 6, 1, 3, 5, 7) // [B, Tt, gh, gw, C, k, ph, pw]
	xt = Reshape(xt, b, tt*gr*gr, c*k*p*p)
	w := Param(ctx, g, "patch_embed.proj.weight", d, c, k, p, p)
	t := dot(xt, []int{2}, nil, Reshape(w, d, c*k*p*p), []int{1}, nil) // [B, Tt·N, D]
	t = addB(t, Param(ctx, g, "patch_embed.proj.bias", d))
	pos := Const(g, SinusoidTable(tt*PatchesPerFrame, d)) // [Tt·N, D]
	return addB(t, pos)
}

// SinusoidTable is VideoMAE's fixed position table [n, d]: sin(p/10000^(2(j/2)/d)) on even j, cos on odd j,
// computed in float64 and rounded to float32 like the official numpy code.
func SinusoidTable(n, d int) [][]float32 {
	table := make([][]float32, n)
	for p := range table {
		row := make([]float32, d)
		for j := range row {
			angle := float64(p) / math.Pow(10000, float64(2*(j/2))/float64(d))
			if j%2 == 0 {
				row[j] = float32(math.Sin(angle))
			} else {
				row[j] = float32(math.Cos(angle))
			}
		}
		table[p] = row
	}
	return table
}

// block is one CAST block (CAST.md §1.5): per-expert MHSA with adapters, B-CAST in both directions on the
// same inputs, then each expert's MLP with a parallel adapter scaled by 0.5.
// s [B·Ts, N+1, D], t [B, Tt·N, D] → same shapes.
// A single-expert ablation (Config.Experts) runs only its expert's steps; its other stream is nil.
func block(ctx *context.Context, cfg Config, s, t *Node, taps Taps, prefix string) (*Node, *Node) {
	// 1. MHSA + adapter (the adapter's own skip keeps the attention output).
	if s != nil {
		n1 := layerNorm(ctx.In("clip_ln_1"), s, 1e-5)
		a, ap := clipAttention(ctx.In("clip_attn"), cfg, n1)
		sa := adapter(ctx.In("S_Adapter"), a, true)
		s = Add(s, sa)
		taps.put(prefix+"clip_ln_1.out", n1)
		taps.put(prefix+"clip_attn.out", a)
		taps.put(prefix+"clip_attn.probs", ap)
		taps.put(prefix+"S_Adapter.out", sa)
	}
	if t != nil {
		m1 := layerNorm(ctx.In("norm1"), t, 1e-6)
		b, bp := vmaeAttention(ctx.In("attn"), cfg, m1)
		tb := adapter(ctx.In("T_Adapter"), b, true)
		t = Add(t, tb)
		taps.put(prefix+"norm1.out", m1)
		taps.put(prefix+"attn.out", b)
		taps.put(prefix+"attn.probs", bp)
		taps.put(prefix+"T_Adapter.out", tb)
	}

	// 2. B-CAST: both directions read the same bottlenecked n_s, n_t.
	if cfg.UsesBCAST() {
		s, t = bcast(ctx, cfg, s, t, taps, prefix)
	}

	// 3. FFN + parallel adapter scaled by 0.5 (Block.scale, absent from the paper's eq. 5).
	if s != nil {
		n2 := layerNorm(ctx.In("clip_ln_2"), s, 1e-5)
		sm := clipMLP(ctx.In("clip_mlp"), n2)
		sma := adapter(ctx.In("S_MLP_Adapter"), n2, false)
		s = Add(s, Add(sm, MulScalar(sma, 0.5)))
		taps.put(prefix+"clip_ln_2.out", n2)
		taps.put(prefix+"clip_mlp.out", sm)
		taps.put(prefix+"S_MLP_Adapter.out", sma)
		taps.put(prefix+"out.s_x", s)
	}
	if t != nil {
		m2 := layerNorm(ctx.In("norm2"), t, 1e-6)
		tm := vmaeMLP(ctx.In("mlp"), m2)
		tma := adapter(ctx.In("T_MLP_Adapter"), m2, false)
		t = Add(t, Add(tm, MulScalar(tma, 0.5)))
		taps.put(prefix+"norm2.out", m2)
		taps.put(prefix+"mlp.out", tm)
		taps.put(prefix+"T_MLP_Adapter.out", tma)
		taps.put(prefix+"out.t_x", t)
	}
	return s, t
}

// bcast is B-CAST (CAST.md §1.4): bottleneck both streams to width d, exchange information with T2S and
// S2T (both reading the same n_s, n_t), and project back up, as residuals. s [B·Ts, N+1, D], t [B, Tt·N, D].
func bcast(ctx *context.Context, cfg Config, s, t *Node, taps Taps, prefix string) (*Node, *Node) {
	ns := layerNorm(ctx.In("ln_s_cross"), linear(ctx.In("cross_s_down"), s), 1e-6) // [B·Ts, N+1, d]
	nt := layerNorm(ctx.In("ln_t_cross"), linear(ctx.In("cross_t_down"), t), 1e-6) // [B, Tt·N, d]
	t2s, t2sp := crossT2S(ctx.In("t2s_cross"), cfg, ns, nt)
	s2t, s2tp := crossS2T(ctx.In("s2t_cross"), cfg, ns, nt)
	sUp := linear(ctx.In("cross_s_up"), gelu(t2s))
	tUp := linear(ctx.In("cross_t_up"), gelu(s2t))
	s = Add(s, sUp)
	t = Add(t, tUp)
	taps.put(prefix+"ln_s_cross.out", ns)
	taps.put(prefix+"ln_t_cross.out", nt)
	taps.put(prefix+"t2s_cross.out", t2s)
	taps.put(prefix+"s2t_cross.out", s2t)
	taps.put(prefix+"t2s_cross.probs", t2sp)
	taps.put(prefix+"s2t_cross.probs", s2tp)
	taps.put(prefix+"cross_s_up.out", sUp)
	taps.put(prefix+"cross_t_up.out", tUp)
	return s, t
}

// clipAttention is CLIP's nn.MultiheadAttention within each frame: fused in_proj (q, k, v rows), 1/√hd scale,
// out_proj. x [B·Ts, N+1, D] → [B·Ts, N+1, D], and the attention probabilities [B·Ts, h, N+1, N+1].
func clipAttention(ctx *context.Context, cfg Config, x *Node) (*Node, *Node) {
	d, g := cfg.EmbedDim, x.Graph()
	qkv := dot(x, []int{2}, nil, Param(ctx, g, "in_proj_weight", 3*d, d), []int{1}, nil)
	qkv = addB(qkv, Param(ctx, g, "in_proj_bias", 3*d)) // [B·Ts, N+1, 3D]
	o, probs := selfAttention(qkv, cfg.NumHeads)
	return linear(ctx.In("out_proj"), o), probs
}

// vmaeAttention is VideoMAE's joint space-time attention over all Tt·N tokens; the qkv bias is
// (q_bias, 0, v_bias). x [B, Tt·N, D] → [B, Tt·N, D], and the probabilities [B, h, Tt·N, Tt·N].
func vmaeAttention(ctx *context.Context, cfg Config, x *Node) (*Node, *Node) {
	d, g := cfg.EmbedDim, x.Graph()
	qkv := dot(x, []int{2}, nil, Param(ctx, g, "qkv.weight", 3*d, d), []int{1}, nil)
	qb, vb := Param(ctx, g, "q_bias", d), Param(ctx, g, "v_bias", d)
	qkv = addB(qkv, Concatenate([]*Node{qb, ZerosLike(qb), vb}, 0)) // [B, Tt·N, 3D]
	o, probs := selfAttention(qkv, cfg.NumHeads)
	return linear(ctx.In("proj"), o), probs
}

// selfAttention splits fused qkv [batch, L, 3·h·hd] (q rows, then k, then v; heads contiguous) and returns
// softmax(q·kᵀ/√hd)·v merged back to [batch, L, h·hd], with the probabilities [batch, h, L, L].
func selfAttention(qkv *Node, heads int) (*Node, *Node) {
	dims := qkv.Shape().Dimensions
	batch, l, hd := dims[0], dims[1], dims[2]/(3*heads)
	qkv = Reshape(qkv, batch, l, 3, heads, hd)
	q := Squeeze(sliceRange(qkv, 2, 0, 1), 2) // [batch, L, h, hd]
	k := Squeeze(sliceRange(qkv, 2, 1, 2), 2)
	v := Squeeze(sliceRange(qkv, 2, 2, 3), 2)
	return attention(q, k, v)
}

// attention is scaled dot-product attention. q [batch, Lq, h, hd], k and v [batch, Lk, h, hd] →
// [batch, Lq, h·hd], with the 1/√hd scale applied to q as the official code does. It also returns the
// attention probabilities [batch, h, Lq, Lk] (for Taps).
func attention(q, k, v *Node) (*Node, *Node) {
	dims := q.Shape().Dimensions
	batch, lq, h, hd := dims[0], dims[1], dims[2], dims[3]
	q = MulScalar(q, 1/math.Sqrt(float64(hd)))
	// scores[b, h, i, j] = Σ_d q[b,i,h,d]·k[b,j,h,d]
	scores := dot(q, []int{3}, []int{0, 2}, k, []int{3}, []int{0, 2}) // [batch, h, Lq, Lk]
	probs := Softmax(scores, -1)
	o := dot(probs, []int{3}, []int{0, 1}, v, []int{1}, []int{0, 2}) // [batch, h, Lq, hd]
	o = TransposeAllDims(o, 0, 2, 1, 3)                              // [batch, Lq, h, hd]
	return Reshape(o, batch, lq, h*hd), probs
}

// crossT2S is B-CAST's temporal-to-spatial cross-attention (CAST.md §1.4): CLIP patch tokens query the
// VideoMAE tokens at the same spatial position along time; the CLS row passes through untouched.
// ns [B·Ts, N+1, d], nt [B, Tt·N, d] → [B·Ts, N+1, d], and the probabilities [B·N, h, Ts, Tt].
func crossT2S(ctx *context.Context, cfg Config, ns, nt *Node) (*Node, *Node) {
	b, ts, tt, n, d := nt.Shape().Dimensions[0], cfg.SpatialFrames(), cfg.TemporalSlots(), PatchesPerFrame, cfg.CrossDim()
	g := ns.Graph()
	cls := sliceRange(ns, 1, 0, 1)                         // [B·Ts, 1, d]
	pat := Reshape(sliceRange(ns, 1, 1, n+1), b, ts, n, d) // [B, Ts, N, d]
	pat = TransposeAllDims(pat, 0, 2, 1, 3)                // [B, N, Ts, d]
	pat = addB(pat, Param(ctx, g, "clip_time_pos", ts, d))
	tk := TransposeAllDims(Reshape(nt, b, tt, n, d), 0, 2, 1, 3) // [B, N, Tt, d]
	tk = addB(tk, Param(ctx, g, "vmae_time_pos", tt, d))
	pat, tk = Reshape(pat, b*n, ts, d), Reshape(tk, b*n, tt, d)
	o, probs := crossAttention(ctx, cfg, "t2s", pat, tk) // [B·N, Ts, d]
	o = Reshape(linear(ctx.In("t2s_proj"), o), b, n, ts, d)
	o = Reshape(TransposeAllDims(o, 0, 2, 1, 3), b*ts, n, d) // [B·Ts, N, d]
	return Concatenate([]*Node{cls, o}, 1), probs
}

// crossS2T is B-CAST's spatial-to-temporal cross-attention: each VideoMAE token queries the CLIP patch tokens
// of the matching frame (CLS excluded). ns [B·Ts, N+1, d], nt [B, Tt·N, d] → [B, Tt·N, d], and the
// probabilities [B·Tt, h, N, N].
// The official output projection is also named t2s_proj.
func crossS2T(ctx *context.Context, cfg Config, ns, nt *Node) (*Node, *Node) {
	b, tt, n, d := nt.Shape().Dimensions[0], cfg.TemporalSlots(), PatchesPerFrame, cfg.CrossDim()
	g := ns.Graph()
	pat := sliceRange(ns, 1, 1, n+1) // [B·Ts, N, d]
	pat = addB(pat, Param(ctx, g, "clip_space_pos", n, d))
	tq := addB(Reshape(nt, b*tt, n, d), Param(ctx, g, "vmae_space_pos", n, d)) // [B·Tt, N, d]
	o, probs := crossAttention(ctx, cfg, "s2t", tq, pat)                       // [B·Tt, N, d]
	return Reshape(linear(ctx.In("t2s_proj"), o), b, tt*n, d), probs
}

// crossAttention projects queries from xq and fused keys/values (K rows, then V rows) from xkv with the
// B-CAST projections named <kind>_q / <kind>_kv (separate bias parameters), and attends over xkv's axis 1.
// xq [batch, Lq, d], xkv [batch, Lk, d] → [batch, Lq, d], and the probabilities [batch, h, Lq, Lk].
func crossAttention(ctx *context.Context, cfg Config, kind string, xq, xkv *Node) (*Node, *Node) {
	d, heads := cfg.CrossDim(), cfg.NumHeads
	hd, g := d/heads, xq.Graph()
	batch, lq, lk := xq.Shape().Dimensions[0], xq.Shape().Dimensions[1], xkv.Shape().Dimensions[1]
	q := dot(xq, []int{2}, nil, Param(ctx, g, kind+"_q.weight", d, d), []int{1}, nil)
	q = Reshape(addB(q, Param(ctx, g, kind+"_q_bias", d)), batch, lq, heads, hd)
	kv := dot(xkv, []int{2}, nil, Param(ctx, g, kind+"_kv.weight", 2*d, d), []int{1}, nil)
	kv = Reshape(addB(kv, Param(ctx, g, kind+"_kv_bias", 2*d)), batch, lk, 2, heads, hd)
	k := Squeeze(sliceRange(kv, 2, 0, 1), 2)
	v := Squeeze(sliceRange(kv, 2, 1, 2), 2)
	return attention(q, k, v)
}

// adapter is the AIM bottleneck adapter D_fc2(GELU(D_fc1(x))), plus x when skip is set.
func adapter(ctx *context.Context, x *Node, skip bool) *Node {
	y := linear(ctx.In("D_fc2"), gelu(linear(ctx.In("D_fc1"), x)))
	if skip {
		return Add(x, y)
	}
	return y
}

// clipMLP is c_proj(QuickGELU(c_fc(x))).
func clipMLP(ctx *context.Context, x *Node) *Node {
	h := linear(ctx.In("c_fc"), x)
	h = Mul(h, Sigmoid(MulScalar(h, 1.702)))
	return linear(ctx.In("c_proj"), h)
}

// vmaeMLP is fc2(GELU(fc1(x))) with the exact erf GELU.
func vmaeMLP(ctx *context.Context, x *Node) *Node {
	return linear(ctx.In("fc2"), gelu(linear(ctx.In("fc1"), x)))
}

// head pools both streams and applies the classifier(s) (CAST.md §1.6). s [B·Ts, N+1, D], t [B, Tt·N, D].
func head(ctx *context.Context, cfg Config, s, t *Node, taps Taps) []*Node {
	d := cfg.EmbedDim
	var sFeat, tFeat, na, va *Node
	if s != nil {
		b := s.Shape().Dimensions[0] / cfg.SpatialFrames()
		cls := Reshape(sliceRange(s, 1, 0, 1), b, cfg.SpatialFrames(), d)   // [B, Ts, D]
		sFeat = layerNorm(ctx.In("clip_ln_post"), ReduceMean(cls, 1), 1e-5) // [B, D]
		taps.put("spatial_feature_after_ln_post", sFeat)
	}
	if t != nil {
		tFeat = layerNorm(ctx.In("vmae_fc_norm"), ReduceMean(t, 1), 1e-6) // [B, D]
		taps.put("temporal_feature_after_fc_norm", tFeat)
	}
	if cfg.Composition {
		return []*Node{linear(ctx.In("head_noun"), sFeat), linear(ctx.In("head_verb"), tFeat)}
	}
	var sum *Node
	if sFeat != nil {
		na = adapter(ctx.In("noun_last_Adapter"), sFeat, false)
		taps.put("noun_last_Adapter.out", na)
		sum = na
	}
	if tFeat != nil {
		va = adapter(ctx.In("verb_last_Adapter"), tFeat, false)
		taps.put("verb_last_Adapter.out", va)
		if sum == nil {
			sum = va
		} else {
			sum = Add(na, va)
		}
	}
	return []*Node{linear(ctx.In("head"), sum)}
}

// linear is PyTorch's Linear: x·Wᵀ + b with W [out, in] read from "weight" and "bias" in ctx's scope.
// x [..., in] → [..., out].
func linear(ctx *context.Context, x *Node) *Node {
	g := x.Graph()
	w := Param(ctx, g, "weight")
	y := dot(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
	return addB(y, Param(ctx, g, "bias"))
}

// layerNorm normalises the last axis: (x-μ)/√(σ²+eps)·γ + β, with γ and β from "weight" and "bias".
// It divides by Sqrt rather than multiplying by Rsqrt so that it is differentiable on every backend.
func layerNorm(ctx *context.Context, x *Node, eps float64) *Node {
	mean := ReduceAndKeep(x, ReduceMean, -1)
	xc := Sub(x, mean)
	variance := ReduceAndKeep(Square(xc), ReduceMean, -1)
	y := Div(xc, Sqrt(AddScalar(variance, eps)))
	g := x.Graph()
	return addB(mulB(y, Param(ctx, g, "weight")), Param(ctx, g, "bias"))
}

// gelu is the exact GELU x·Φ(x) = 0.5·x·(1+erf(x/√2)) of nn.GELU().
func gelu(x *Node) *Node {
	return Mul(MulScalar(x, 0.5), OnePlus(Erf(MulScalar(x, 1/math.Sqrt2))))
}

// Param returns the value of the parameter `name` in ctx's scope as float32. A parameter stored as int8 with
// a per-output-channel scale (variable name+ScaleSuffix) is dequantized inside the graph. Dots in name
// descend into sub-scopes, so a state-dict key maps onto one scope path and one variable. When dims are
// given, the parameter's shape is checked against them.
func Param(ctx *context.Context, g *Graph, name string, dims ...int) *Node {
	for i := strings.IndexByte(name, '.'); i >= 0; i = strings.IndexByte(name, '.') {
		ctx, name = ctx.In(name[:i]), name[i+1:] // "qkv.weight" is "weight" in scope "qkv"
	}
	v := ctx.GetVariableByScopeAndName(ctx.Scope(), name)
	if v == nil {
		panic(fmt.Errorf("cast: missing weight %q", stateDictName(ctx.Scope(), name)))
	}
	x := v.ValueGraph(g)
	if v.DType() == dtypes.Int8 {
		sv := ctx.GetVariableByScopeAndName(ctx.Scope(), name+ScaleSuffix)
		if sv == nil {
			panic(fmt.Errorf("cast: int8 weight %q has no scale", stateDictName(ctx.Scope(), name)))
		}
		scale := sv.ValueGraph(g) // [out]
		bcast := make([]int, x.Rank())
		for i := range bcast {
			bcast[i] = 1
		}
		bcast[0] = scale.Shape().Dimensions[0]
		x = Mul(ConvertDType(x, dtypes.Float32), Reshape(scale, bcast...))
	}
	if len(dims) > 0 && !slices.Equal(x.Shape().Dimensions, dims) {
		panic(fmt.Errorf("cast: weight %q has shape %v, the config needs %v", stateDictName(ctx.Scope(), name), x.Shape().Dimensions, dims))
	}
	return x
}

// ScaleSuffix names the per-output-channel scale variable that accompanies an int8 weight.
const ScaleSuffix = "_int8_scale"

// stateDictName turns a context scope and variable name back into the official key.
func stateDictName(scope, name string) string {
	scope = strings.Trim(scope, context.ScopeSeparator)
	if scope == "" {
		return name
	}
	return strings.ReplaceAll(scope, context.ScopeSeparator, ".") + "." + name
}

// addB adds v, whose shape is a suffix of x's, broadcasting it over x's leading axes.
func addB(x, v *Node) *Node { return Add(x, withLeadingAxes(x, v)) }

// mulB multiplies x by v, whose shape is a suffix of x's, broadcasting it over x's leading axes.
func mulB(x, v *Node) *Node { return Mul(x, withLeadingAxes(x, v)) }

// withLeadingAxes gives v leading unit axes up to x's rank.
func withLeadingAxes(x, v *Node) *Node {
	if extra := x.Rank() - v.Rank(); extra > 0 {
		axes := make([]int, extra)
		for i := range axes {
			axes[i] = i
		}
		return ExpandAxes(v, axes...)
	}
	return v
}

// sliceRange returns x[..., start:end, ...] along axis. It gathers instead of slicing because Slice's
// gradient (Pad) is not implemented by the pure-Go backend (gomlx v0.26.0), and this same graph is trained
// there; Gather's gradient is a ScatterSum, which is.
func sliceRange(x *Node, axis, start, end int) *Node {
	rank := x.Rank()
	perm := make([]int, 0, rank) // axis first, then the others in order
	perm = append(perm, axis)
	for i := 0; i < rank; i++ {
		if i != axis {
			perm = append(perm, i)
		}
	}
	inv := make([]int, rank)
	for i, p := range perm {
		inv[p] = i
	}
	xt := x
	if axis != 0 {
		xt = TransposeAllDims(x, perm...)
	}
	idx := make([][]int32, end-start)
	for i := range idx {
		idx[i] = []int32{int32(start + i)}
	}
	y := Gather(xt, Const(x.Graph(), idx), true) // [end-start, other axes...]
	if axis != 0 {
		y = TransposeAllDims(y, inv...)
	}
	return y
}
