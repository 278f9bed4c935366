package cast

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/castvideo/castgo/cast/weights"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// ParamSpec is one state-dict entry the model reads: its official name and shape.
type ParamSpec struct {
	Name  string
	Shape []int
}

// StateDict lists every parameter of the config in the official state-dict order (CAST.md §1.8), with its shape.
func (c Config) StateDict() []ParamSpec {
	d, p, ch, k := c.EmbedDim, c.PatchSize, c.InChans, c.TubeletSize
	dc, ah, n := c.CrossDim(), c.AdapterHidden(), PatchesPerFrame
	var specs []ParamSpec
	add := func(name string, shape ...int) { specs = append(specs, ParamSpec{name, shape}) }
	linear := func(name string, out, in int) { add(name+".weight", out, in); add(name+".bias", out) }
	norm := func(name string, dim int) { add(name+".weight", dim); add(name+".bias", dim) }
	adapter := func(name string) { linear(name+".D_fc1", ah, d); linear(name+".D_fc2", d, ah) }

	sp, tp := c.UsesSpatial(), c.UsesTemporal()
	if sp {
		add("clip_class_embedding", d)
		add("clip_positional_embedding", n+1, d)
	}
	if tp {
		add("patch_embed.proj.weight", d, ch, k, p, p)
		add("patch_embed.proj.bias", d)
	}
	if sp {
		add("clip_conv1.weight", d, ch, p, p)
		norm("clip_ln_pre", d)
	}
	for i := 0; i < c.Depth; i++ {
		b := "blocks." + strconv.Itoa(i) + "."
		if sp {
			norm(b+"clip_ln_1", d)
			add(b+"clip_attn.in_proj_weight", 3*d, d)
			add(b+"clip_attn.in_proj_bias", 3*d)
			linear(b+"clip_attn.out_proj", d, d)
			adapter(b + "S_Adapter")
		}
		if tp {
			norm(b+"norm1", d)
			add(b+"attn.q_bias", d)
			add(b+"attn.v_bias", d)
			add(b+"attn.qkv.weight", 3*d, d)
			linear(b+"attn.proj", d, d)
			adapter(b + "T_Adapter")
		}
		if c.UsesBCAST() {
			linear(b+"cross_s_down", dc, d)
			linear(b+"cross_t_down", dc, d)
			norm(b+"ln_s_cross", dc)
			norm(b+"ln_t_cross", dc)
			add(b+"t2s_cross.clip_time_pos", c.SpatialFrames(), dc)
			add(b+"t2s_cross.vmae_time_pos", c.TemporalSlots(), dc)
			add(b+"t2s_cross.t2s_q_bias", dc)
			add(b+"t2s_cross.t2s_kv_bias", 2*dc)
			add(b+"t2s_cross.t2s_q.weight", dc, dc)
			add(b+"t2s_cross.t2s_kv.weight", 2*dc, dc)
			linear(b+"t2s_cross.t2s_proj", dc, dc)
			add(b+"s2t_cross.clip_space_pos", n, dc)
			add(b+"s2t_cross.vmae_space_pos", n, dc)
			add(b+"s2t_cross.s2t_q_bias", dc)
			add(b+"s2t_cross.s2t_kv_bias", 2*dc)
			add(b+"s2t_cross.s2t_q.weight", dc, dc)
			add(b+"s2t_cross.s2t_kv.weight", 2*dc, dc)
			linear(b+"s2t_cross.t2s_proj", dc, dc)
			linear(b+"cross_s_up", d, dc)
			linear(b+"cross_t_up", d, dc)
		}
		if sp {
			norm(b+"clip_ln_2", d)
			linear(b+"clip_mlp.c_fc", c.CLIPMLPHidden(), d)
			linear(b+"clip_mlp.c_proj", d, c.CLIPMLPHidden())
			adapter(b + "S_MLP_Adapter")
		}
		if tp {
			norm(b+"norm2", d)
			linear(b+"mlp.fc1", c.VMAEMLPHidden(), d)
			linear(b+"mlp.fc2", d, c.VMAEMLPHidden())
			adapter(b + "T_MLP_Adapter")
		}
	}
	if sp {
		norm("clip_ln_post", d)
	}
	if tp {
		norm("vmae_fc_norm", d)
	}
	if c.Composition {
		linear("head_verb", c.VerbClasses, d)
		linear("head_noun", c.NounClasses, d)
	} else {
		if sp {
			adapter("noun_last_Adapter")
		}
		if tp {
			adapter("verb_last_Adapter")
		}
		linear("head", c.NumClasses, d)
	}
	return specs
}

// Shapes maps every state-dict name of the config to its shape.
func (c Config) Shapes() map[string][]int {
	m := make(map[string][]int)
	for _, s := range c.StateDict() {
		m[s.Name] = s.Shape
	}
	return m
}

// trainableMarkers is the official unfreeze list (run_bidirection*.py `unfreeze_block`, CAST.md §1.3).
var trainableMarkers = []string{"cross", "clip_space_time_pos", "clip_time_pos", "vmae_time_pos", "Adapter",
	"ln_post", "vmae_fc_norm", "last_proj", "fusion", "head"}

// Trainable reports whether the official parameter-efficient fine-tuning trains the named parameter:
// adapters, B-CAST, the final norms and the head(s); both experts stay frozen.
func Trainable(name string) bool {
	for _, m := range trainableMarkers {
		if strings.Contains(name, m) {
			return true
		}
	}
	return false
}

// ParamCounts returns the total and the officially trainable parameter counts of the config.
func (c Config) ParamCounts() (total, trainable int) {
	for _, s := range c.StateDict() {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		total += n
		if Trainable(s.Name) {
			trainable += n
		}
	}
	return total, trainable
}

// MACs is the analytic multiply-accumulate count of one forward pass for one clip (fvcore convention),
// counting matmuls and attention; element-wise work is ignored.
func (c Config) MACs() int64 {
	d, n, ts, tt := int64(c.EmbedDim), int64(PatchesPerFrame), int64(c.SpatialFrames()), int64(c.TemporalSlots())
	dc, ah := int64(c.CrossDim()), int64(c.AdapterHidden())
	p, ch := int64(c.PatchSize), int64(c.InChans)
	sTok, tTok := ts*(n+1), tt*n
	var m, perBlock int64
	if c.UsesSpatial() {
		m += ts * n * d * ch * p * p // CLIP patch embedding
		// CLIP: qkv, attention (per frame), out_proj, MLP, 2 adapters.
		perBlock += sTok*3*d*d + ts*(n+1)*(n+1)*d*2 + sTok*d*d + sTok*2*d*int64(c.CLIPMLPHidden()) + 2*sTok*2*d*ah
	}
	if c.UsesTemporal() {
		m += tt * n * d * ch * 2 * p * p // VideoMAE tubelet embedding
		// VideoMAE: qkv, joint attention, proj, MLP, 2 adapters.
		perBlock += tTok*3*d*d + tTok*tTok*d*2 + tTok*d*d + tTok*2*d*int64(c.VMAEMLPHidden()) + 2*tTok*2*d*ah
	}
	if c.UsesBCAST() {
		// B-CAST: down/up projections, T2S (along time), S2T (over space).
		perBlock += (sTok + tTok) * 2 * d * dc
		perBlock += n*ts*dc*dc + n*tt*2*dc*dc + n*ts*tt*dc*2 + n*ts*dc*dc
		perBlock += tt*n*dc*dc + ts*n*2*dc*dc + tt*n*n*dc*2 + tt*n*dc*dc
	}
	m += int64(c.Depth) * perBlock
	return m
}

// LoadWeights creates one context variable per tensor of set, under the scope path of its state-dict name
// ("blocks.0.attn.qkv.weight" → scope /blocks/0/attn/qkv, variable "weight"). Int8 tensors become an Int8
// variable plus a float32 "<name>_int8_scale" variable. It checks every name and shape against the config
// first and reports missing, unexpected and mismatched names. Frozen parameters (per Trainable) are marked
// non-trainable when peft is set.
func LoadWeights(ctx *context.Context, cfg Config, set weights.Set, peft bool) error {
	return loadWeights(ctx, cfg.Shapes(), set, peft)
}

// loadWeights is LoadWeights against the expected names and shapes (a whole model's, or a stage's).
func loadWeights(ctx *context.Context, shapes map[string][]int, set weights.Set, peft bool) error {
	if err := weights.Check(set, shapes); err != nil {
		return err
	}
	for name, t := range set {
		if err := t.Validate(); err != nil {
			return fmt.Errorf("weight %q: %w", name, err)
		}
		scope, vname := ctx, name
		for i := strings.IndexByte(vname, '.'); i >= 0; i = strings.IndexByte(vname, '.') {
			scope, vname = scope.In(vname[:i]), vname[i+1:]
		}
		var v *context.Variable
		switch t.DType {
		case weights.F32:
			v = scope.VariableWithValue(vname, tensors.FromFlatDataAndDimensions(t.F32, t.Shape...))
		case weights.I8:
			v = scope.VariableWithValue(vname, tensors.FromFlatDataAndDimensions(t.I8, t.Shape...))
			scope.VariableWithValue(vname+ScaleSuffix, tensors.FromFlatDataAndDimensions(t.Scale, len(t.Scale))).SetTrainable(false)
			v.SetTrainable(false)
		}
		if peft && !Trainable(name) {
			v.SetTrainable(false)
		}
	}
	return nil
}

// SaveWeights reads every float32 variable of ctx back into a weights.Set keyed by state-dict names
// (used after training).
func SaveWeights(ctx *context.Context, cfg Config) (weights.Set, error) {
	set := weights.Set{}
	for _, spec := range cfg.StateDict() {
		scope, vname := "", spec.Name
		if i := strings.LastIndexByte(vname, '.'); i >= 0 {
			scope, vname = context.ScopeSeparator+strings.ReplaceAll(vname[:i], ".", context.ScopeSeparator), vname[i+1:]
		} else {
			scope = context.ScopeSeparator
		}
		v := ctx.GetVariableByScopeAndName(scope, vname)
		if v == nil {
			return nil, fmt.Errorf("save weights: variable for %q not found", spec.Name)
		}
		if v.DType() != dtypes.Float32 {
			return nil, fmt.Errorf("save weights: %q is %s, only float32 weights can be saved", spec.Name, v.DType())
		}
		val, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("save weights: %q: %w", spec.Name, err)
		}
		data := tensors.MustCopyFlatData[float32](val)
		set[spec.Name] = weights.NewF32(spec.Shape, data)
	}
	return set, nil
}
