package explain

import (
	"github.com/castvideo/castgo/cast"
)

// attn holds the head-averaged attention probabilities of every block, flat in C order.
type attn struct {
	ts, tt, n int
	clip      [][]float32 // per block [Ts, N+1, N+1]: CLIP self-attention within each frame
	vmae      [][]float32 // per block [Tt·N, Tt·N]: VideoMAE joint space-time self-attention
	t2s       [][]float32 // per block [N, Ts, Tt]: CLIP patch (f, p) attends VideoMAE tokens (τ, p)
	s2t       [][]float32 // per block [Tt, N, N]: VideoMAE token (τ, p) attends CLIP patches (τ, q)
}

func newAttn(cfg cast.Config, flat [][]float32, names []string) *attn {
	a := &attn{ts: cfg.SpatialFrames(), tt: cfg.TemporalSlots(), n: cast.PatchesPerFrame}
	for i, f := range flat {
		switch names[i%len(names)] {
		case "clip_attn":
			a.clip = append(a.clip, f)
		case "attn":
			a.vmae = append(a.vmae, f)
		case "t2s_cross":
			a.t2s = append(a.t2s, f)
		case "s2t_cross":
			a.s2t = append(a.s2t, f)
		}
	}
	return a
}

// selfStep propagates relevance v over l tokens back through one residual attention block: the tokens'
// states after it are ½·x + ½·A·x, so the relevance of the states before it is ½·v + ½·vA.
func selfStep(v []float64, a []float32, l int) []float64 {
	out := make([]float64, l)
	for i, vi := range v {
		out[i] += 0.5 * vi
		if vi == 0 {
			continue
		}
		row := a[i*l : (i+1)*l]
		for j, p := range row {
			out[j] += 0.5 * vi * float64(p)
		}
	}
	return out
}

// spatialStep propagates the CLIP relevance vS [Ts·(N+1)] back through block l's per-frame self-attention.
func (a *attn) spatialStep(vS []float64, l int) []float64 {
	n1 := a.n + 1
	out := make([]float64, 0, len(vS))
	for f := range a.ts {
		out = append(out, selfStep(vS[f*n1:(f+1)*n1], a.clip[l][f*n1*n1:(f+1)*n1*n1], n1)...)
	}
	return out
}

// spatialRollout is MethodSpatial: from each frame's class token back to its patches, [Ts][N].
func (a *attn) spatialRollout() [][]float64 {
	n1 := a.n + 1
	vS := make([]float64, a.ts*n1)
	for f := range a.ts {
		vS[f*n1] = 1
	}
	for l := len(a.clip) - 1; l >= 0; l-- {
		vS = a.spatialStep(vS, l)
	}
	return a.clipPatches(vS)
}

// temporalRollout is MethodTemporal: from the mean of the output tokens back to the tubelets, [Tt][N].
func (a *attn) temporalRollout() [][]float64 {
	l := a.tt * a.n
	vT := make([]float64, l)
	for i := range vT {
		vT[i] = 1 / float64(l)
	}
	for b := len(a.vmae) - 1; b >= 0; b-- {
		vT = selfStep(vT, a.vmae[b], l)
	}
	return a.tubelets(vT)
}

// castRollout is MethodCAST: relevance starts half on the CLIP class tokens (spread over the frames) and
// half on the VideoMAE tokens (spread evenly), the two pooled features the head adds, and flows back
// through each block's B-CAST (after the self-attention in the forward pass, so first here) and then its
// self-attention. B-CAST adds its cross-attention output to each stream as a residual: a CLIP patch's state
// is ½ itself + ½ the VideoMAE tokens at its position, a VideoMAE token's state ½ itself + ½ the CLIP
// patches of its frame; the CLIP class tokens pass through. It returns the CLIP patches [Ts][N] and the
// tubelets [Tt][N].
func (a *attn) castRollout() ([][]float64, [][]float64) {
	n, n1, ts, tt := a.n, a.n+1, a.ts, a.tt
	vS, vT := make([]float64, ts*n1), make([]float64, tt*n)
	for f := range ts {
		vS[f*n1] = 0.5 / float64(ts)
	}
	for i := range vT {
		vT[i] = 0.5 / float64(tt*n)
	}
	for l := len(a.clip) - 1; l >= 0; l-- {
		nS, nT := make([]float64, len(vS)), make([]float64, len(vT))
		t2s, s2t := a.t2s[l], a.s2t[l]
		for f := range ts {
			nS[f*n1] += vS[f*n1]
			for p := range n {
				w := vS[f*n1+1+p]
				nS[f*n1+1+p] += 0.5 * w
				for tau := range tt {
					nT[tau*n+p] += 0.5 * w * float64(t2s[(p*ts+f)*tt+tau])
				}
			}
		}
		for tau := range tt {
			for p := range n {
				w := vT[tau*n+p]
				nT[tau*n+p] += 0.5 * w
				row := s2t[(tau*n+p)*n : (tau*n+p+1)*n]
				for q, pr := range row {
					nS[tau*n1+1+q] += 0.5 * w * float64(pr)
				}
			}
		}
		vS = a.spatialStep(nS, l)
		vT = selfStep(nT, a.vmae[l], tt*n)
	}
	return a.clipPatches(vS), a.tubelets(vT)
}

// clipPatches drops the class tokens of vS [Ts·(N+1)]: [Ts][N].
func (a *attn) clipPatches(vS []float64) [][]float64 {
	n1 := a.n + 1
	out := make([][]float64, a.ts)
	for f := range out {
		out[f] = vS[f*n1+1 : (f+1)*n1]
	}
	return out
}

// tubelets splits vT [Tt·N] by tubelet: [Tt][N].
func (a *attn) tubelets(vT []float64) [][]float64 {
	out := make([][]float64, a.tt)
	for t := range out {
		out[t] = vT[t*a.n : (t+1)*a.n]
	}
	return out
}

// grads holds the gradient outputs of each stream present: gradient × input on the embedding, and the
// tokens entering the last block with their gradient.
type grads struct {
	ts, tt, n, d     int
	clipGI, vmaeGI   []float32 // [Ts·(N+1)], [Tt·N]
	clipX, clipG     []float32 // [Ts, N+1, D]
	vmaeX, vmaeG     []float32 // [Tt·N, D]
	hasClip, hasVMAE bool
}

func newGrads(cfg cast.Config, flat [][]float32, streams []stream) *grads {
	g := &grads{ts: cfg.SpatialFrames(), tt: cfg.TemporalSlots(), n: cast.PatchesPerFrame, d: cfg.EmbedDim}
	for k, st := range streams {
		gi, x, gr := flat[3*k], flat[3*k+1], flat[3*k+2]
		if st == clipStream {
			g.clipGI, g.clipX, g.clipG, g.hasClip = gi, x, gr, true
		} else {
			g.vmaeGI, g.vmaeX, g.vmaeG, g.hasVMAE = gi, x, gr, true
		}
	}
	return g
}

// gradInput is MethodGradInput per CLIP frame and per tubelet (nil for a stream the model lacks).
func (g *grads) gradInput() (s, t [][]float64) {
	n, n1 := g.n, g.n+1
	if g.hasClip {
		s = make([][]float64, g.ts)
		for f := range s {
			s[f] = f64(g.clipGI[f*n1+1 : (f+1)*n1])
		}
	}
	if g.hasVMAE {
		t = make([][]float64, g.tt)
		for tau := range t {
			t[tau] = f64(g.vmaeGI[tau*n : (tau+1)*n])
		}
	}
	return s, t
}

// gradCAM is MethodGradCAM per CLIP frame and per tubelet (nil for a stream the model lacks).
func (g *grads) gradCAM() (s, t [][]float64) {
	n, n1, d := g.n, g.n+1, g.d
	if g.hasClip {
		s = make([][]float64, g.ts)
		for f := range s {
			base := f * n1 * d
			s[f] = cam(g.clipX[base+d:base+n1*d], g.clipG[base+d:base+n1*d], n, d)
		}
	}
	if g.hasVMAE {
		all := cam(g.vmaeX, g.vmaeG, g.tt*n, d)
		t = make([][]float64, g.tt)
		for tau := range t {
			t[tau] = all[tau*n : (tau+1)*n]
		}
	}
	return s, t
}

// cam is Grad-CAM over l tokens of d channels: α = the channel means of the gradient, the map
// max(0, Σ_c α_c·x_c) per token.
func cam(x, grad []float32, l, d int) []float64 {
	alpha := make([]float64, d)
	for i := range l {
		for c := range d {
			alpha[c] += float64(grad[i*d+c]) / float64(l)
		}
	}
	out := make([]float64, l)
	for i := range l {
		var s float64
		for c := range d {
			s += alpha[c] * float64(x[i*d+c])
		}
		out[i] = max(0, s)
	}
	return out
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
