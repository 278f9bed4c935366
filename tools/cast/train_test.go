package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/castvideo/castgo/models"
)

// TestTrainOnOwnClips trains a very small CAST for two steps on labelled video files (the path a user takes
// to fine-tune on their own clips), then fine-tunes the result with the parameter-efficient recipe and
// checks that the experts stayed frozen while the head moved.
func TestTrainOnOwnClips(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	ds := filepath.Join(dir, "ds")
	mustRun(t, "dataset", "--seed", "11", "--clips", "4", "--frames", "8", "--size", "32", "--out", ds)
	cfgPath := filepath.Join(dir, "cfg.json")
	cfg := `{"img_size": 28, "patch_size": 2, "in_chans": 3, "embed_dim": 16, "depth": 1, "num_heads": 2,
		"mlp_ratio": 2, "down_ratio": 2, "adapter_ratio": 0.25, "all_frames": 4, "tubelet_size": 2, "num_classes": 1}`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ann := filepath.Join(ds, "annotations.csv")
	first := filepath.Join(dir, "first.safetensors")
	mustRun(t, "train", "--config", cfgPath, "--annotations", ann, "--videos", ds, "--labels", filepath.Join(ds, "classes.txt"),
		"--eval-annotations", ann, "--eval-videos", ds, "--steps", "2", "--batch", "2", "--out", first)
	f, err := modelfile.Load(first)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.Meta.Labels["logits"]); got != 16 || f.Meta.Config.NumClasses != 16 {
		t.Fatalf("trained model has %d labels and %d classes, want the 16 of classes.txt", got, f.Meta.Config.NumClasses)
	}

	tuned := filepath.Join(dir, "tuned.safetensors")
	mustRun(t, "train", "--init", first, "--peft", "--annotations", ann, "--videos", ds, "--labels", filepath.Join(ds, "classes.txt"),
		"--steps", "2", "--batch", "2", "--lr", "1e-2", "--out", tuned)
	g, err := modelfile.Load(tuned)
	if err != nil {
		t.Fatal(err)
	}
	same := func(name string) bool { return equal(f.Weights[name], g.Weights[name]) }
	for _, frozen := range []string{"blocks.0.attn.qkv.weight", "clip_conv1.weight", "blocks.0.clip_mlp.c_fc.weight"} {
		if !same(frozen) {
			t.Errorf("--peft changed the frozen expert weight %s", frozen)
		}
	}
	if same("blocks.0.T_Adapter.D_fc1.weight") {
		t.Errorf("--peft left the trainable adapter weight unchanged")
	}
	mustRun(t, "classify", "--model", tuned, "--views", "1x1", "--json", filepath.Join(ds, "clip_000000.mp4"))
}

func equal(a, b *weights.Tensor) bool {
	if a == nil || b == nil || len(a.F32) != len(b.F32) {
		return false
	}
	for i := range a.F32 {
		if a.F32[i] != b.F32[i] {
			return false
		}
	}
	return true
}

// TestTrainExpertsConfig: a single-expert JSON config (the matched-size ablations of docs/experts) trains as
// that expert without --experts, --experts overrides it, and a retrained --init model keeps its ablation.
func TestTrainExpertsConfig(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join("..", "..", "docs", "experts", "spatial-wide.json")
	short := []string{"--steps", "1", "--batch", "2", "--warmup", "1", "--eval-clips", "2"}
	check := func(path, experts string, params int) {
		t.Helper()
		f, err := modelfile.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, w := range f.Weights {
			n += len(w.F32)
		}
		if f.Meta.Config.Experts != experts || n != params || f.Meta.Config.NumClasses != 16 {
			t.Errorf("%s: experts %q with %d parameters and %d classes, want %q with %d and 16", filepath.Base(path),
				f.Meta.Config.Experts, n, f.Meta.Config.NumClasses, experts, params)
		}
	}
	spatial := filepath.Join(dir, "spatial.safetensors")
	mustRun(t, append([]string{"train", "--config", cfgPath, "--out", spatial}, short...)...)
	check(spatial, "spatial", 87181)

	temporal := filepath.Join(dir, "temporal.safetensors")
	mustRun(t, append([]string{"train", "--config", cfgPath, "--experts", "temporal", "--out", temporal}, short...)...)
	check(temporal, "temporal", 79225) // D=52 temporal expert

	again := filepath.Join(dir, "again.safetensors")
	mustRun(t, append([]string{"train", "--init", spatial, "--out", again}, short...)...)
	check(again, "spatial", 87181)

	// CAST at D=52 with 4 heads has a B-CAST width of 26, which 4 heads do not divide: a clear error.
	if r := runCLI(t, append([]string{"train", "--config", cfgPath, "--experts", "", "--out", filepath.Join(dir, "x.safetensors")}, short...)...); r.err == nil || !strings.Contains(r.err.Error(), "B-CAST width") {
		t.Errorf("CAST at D=52: %v", r.err)
	}
}

// TestTrainInitDefault: --init accepts the embedded default and default-int8 models, and the fine-tuned model
// inherits the init model's protocol (the demo's segment 2×1, not SSv2's 2×3), labels and description (with a
// line saying what it came from, which cast info prints) unless --views / --description override them.
func TestTrainInitDefault(t *testing.T) {
	dir := t.TempDir()
	base, err := models.Default()
	if err != nil {
		t.Fatal(err)
	}
	short := []string{"--steps", "1", "--batch", "2", "--warmup", "1", "--eval-clips", "2"}
	tuned := filepath.Join(dir, "tuned.safetensors")
	mustRun(t, append([]string{"train", "--init", "default", "--peft", "--out", tuned}, short...)...)
	f, err := modelfile.Load(tuned)
	if err != nil {
		t.Fatal(err)
	}
	if f.Meta.Protocol != base.Meta.Protocol || f.Meta.Protocol.Clips != 2 || f.Meta.Protocol.Crops != 1 {
		t.Errorf("protocol %+v, want the init model's %+v", f.Meta.Protocol, base.Meta.Protocol)
	}
	if !slices.Equal(f.Meta.Labels["logits"], base.Meta.Labels["logits"]) {
		t.Errorf("labels %v, want the init model's", f.Meta.Labels["logits"])
	}
	want := "Fine-tuned from " + base.Meta.Name + " (--init default; inherited: protocol segment 2x1 (2 views), labels, description)"
	if !strings.HasPrefix(f.Meta.Description, base.Meta.Description) || !strings.Contains(f.Meta.Description, want) {
		t.Errorf("description %q, want the init model's followed by %q", f.Meta.Description, want)
	}
	if r := mustRun(t, "info", tuned); !strings.Contains(r.stdout, want) {
		t.Errorf("cast info does not say what the model was fine-tuned from:\n%s", r.stdout)
	}

	over := filepath.Join(dir, "over.safetensors")
	mustRun(t, append([]string{"train", "--init", "default-int8", "--views", "1x1", "--description", "mine", "--out", over}, short...)...)
	g, err := modelfile.Load(over)
	if err != nil {
		t.Fatal(err)
	}
	if g.Meta.Protocol.Clips != 1 || g.Meta.Protocol.Crops != 1 || g.Meta.Protocol.Sampling != base.Meta.Protocol.Sampling || g.Meta.Description != "mine" {
		t.Errorf("--views 1x1 --description mine: protocol %+v, description %q", g.Meta.Protocol, g.Meta.Description)
	}
	for name, w := range g.Weights {
		if w.DType != weights.F32 {
			t.Errorf("%s is %s: a model trained from default-int8 is float32", name, w.DType)
		}
	}
	if r := runCLI(t, append([]string{"train", "--init", "nope.safetensors", "--out", over}, short...)...); r.err == nil || !strings.Contains(r.err.Error(), "--init") {
		t.Errorf("--init of a missing file: %v", r.err)
	}
}
