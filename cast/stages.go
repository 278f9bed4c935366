package cast

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/castvideo/castgo/cast/weights"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // the graph DSL reads like the spec.
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Stage is a contiguous slice of Forward: optionally the embedding, then blocks [From, To), then optionally
// the head. Running a model's stages in order (each stage's outputs are the next one's inputs) is Forward,
// built from the same functions (embed, blocks, head of model.go), so a model can be split across
// processes or edge isolates that each hold only their stage's weights.
//
// A stage's inputs are the clip x [B, 3, T, H, W] when Embed is set, else the token streams (see
// Config.Streams); its outputs are the logits of every head when Head is set, else the streams.
type Stage struct {
	Embed bool `json:"embed"` // the stage starts with both experts' embeddings
	From  int  `json:"from"`  // first block
	To    int  `json:"to"`    // one past the last block (From == To: no block)
	Head  bool `json:"head"`  // the stage ends with the pooling and classifier(s)
}

// String names the stage's range, e.g. "embed+blocks[0,4)" or "blocks[8,12)+head".
func (st Stage) String() string {
	var parts []string
	if st.Embed {
		parts = append(parts, "embed")
	}
	if st.To > st.From {
		parts = append(parts, fmt.Sprintf("blocks[%d,%d)", st.From, st.To))
	}
	if st.Head {
		parts = append(parts, "head")
	}
	return strings.Join(parts, "+")
}

// Validate checks the stage against cfg: 0 ≤ From ≤ To ≤ Depth, and not empty.
func (st Stage) Validate(cfg Config) error {
	if st.From < 0 || st.To < st.From || st.To > cfg.Depth {
		return fmt.Errorf("stage %s: block range [%d, %d) is not within the model's %d blocks", st, st.From, st.To, cfg.Depth)
	}
	if !st.Embed && !st.Head && st.From == st.To {
		return fmt.Errorf("stage [%d, %d) is empty", st.From, st.To)
	}
	return nil
}

// CheckChain checks that stages, in order, cover the whole forward exactly once: the first embeds, the
// last has the head, and each starts at the block where the previous one stopped.
func CheckChain(cfg Config, stages []Stage) error {
	if len(stages) == 0 {
		return fmt.Errorf("no stages")
	}
	next := 0
	for i, st := range stages {
		if err := st.Validate(cfg); err != nil {
			return fmt.Errorf("stage %d: %w", i, err)
		}
		if st.Embed != (i == 0) {
			return fmt.Errorf("stage %d (%s): only the first stage embeds", i, st)
		}
		if st.Head != (i == len(stages)-1) {
			return fmt.Errorf("stage %d (%s): only the last stage has the head", i, st)
		}
		if st.From != next {
			return fmt.Errorf("stage %d (%s) starts at block %d, want %d (where stage %d stops)", i, st, st.From, next, i-1)
		}
		next = st.To
	}
	if next != cfg.Depth {
		return fmt.Errorf("the stages stop at block %d of %d", next, cfg.Depth)
	}
	return nil
}

// SplitStages splits cfg's forward into n stages whose block counts differ by at most one (the earlier
// stages take the extra blocks; the first also embeds, the last also has the head). n ranges over
// 1..Depth.
func SplitStages(cfg Config, n int) ([]Stage, error) {
	if n < 1 || n > cfg.Depth {
		return nil, fmt.Errorf("cannot split a %d-block model into %d stages (1..%d)", cfg.Depth, n, cfg.Depth)
	}
	stages := make([]Stage, n)
	from := 0
	for i := range stages {
		k := cfg.Depth / n
		if i < cfg.Depth%n {
			k++
		}
		stages[i] = Stage{Embed: i == 0, From: from, To: from + k, Head: i == n-1}
		from += k
	}
	return stages, nil
}

// embedParams are the state-dict names (or name prefixes ending in ".") of the embedding stage.
var embedParams = []string{"clip_class_embedding", "clip_positional_embedding", "clip_conv1.", "clip_ln_pre.", "patch_embed."}

// Owns reports whether the parameter called name belongs to the stage: the embeddings' to an embedding
// stage, "blocks.i.*" to the stage whose range holds i, everything else (final norms, adapters, heads) to
// the head stage.
func (st Stage) Owns(name string) bool {
	if rest, ok := strings.CutPrefix(name, "blocks."); ok {
		i, _, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(i)
		return err == nil && st.From <= n && n < st.To
	}
	for _, p := range embedParams {
		if name == p || (strings.HasSuffix(p, ".") && strings.HasPrefix(name, p)) {
			return st.Embed
		}
	}
	return st.Head
}

// StateDict lists the parameters of cfg the stage reads, in the official order (see Config.StateDict).
func (st Stage) StateDict(cfg Config) []ParamSpec {
	var specs []ParamSpec
	for _, s := range cfg.StateDict() {
		if st.Owns(s.Name) {
			specs = append(specs, s)
		}
	}
	return specs
}

// Shapes maps every parameter of the stage to its shape.
func (st Stage) Shapes(cfg Config) map[string][]int {
	m := make(map[string][]int)
	for _, s := range st.StateDict(cfg) {
		m[s.Name] = s.Shape
	}
	return m
}

// ParamCount is the number of parameters the stage holds.
func (st Stage) ParamCount(cfg Config) int {
	total := 0
	for _, s := range st.StateDict(cfg) {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		total += n
	}
	return total
}

// Streams returns the shapes of the token streams passed between stages for batch clips, in order: CLIP's
// s [B·Ts, N+1, D], then VideoMAE's t [B, Tt·N, D] (a single-expert ablation has only its own).
func (c Config) Streams(batch int) [][]int {
	var out [][]int
	if c.UsesSpatial() {
		out = append(out, []int{batch * c.SpatialFrames(), PatchesPerFrame + 1, c.EmbedDim})
	}
	if c.UsesTemporal() {
		out = append(out, []int{batch, c.TemporalSlots() * PatchesPerFrame, c.EmbedDim})
	}
	return out
}

// Inputs returns the shapes of the stage's inputs for batch clips: the clip, or the streams.
func (st Stage) Inputs(cfg Config, batch int) [][]int {
	if st.Embed {
		return [][]int{{batch, cfg.InChans, cfg.AllFrames, cfg.ImgSize, cfg.ImgSize}}
	}
	return cfg.Streams(batch)
}

// Outputs returns the shapes of the stage's outputs for batch clips: the logits of each head, or the
// streams.
func (st Stage) Outputs(cfg Config, batch int) [][]int {
	if !st.Head {
		return cfg.Streams(batch)
	}
	var out [][]int
	for _, k := range cfg.HeadClasses() {
		out = append(out, []int{batch, k})
	}
	return out
}

// Forward builds the stage's part of the CAST forward on in (see Inputs) and returns its outputs (see
// Outputs).
func (st Stage) Forward(ctx *context.Context, cfg Config, in []*Node, taps Taps) []*Node {
	var s, t *Node
	if st.Embed {
		s, t = embed(ctx, cfg, in[0], taps)
	} else {
		s, t = unpackStreams(cfg, in)
	}
	s, t = blocks(ctx, cfg, s, t, st.From, st.To, taps)
	if st.Head {
		return head(ctx, cfg, s, t, taps)
	}
	var out []*Node
	for _, x := range []*Node{s, t} {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}

// unpackStreams assigns the inputs to the streams the config uses (spatial first).
func unpackStreams(cfg Config, in []*Node) (s, t *Node) {
	if cfg.UsesSpatial() {
		s, in = in[0], in[1:]
	}
	if cfg.UsesTemporal() {
		t = in[0]
	}
	return s, t
}

// LoadStageWeights is LoadWeights for one stage: set must hold exactly the stage's parameters.
func LoadStageWeights(ctx *context.Context, cfg Config, st Stage, set weights.Set) error {
	if err := st.Validate(cfg); err != nil {
		return err
	}
	return loadWeights(ctx, st.Shapes(cfg), set, false)
}
