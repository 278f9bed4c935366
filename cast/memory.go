package cast

// MemoryEstimate splits Config.PeakBytes into its parts, in bytes.
type MemoryEstimate struct {
	Weights     int64 // every parameter at float32 width
	Input       int64 // the normalised clips and the two patch-rearranged copies the embeddings make
	Streams     int64 // the token streams live across a block (residual, normalised, sub-layer output, sum)
	Transient   int64 // the largest short-lived working set of one sub-layer (attention scores, MLP hidden)
	Activations int64 // Input + Streams + Transient
	Total       int64 // Weights + Activations
}

// PeakBytes estimates the peak memory, in bytes, of one forward pass over batch clips on the pure-Go
// (simplego) backend. It is Memory(batch).Total; see Memory for what is counted.
func (c Config) PeakBytes(batch int) int64 { return c.Memory(batch).Total }

// Memory estimates the peak memory of one forward pass over batch clips (batch < 1 counts as 1). It is an
// analytic estimate, not a measurement: it is meant to decide whether a model can fit a memory budget
// (e.g. an edge isolate's 128 MB) before packaging it, and it errs on the large side. It counts, as float32:
//
//   - Weights: every parameter at 4 bytes. An int8 model file stores its matrices as int8, but the graph
//     dequantizes them to float32 when it runs, so the float32 copies exist at the peak; the int8 file
//     itself (and its parsed copy) are the caller's to add.
//   - Input: the clips [B, 3, T, S, S], plus the spatial and temporal embeddings' rearranged patch copies.
//   - Streams: 4 copies of the two token streams, CLIP s [B·Ts, N+1, D] and VideoMAE t [B, Tt·N, D]: the
//     residual, the layer-normed input, the sub-layer output and their sum are alive together in a block.
//   - Transient: the largest of the sub-layers' own working sets. Attention keeps q, k and v (plus the fused
//     qkv) and two score-sized tensors at once (scores and their softmax); the scores are
//     [B·Ts, h, N+1, N+1] for CLIP, [B, h, Tt·N, Tt·N] for VideoMAE's joint space-time attention (by far
//     the largest for long clips), [B·Tt, h, N, N] for B-CAST's S2T and [B·N, h, Ts, Tt] for T2S. An MLP
//     keeps its hidden layer before and after the activation.
//
// The backend frees a buffer when its last reader has run, so intermediate results of earlier blocks do
// not add up; what is left out (the graph's bookkeeping, the Go runtime) is small against the above.
func (c Config) Memory(batch int) MemoryEstimate {
	const f32 = 4
	b := int64(max(batch, 1))
	d, n := int64(c.EmbedDim), int64(PatchesPerFrame)
	h := int64(max(c.NumHeads, 1))
	ts, tt := int64(c.SpatialFrames()), int64(c.TemporalSlots())
	dc := int64(c.CrossDim())
	var sTok, tTok int64 // tokens per clip in each stream
	if c.UsesSpatial() {
		sTok = ts * (n + 1)
	}
	if c.UsesTemporal() {
		tTok = tt * n
	}
	total, _ := c.ParamCounts()
	var m MemoryEstimate
	m.Weights = int64(total) * f32
	clip := int64(c.InChans) * int64(c.AllFrames) * int64(c.ImgSize) * int64(c.ImgSize)
	m.Input = 3 * b * clip * f32
	m.Streams = 4 * b * (sTok + tTok) * d * f32

	// attention: fused qkv and the split q, k, v (6 token×width tensors) plus scores and probabilities.
	attn := func(tokens, width, scores int64) int64 { return 6*tokens*width + 2*scores }
	var transient int64
	if sTok > 0 {
		transient = max(transient, attn(b*sTok, d, b*ts*h*(n+1)*(n+1)))
		transient = max(transient, 2*b*sTok*int64(c.CLIPMLPHidden()))
	}
	if tTok > 0 {
		transient = max(transient, attn(b*tTok, d, b*h*tTok*tTok))
		transient = max(transient, 2*b*tTok*int64(c.VMAEMLPHidden()))
	}
	if c.UsesBCAST() {
		transient = max(transient, attn(b*tTok, dc, b*tt*h*n*n))  // S2T: each frame's tokens over its patches
		transient = max(transient, attn(b*n*ts, dc, b*n*h*ts*tt)) // T2S: along time at each position
	}
	m.Transient = transient * f32
	m.Activations = m.Input + m.Streams + m.Transient
	m.Total = m.Weights + m.Activations
	return m
}
