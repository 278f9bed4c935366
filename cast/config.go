package cast

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Config is the shape of a CAST model. Its JSON form is the `model` object of the goldens' config.json
// (extra keys there, such as derived token counts, are ignored).
type Config struct {
	ImgSize      int     `json:"img_size"`               // input height and width (224 for ViT-B/16)
	PatchSize    int     `json:"patch_size"`             // patch side (16); ImgSize/PatchSize must be 14
	InChans      int     `json:"in_chans"`               // 3 (RGB)
	EmbedDim     int     `json:"embed_dim"`              // D: 768 for ViT-B
	Depth        int     `json:"depth"`                  // blocks: 12
	NumHeads     int     `json:"num_heads"`              // heads of both experts and of B-CAST: 12
	MLPRatio     float64 `json:"mlp_ratio"`              // VideoMAE MLP ratio (4); the CLIP MLP is always 4·D
	DownRatio    int     `json:"down_ratio"`             // B-CAST width d = D/DownRatio (2)
	AdapterRatio float64 `json:"adapter_ratio"`          // adapter bottleneck = int(D·ratio) (0.25)
	AllFrames    int     `json:"all_frames"`             // T input frames (16); even
	TubeletSize  int     `json:"tubelet_size"`           // VideoMAE tubelet (must be 2)
	NumClasses   int     `json:"num_classes"`            // single-head classes (174 SSv2, 400 K400); 0 for EPIC
	Composition  bool    `json:"composition"`            // EPIC two-head model: noun (CLIP) + verb (VideoMAE)
	NounClasses  int     `json:"noun_classes,omitempty"` // EPIC nouns (300)
	VerbClasses  int     `json:"verb_classes,omitempty"` // EPIC verbs (97)
	// Experts selects an ablation: "" (both experts with B-CAST: CAST itself), "spatial" (the CLIP expert
	// with its adapters only) or "temporal" (the VideoMAE expert with its adapters only). The single-expert
	// models reproduce the paper's expert-vs-CAST comparison; official checkpoints are always "".
	Experts string `json:"experts,omitempty"`
}

// UsesSpatial reports whether the model has the spatial (CLIP) expert.
func (c Config) UsesSpatial() bool { return c.Experts != "temporal" }

// UsesTemporal reports whether the model has the temporal (VideoMAE) expert.
func (c Config) UsesTemporal() bool { return c.Experts != "spatial" }

// UsesBCAST reports whether the model has B-CAST cross-attention (both experts).
func (c Config) UsesBCAST() bool { return c.Experts == "" }

// Grid is the number of patches per side; CAST hard-codes 14.
const Grid = 14

// PatchesPerFrame is N = 14×14 = 196, hard-coded in the official CrossAttentionS2T.
const PatchesPerFrame = Grid * Grid

// UnmarshalJSON accepts the goldens' `model` object, including EPIC's `composition_heads` map
// ({"noun(...)": 300, "verb(...)": 97}) and a null num_classes.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	var raw struct {
		plain
		NumClasses       *int           `json:"num_classes"`
		CompositionHeads map[string]int `json:"composition_heads"`
	}
	raw.plain = plain(DefaultBase())
	raw.plain.NumClasses = 0
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = Config(raw.plain)
	if raw.NumClasses != nil {
		c.NumClasses = *raw.NumClasses
	}
	for k, v := range raw.CompositionHeads {
		switch {
		case strings.HasPrefix(k, "noun"):
			c.NounClasses = v
		case strings.HasPrefix(k, "verb"):
			c.VerbClasses = v
		default:
			return fmt.Errorf("composition_heads: unknown head %q (want noun… or verb…)", k)
		}
	}
	if c.Composition {
		if c.NounClasses == 0 {
			c.NounClasses = 300
		}
		if c.VerbClasses == 0 {
			c.VerbClasses = 97
		}
	}
	return nil
}

// DefaultBase is the paper's ViT-B/16 configuration with the SSv2 head.
func DefaultBase() Config {
	return Config{ImgSize: 224, PatchSize: 16, InChans: 3, EmbedDim: 768, Depth: 12, NumHeads: 12, MLPRatio: 4,
		DownRatio: 2, AdapterRatio: 0.25, AllFrames: 16, TubeletSize: 2, NumClasses: 174}
}

// Presets are the official configurations by name.
var Presets = map[string]Config{
	"base-ssv2": DefaultBase(),
	"base-k400": func() Config { c := DefaultBase(); c.NumClasses = 400; return c }(),
	"demo":      DemoConfig(),
	"base-epic": func() Config {
		c := DefaultBase()
		c.NumClasses, c.Composition, c.NounClasses, c.VerbClasses = 0, true, 300, 97
		return c
	}(),
}

// DemoConfig is the small CAST trained on the procedural dataset (package synth) and shipped as the default
// model: 56×56 input (patch 4, so the 14×14 grid CAST needs), 4 frames, D=32, depth 2, 4 heads, 16 classes.
// It is sized to train in well under an hour on two CPU cores and to classify a view in a fraction of a
// second in WebAssembly.
func DemoConfig() Config {
	return Config{ImgSize: 56, PatchSize: 4, InChans: 3, EmbedDim: 32, Depth: 2, NumHeads: 4, MLPRatio: 4,
		DownRatio: 2, AdapterRatio: 0.25, AllFrames: 4, TubeletSize: 2, NumClasses: 16}
}

// PresetNames lists the preset names, sorted.
func PresetNames() []string {
	var names []string
	for k := range Presets {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// ParseConfig reads a config from JSON: either a bare model object or a goldens config.json with a
// top-level "model" key.
func ParseConfig(data []byte) (Config, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return Config{}, fmt.Errorf("config: not a JSON object: %w", err)
	}
	if m, ok := probe["model"]; ok {
		data = m
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Bounds on a config's fields: far above any real CAST model (ViT-L/14 has D=1024, depth 24, 16 heads;
// the official models take 16 or 32 frames and 174/400/300+97 classes), yet small enough that a config
// read from an untrusted file cannot make the loader ask for absurd sizes (a depth of 2³⁰, say).
const (
	MaxDepth      = 64     // blocks
	MaxEmbedDim   = 8192   // D
	MaxHeads      = 256    // attention heads
	MaxPatchSize  = 64     // patch side, so img_size ≤ 14·64 = 896
	MaxInChans    = 4      // RGB (3); 1–4 channels
	MaxFrames     = 128    // all_frames
	MaxMLPRatio   = 16     // VideoMAE MLP ratio
	MaxAdapter    = 4      // adapter_ratio
	MaxDownRatio  = 64     // B-CAST down_ratio
	MaxNumClasses = 100000 // classes of any head
)

// Validate reports the first reason the config cannot describe a CAST model: a field out of its bounds
// (see MaxDepth and the other bounds) or fields that do not fit together.
func (c Config) Validate() error {
	switch {
	case c.PatchSize > MaxPatchSize || c.ImgSize > Grid*MaxPatchSize:
		return fmt.Errorf("config: patch_size %d / img_size %d is out of range (patch_size at most %d, img_size at most %d)", c.PatchSize, c.ImgSize, MaxPatchSize, Grid*MaxPatchSize)
	case c.InChans > MaxInChans:
		return fmt.Errorf("config: in_chans %d is out of range (at most %d)", c.InChans, MaxInChans)
	case c.EmbedDim > MaxEmbedDim:
		return fmt.Errorf("config: embed_dim %d is out of range (at most %d)", c.EmbedDim, MaxEmbedDim)
	case c.Depth > MaxDepth:
		return fmt.Errorf("config: depth %d is out of range (at most %d blocks)", c.Depth, MaxDepth)
	case c.NumHeads > MaxHeads:
		return fmt.Errorf("config: num_heads %d is out of range (at most %d)", c.NumHeads, MaxHeads)
	case c.AllFrames > MaxFrames:
		return fmt.Errorf("config: all_frames %d is out of range (at most %d)", c.AllFrames, MaxFrames)
	case !(c.MLPRatio <= MaxMLPRatio) || !(c.AdapterRatio <= MaxAdapter): // also catches NaN
		return fmt.Errorf("config: mlp_ratio %g (at most %d) or adapter_ratio %g (at most %d) is out of range", c.MLPRatio, MaxMLPRatio, c.AdapterRatio, MaxAdapter)
	case c.DownRatio > MaxDownRatio:
		return fmt.Errorf("config: down_ratio %d is out of range (at most %d)", c.DownRatio, MaxDownRatio)
	case c.NumClasses < 0 || c.NumClasses > MaxNumClasses || c.NounClasses < 0 || c.NounClasses > MaxNumClasses || c.VerbClasses < 0 || c.VerbClasses > MaxNumClasses:
		return fmt.Errorf("config: class counts num_classes %d, noun_classes %d, verb_classes %d must be 0..%d", c.NumClasses, c.NounClasses, c.VerbClasses, MaxNumClasses)
	case c.ImgSize <= 0 || c.PatchSize <= 0:
		return fmt.Errorf("config: img_size (%d) and patch_size (%d) must be positive", c.ImgSize, c.PatchSize)
	case c.ImgSize%c.PatchSize != 0 || c.ImgSize/c.PatchSize != Grid:
		return fmt.Errorf("config: CAST needs a 14×14 patch grid (B-CAST hard-codes 196 positions), but img_size %d / patch_size %d gives %g",
			c.ImgSize, c.PatchSize, float64(c.ImgSize)/float64(c.PatchSize))
	case c.InChans <= 0:
		return fmt.Errorf("config: in_chans must be positive, got %d", c.InChans)
	case c.EmbedDim <= 0 || c.Depth <= 0 || c.NumHeads <= 0:
		return fmt.Errorf("config: embed_dim (%d), depth (%d) and num_heads (%d) must be positive", c.EmbedDim, c.Depth, c.NumHeads)
	case c.EmbedDim%c.NumHeads != 0:
		return fmt.Errorf("config: embed_dim %d is not divisible by num_heads %d", c.EmbedDim, c.NumHeads)
	case c.DownRatio <= 0:
		return fmt.Errorf("config: down_ratio must be positive, got %d", c.DownRatio)
	case c.UsesBCAST() && (c.EmbedDim%c.DownRatio != 0 || (c.EmbedDim/c.DownRatio)%c.NumHeads != 0):
		// Only B-CAST has the width embed_dim/down_ratio; a single-expert ablation has no B-CAST.
		return fmt.Errorf("config: B-CAST width embed_dim/down_ratio = %d/%d must be a whole multiple of num_heads %d", c.EmbedDim, c.DownRatio, c.NumHeads)
	case c.TubeletSize != 2:
		return fmt.Errorf("config: CAST needs tubelet_size 2 (CLIP takes every second frame), got %d", c.TubeletSize)
	case c.AllFrames <= 0 || c.AllFrames%2 != 0:
		return fmt.Errorf("config: CAST needs an even, positive frame count, got all_frames %d", c.AllFrames)
	case c.MLPRatio <= 0 || c.AdapterRatio <= 0 || c.AdapterHidden() == 0 || c.VMAEMLPHidden() == 0:
		return fmt.Errorf("config: mlp_ratio (%g) and adapter_ratio (%g) must give positive hidden sizes", c.MLPRatio, c.AdapterRatio)
	case c.Composition && (c.NounClasses <= 0 || c.VerbClasses <= 0):
		return fmt.Errorf("config: the EPIC (composition) model needs noun and verb class counts, got %d and %d", c.NounClasses, c.VerbClasses)
	case c.Experts != "" && c.Experts != "spatial" && c.Experts != "temporal":
		return fmt.Errorf("config: experts must be empty (CAST), \"spatial\" or \"temporal\", got %q", c.Experts)
	case c.Experts != "" && c.Composition:
		return fmt.Errorf("config: single-expert ablations have one head; composition (EPIC) needs both experts")
	case !c.Composition && c.NumClasses <= 0:
		return fmt.Errorf("config: num_classes must be positive, got %d", c.NumClasses)
	}
	return nil
}

// SpatialFrames is Ts, the frames CLIP sees (1, 3, 5, …).
func (c Config) SpatialFrames() int { return c.AllFrames / 2 }

// TemporalSlots is Tt, VideoMAE's temporal token slots (frames / tubelet).
func (c Config) TemporalSlots() int { return c.AllFrames / c.TubeletSize }

// HeadDim is the expert attention head width D/h.
func (c Config) HeadDim() int { return c.EmbedDim / c.NumHeads }

// CrossDim is the B-CAST width d = D/down_ratio.
func (c Config) CrossDim() int { return c.EmbedDim / c.DownRatio }

// AdapterHidden is the adapter bottleneck int(D·adapter_ratio).
func (c Config) AdapterHidden() int { return int(float64(c.EmbedDim) * c.AdapterRatio) }

// CLIPMLPHidden is the CLIP MLP width, hard-coded 4·D.
func (c Config) CLIPMLPHidden() int { return 4 * c.EmbedDim }

// VMAEMLPHidden is the VideoMAE MLP width int(D·mlp_ratio).
func (c Config) VMAEMLPHidden() int { return int(float64(c.EmbedDim) * c.MLPRatio) }

// Heads lists the output heads in the order the official forward returns them: ["logits"], or
// ["noun", "verb"] for the EPIC model.
func (c Config) Heads() []string {
	if c.Composition {
		return []string{"noun", "verb"}
	}
	return []string{"logits"}
}

// HeadClasses is the class count of each head, in Heads() order.
func (c Config) HeadClasses() []int {
	if c.Composition {
		return []int{c.NounClasses, c.VerbClasses}
	}
	return []int{c.NumClasses}
}
