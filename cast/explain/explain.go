// Package explain computes maps of what a CAST model looked at in a clip, one Grid×Grid map per frame the
// model saw:
//
//   - attention rollouts (Abnar & Zuidema 2020): each attention averaged over its heads, mixed half and half
//     with the identity (the residual path), and multiplied through the blocks, from the tokens the head
//     pools back to the patch tokens of the input. MethodCAST follows both experts' self-attention and
//     B-CAST's cross-attention in both directions; MethodSpatial and MethodTemporal follow one expert's own
//     self-attention only.
//   - gradient saliencies of the top class's logit through the backend's autodiff: MethodGradInput
//     (gradient × input on the patch tokens of both experts' embeddings) and MethodGradCAM (Grad-CAM on the
//     tokens entering the last block).
//
// The maps are computed by graphs of their own over a loaded model's weights (infer.Model.NewExec), from the
// attention probabilities and embeddings that cast.Forward taps: a forward graph for the rollouts, and a
// forward and backward graph when a gradient method is asked for.
package explain

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// The methods, by the name the CLI, the JSON and the WASM API use.
const (
	// MethodCAST is the attention rollout through both experts and B-CAST: relevance flows from the
	// pooled outputs (the CLIP class tokens and the mean of the VideoMAE tokens, half each) back through
	// every block's self-attention and cross-attention to the input patches of both streams. A frame's map
	// adds the CLIP patches of its pair of frames (the spatial expert sees the odd frame) and the VideoMAE
	// tubelet that covers it.
	MethodCAST = "cast-rollout"
	// MethodSpatial is the rollout of the spatial (CLIP) expert's self-attention alone, from each frame's
	// class token to its patches; it has a map for the frames that expert sees (the odd ones) only.
	MethodSpatial = "spatial-rollout"
	// MethodTemporal is the rollout of the temporal (VideoMAE) expert's joint space-time self-attention
	// alone, from the mean of its output tokens to its input tubelets; both frames of a tubelet share its map.
	MethodTemporal = "temporal-rollout"
	// MethodGradInput is gradient × input: Σ over channels of ∂(top logit)/∂token · token, on the patch
	// tokens of both experts' embeddings (after CLIP's ln_pre, after VideoMAE's position table), a frame's
	// map adding its CLIP frame and its tubelet like MethodCAST. Positive values support the top class.
	MethodGradInput = "gradient-x-input"
	// MethodGradCAM is Grad-CAM on the tokens entering the last block: each stream's tokens weighted by the
	// channel means of the top logit's gradient (per frame for CLIP), summed over channels, negatives
	// clipped to zero; a frame's map adds both streams like MethodCAST.
	MethodGradCAM = "grad-cam"
)

// Methods lists every method in the default order.
var Methods = []string{MethodCAST, MethodSpatial, MethodTemporal, MethodGradInput, MethodGradCAM}

// ParseMethods checks a list of method names (comma-separated entries allowed); empty means all.
func ParseMethods(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		for _, m := range strings.Split(n, ",") {
			m = strings.TrimSpace(m)
			if m == "" {
				continue
			}
			if !slices.Contains(Methods, m) {
				return nil, fmt.Errorf("unknown method %q: want one of %s", m, strings.Join(Methods, ", "))
			}
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	if len(out) == 0 {
		return slices.Clone(Methods), nil
	}
	return out, nil
}

// Explainer computes the maps of one loaded model. It is safe for concurrent use; runs are serialised.
type Explainer struct {
	cfg cast.Config
	// attn computes the logits and attention probabilities only (the rollouts); full adds the gradients.
	// Each compiles on its first run.
	attn, full *context.Exec
	mu         sync.Mutex
}

// New compiles the maps' graph over m's weights. Close it before closing m.
func New(m *infer.Model) (*Explainer, error) {
	cfg := m.Config
	if cfg.UsesSpatial() && cfg.UsesTemporal() && cfg.SpatialFrames() != cfg.TemporalSlots() {
		return nil, fmt.Errorf("explain: %d CLIP frames but %d VideoMAE tubelets", cfg.SpatialFrames(), cfg.TemporalSlots())
	}
	e := &Explainer{cfg: cfg}
	var err error
	if e.attn, err = m.NewExec(func(ctx *context.Context, x *Node) []*Node { return e.graph(ctx, x, false) }); err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	if e.full, err = m.NewExec(func(ctx *context.Context, x *Node) []*Node { return e.graph(ctx, x, true) }); err != nil {
		e.attn.Finalize()
		return nil, fmt.Errorf("explain: %w", err)
	}
	return e, nil
}

// Close releases the compiled graph.
func (e *Explainer) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.full != nil {
		e.attn.Finalize()
		e.full.Finalize()
		e.attn, e.full = nil, nil
	}
}

// graph builds the forward pass of one clip x [1, 3, T, H, W] with its taps and returns, in order: the
// logits of each head; per block, the head-averaged probabilities of the attentions the model has
// (CLIP [Ts, N+1, N+1], VideoMAE [1, Tt·N, Tt·N], T2S [N, Ts, Tt], S2T [Tt, N, N]); then per stream
// (CLIP, VideoMAE), when withGrad is set, gradient × input on the embeddings ([Ts, N+1], [1, Tt·N]) and the
// tokens entering the last block with their gradients ([Ts, N+1, D] twice, [1, Tt·N, D] twice).
func (e *Explainer) graph(ctx *context.Context, x *Node, withGrad bool) []*Node {
	cfg := e.cfg
	taps := cast.Taps{}
	logits := cast.Forward(ctx, cfg, x, taps)
	outs := slices.Clone(logits)
	for i := 0; i < cfg.Depth; i++ {
		for _, name := range e.attentions() {
			probs := taps["blocks."+strconv.Itoa(i)+"."+name+".probs"] // [batch, h, Lq, Lk]
			outs = append(outs, ReduceMean(probs, 1))                  // averaged over heads
		}
	}
	if !withGrad {
		return outs
	}
	// The top class's logit of each head: a one-hot of the maximum, held constant.
	var loss *Node
	for _, l := range logits {
		top := StopGradient(ConvertDType(Equal(l, ReduceAndKeep(l, ReduceMax, -1)), dtypes.Float32))
		s := ReduceAllSum(Mul(l, top))
		if loss == nil {
			loss = s
		} else {
			loss = Add(loss, s)
		}
	}
	var wrt []*Node
	for _, st := range e.streams() {
		wrt = append(wrt, taps[st.embed], e.lastInput(taps, st))
	}
	grads := Gradient(loss, wrt...)
	for k := range e.streams() {
		emb, last := wrt[2*k], wrt[2*k+1]
		outs = append(outs, ReduceSum(Mul(grads[2*k], emb), -1), last, grads[2*k+1])
	}
	return outs
}

// stream names the taps of one expert.
type stream struct {
	embed, out string // the embedding's tap, and the tap suffix of a block's output
}

var (
	clipStream = stream{"spatial_embed_after_ln_pre", "out.s_x"}
	vmaeStream = stream{"temporal_embed_after_pos", "out.t_x"}
)

// streams lists the experts the model has: CLIP first.
func (e *Explainer) streams() []stream {
	var s []stream
	if e.cfg.UsesSpatial() {
		s = append(s, clipStream)
	}
	if e.cfg.UsesTemporal() {
		s = append(s, vmaeStream)
	}
	return s
}

// attentions lists the attention taps of a block, in the order graph returns them.
func (e *Explainer) attentions() []string {
	var a []string
	if e.cfg.UsesSpatial() {
		a = append(a, "clip_attn")
	}
	if e.cfg.UsesTemporal() {
		a = append(a, "attn")
	}
	if e.cfg.UsesBCAST() {
		a = append(a, "t2s_cross", "s2t_cross")
	}
	return a
}

// lastInput is the stream's tokens entering the last block: the previous block's output, or the embedding.
func (e *Explainer) lastInput(taps cast.Taps, st stream) *Node {
	if e.cfg.Depth < 2 {
		return taps[st.embed]
	}
	return taps["blocks."+strconv.Itoa(e.cfg.Depth-2)+"."+st.out]
}

// ClipMaps is the maps of one clip.
type ClipMaps struct {
	// Class is the top class of the first head (the one the gradient maps explain, with the top class of
	// any other head).
	Class int
	// Logits are the model's logits, one slice per head.
	Logits [][]float32
	// Grids maps a method to one map per model frame (T of them): Grid×Grid scores, row-major, or nil
	// for a frame the method has no map of.
	Grids map[string][][]float64
}

// Explain computes the maps of methods (nil: all) for one normalised clip x [3, T, H, W] (C order). Rollouts
// alone run a forward graph; a gradient method runs the forward and backward graph.
func (e *Explainer) Explain(x []float32, methods []string) (res *ClipMaps, err error) {
	cfg := e.cfg
	if n := cfg.InChans * cfg.AllFrames * cfg.ImgSize * cfg.ImgSize; len(x) != n {
		return nil, fmt.Errorf("explain: input has %d values, want 3×%d×%d×%d = %d", len(x), cfg.AllFrames, cfg.ImgSize, cfg.ImgSize, n)
	}
	methods, err = ParseMethods(methods)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.full == nil {
		return nil, fmt.Errorf("explain: the explainer was closed")
	}
	exec := e.attn
	for _, m := range methods {
		if m == MethodGradInput || m == MethodGradCAM {
			exec = e.full
		}
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("explain: %v", r)
		}
	}()
	in := tensors.FromFlatDataAndDimensions(x, 1, cfg.InChans, cfg.AllFrames, cfg.ImgSize, cfg.ImgSize)
	defer in.FinalizeAll()
	outs, err := exec.Exec(in)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	flat := make([][]float32, len(outs))
	for i, o := range outs {
		flat[i] = tensors.MustCopyFlatData[float32](o)
		o.FinalizeAll()
	}
	return e.maps(flat, methods)
}

// maps turns the graph's outputs into the maps of methods.
func (e *Explainer) maps(flat [][]float32, methods []string) (*ClipMaps, error) {
	cfg := e.cfg
	heads := len(cfg.Heads())
	res := &ClipMaps{Logits: flat[:heads], Grids: map[string][][]float64{}}
	res.Class = argmax(flat[0])
	a := newAttn(cfg, flat[heads:heads+cfg.Depth*len(e.attentions())], e.attentions())
	var g *grads
	if rest := flat[heads+cfg.Depth*len(e.attentions()):]; len(rest) > 0 {
		g = newGrads(cfg, rest, e.streams())
	}
	for _, m := range methods {
		var grids [][]float64
		switch m {
		case MethodCAST:
			if !cfg.UsesBCAST() {
				return nil, fmt.Errorf("explain: %s needs both experts and B-CAST; this model has the %s expert only", m, cfg.Experts)
			}
			grids = e.perFrame(a.castRollout())
		case MethodSpatial:
			if !cfg.UsesSpatial() {
				return nil, fmt.Errorf("explain: %s needs the spatial expert", m)
			}
			grids = e.perFrame(a.spatialRollout(), nil)
		case MethodTemporal:
			if !cfg.UsesTemporal() {
				return nil, fmt.Errorf("explain: %s needs the temporal expert", m)
			}
			grids = e.perFrame(nil, a.temporalRollout())
		case MethodGradInput, MethodGradCAM:
			if g == nil {
				return nil, fmt.Errorf("explain: %s needs the gradient graph", m)
			}
			if m == MethodGradInput {
				grids = e.perFrame(g.gradInput())
			} else {
				grids = e.perFrame(g.gradCAM())
			}
		default:
			return nil, fmt.Errorf("explain: unknown method %q", m)
		}
		res.Grids[m] = grids
	}
	return res, nil
}

// perFrame spreads per-CLIP-frame maps s [Ts][N] and per-tubelet maps t [Tt][N] (either may be nil) over
// the model's T frames: CLIP frame i is model frame 2i+1, tubelet i covers frames 2i and 2i+1. A frame with
// both adds them; a frame with neither gets nil.
func (e *Explainer) perFrame(s, t [][]float64) [][]float64 {
	cfg := e.cfg
	out := make([][]float64, cfg.AllFrames)
	for k := range out {
		var grid []float64
		add := func(v []float64) {
			if grid == nil {
				grid = make([]float64, len(v))
			}
			for i, x := range v {
				grid[i] += x
			}
		}
		if s != nil && k%2 == 1 {
			add(s[k/2])
		}
		if t != nil {
			add(t[k/cfg.TubeletSize])
		}
		out[k] = grid
	}
	return out
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
