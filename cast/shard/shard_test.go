package shard_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/shard"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/castvideo/castgo/internal/golden"
)

// goldenFile builds the model file of a golden (hash-recipe weights), int8 when quantized.
func goldenFile(t testing.TB, name string, int8 bool) *modelfile.File {
	t.Helper()
	cfg := golden.Config(t, name)
	set := weights.Set{}
	for _, s := range cfg.StateDict() {
		set[s.Name] = weights.NewF32(s.Shape, hashinit.Tensor(1, s.Name, s.Shape))
	}
	if int8 {
		var err error
		if set, err = cast.QuantizeInt8(set, nil); err != nil {
			t.Fatal(err)
		}
	}
	labels := map[string][]string{}
	for i, h := range cfg.Heads() {
		for k := range cfg.HeadClasses()[i] {
			labels[h] = append(labels[h], fmt.Sprintf("class %d", k))
		}
	}
	return &modelfile.File{Meta: modelfile.Metadata{Name: "golden-" + name, Config: cfg, Labels: labels,
		Protocol: preprocess.Protocol{Sampling: preprocess.Segment, Clips: 1, Crops: 1}}, Weights: set}
}

func TestShardWriteVerify(t *testing.T) {
	f := goldenFile(t, "tiny", true)
	dir := t.TempDir()
	stages, err := cast.SplitStages(f.Meta.Config, 2)
	if err != nil {
		t.Fatal(err)
	}
	m, err := shard.Write(dir, f, stages)
	if err != nil {
		t.Fatal(err)
	}
	if m.Quantization != modelfile.QuantInt8 || len(m.Stages) != 2 {
		t.Fatalf("manifest: quantization %q, %d stages", m.Quantization, len(m.Stages))
	}
	if _, err := shard.Verify(dir); err != nil {
		t.Fatal(err)
	}
	// Each stage file is a model file holding exactly its stage's tensors, int8 kept int8.
	total := 0
	for i, e := range m.Stages {
		sf, err := modelfile.Load(filepath.Join(dir, e.File))
		if err != nil {
			t.Fatal(err)
		}
		if sf.Meta.Stage == nil || sf.Meta.Stage.Index != i || sf.Meta.Stage.Stage != stages[i] {
			t.Fatalf("%s: stage metadata %+v, want stage %d %s", e.File, sf.Meta.Stage, i, stages[i])
		}
		for name, w := range sf.Weights {
			if !stages[i].Owns(name) {
				t.Errorf("%s holds %s", e.File, name)
			}
			if want := f.Weights[name]; w.DType != want.DType || len(w.I8) != len(want.I8) {
				t.Errorf("%s: %s is %v, the model's %v", e.File, name, w.DType, want.DType)
			}
			for k := range w.I8 {
				if w.I8[k] != f.Weights[name].I8[k] {
					t.Fatalf("%s: %s differs at %d", e.File, name, k)
				}
			}
		}
		total += len(sf.Weights)
	}
	if total != len(f.Weights) {
		t.Errorf("the stage files hold %d tensors, the model %d", total, len(f.Weights))
	}
	// A whole model file loaded as a stage, or a stage file as a model, is refused.
	if _, err := shard.Split(&modelfile.File{Meta: modelfile.Metadata{Stage: &modelfile.StageMeta{}}}, stages); err == nil {
		t.Error("Split accepted a stage file")
	}
}

// TestShardRefusesTampering checks that a missing, altered or swapped stage file and a tampered manifest
// are refused with a message naming the stage.
func TestShardRefusesTampering(t *testing.T) {
	f := goldenFile(t, "tiny", true)
	stages, err := cast.SplitStages(f.Meta.Config, 3)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() string {
		dir := t.TempDir()
		if _, err := shard.Write(dir, f, stages); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	editManifest := func(dir string, edit func(m map[string]any)) {
		p := filepath.Join(dir, shard.ManifestName)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		data, _ = json.Marshal(m)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stage := func(m map[string]any, i int) map[string]any { return m["stages"].([]any)[i].(map[string]any) }
	cases := map[string]struct {
		tamper func(dir string)
		want   []string
	}{
		"missing": {func(dir string) { os.Remove(filepath.Join(dir, "stage-1.safetensors")) }, []string{`stage "stage-1"`, "no such file"}},
		"altered": {func(dir string) {
			p := filepath.Join(dir, "stage-2.safetensors")
			b, _ := os.ReadFile(p)
			b[len(b)-1] ^= 1
			os.WriteFile(p, b, 0o644)
		}, []string{`stage "stage-2"`, "sha256"}},
		"swapped files": {func(dir string) {
			a, b := filepath.Join(dir, "stage-0.safetensors"), filepath.Join(dir, "stage-1.safetensors")
			os.Rename(a, a+".tmp")
			os.Rename(b, a)
			os.Rename(a+".tmp", b)
		}, []string{`stage "stage-0"`}},
		"swapped with its manifest entries' hashes": {func(dir string) {
			a, b := filepath.Join(dir, "stage-0.safetensors"), filepath.Join(dir, "stage-1.safetensors")
			os.Rename(a, a+".tmp")
			os.Rename(b, a)
			os.Rename(a+".tmp", b)
			editManifest(dir, func(m map[string]any) {
				s0, s1 := stage(m, 0), stage(m, 1)
				s0["sha256"], s1["sha256"] = s1["sha256"], s0["sha256"]
				s0["size"], s1["size"] = s1["size"], s0["size"]
			})
		}, []string{`stage "stage-0"`, "holds stage 1 of 3"}},
		"manifest block range": {func(dir string) {
			editManifest(dir, func(m map[string]any) { stage(m, 1)["blocks"] = []int{1, 4} })
		}, []string{"stage 1", "starts at block 1"}},
		"manifest hash": {func(dir string) {
			editManifest(dir, func(m map[string]any) { stage(m, 2)["sha256"] = strings.Repeat("0", 64) })
		}, []string{`stage "stage-2"`, "sha256"}},
		"manifest stage dropped": {func(dir string) {
			editManifest(dir, func(m map[string]any) { m["stages"] = m["stages"].([]any)[:2] })
		}, []string{"only the last stage has the head"}},
		"manifest unknown field": {func(dir string) {
			editManifest(dir, func(m map[string]any) { m["extra"] = 1 })
		}, []string{"unknown field"}},
	}
	for name, tc := range cases {
		dir := fresh()
		tc.tamper(dir)
		_, err := shard.Verify(dir)
		if err == nil {
			t.Errorf("%s: Verify accepted it", name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", name, err, w)
			}
		}
	}
}

// baseTensorBytes is what stage st's tensors of a model of config cfg take in int8 (quantized matrices: 1
// byte a value and a float32 scale per row; the rest float32), from the state dict's shapes.
func baseTensorBytes(cfg cast.Config) func(cast.Stage) int64 {
	return func(st cast.Stage) int64 {
		var bytes int64
		for _, s := range st.StateDict(cfg) {
			n := int64(1)
			for _, d := range s.Shape {
				n *= int64(d)
			}
			if cast.Quantizable(s.Name, s.Shape) {
				bytes += n + 4*int64(s.Shape[0])
			} else {
				bytes += 4 * n
			}
		}
		return bytes
	}
}

// TestFewestStages checks the fit estimate's choice: the tiny golden fits one isolate; base-ssv2 int8 (its
// tensor sizes, computed without the weights) needs one stage per block: a one-block stage fits the
// 120 MiB budget, a two-block stage does not, and each stays well under the CPU budget.
func TestFewestStages(t *testing.T) {
	f := goldenFile(t, "tiny", true)
	stages, reps, err := shard.FewestStages(f, 0)
	if err != nil || len(stages) != 1 || !reps[0].OK {
		t.Fatalf("tiny: %d stages, %v", len(stages), err)
	}
	cfg := cast.Presets["base-ssv2"]
	bytesOf := baseTensorBytes(cfg)
	stages, reps, err = shard.ChooseStages(cfg, bytesOf, 0)
	if err != nil || len(stages) != 12 {
		t.Fatalf("base-ssv2 int8: %d stages, %v; want 12", len(stages), err)
	}
	const mib = 1 << 20
	for _, r := range reps {
		t.Logf("base-ssv2 int8 %s: weights %.1f, linear %.1f, total %.1f MiB (budget %d), CPU %.1f s", r.Stage,
			float64(r.Weights)/mib, float64(r.Linear)/mib, float64(r.Total)/mib, r.Budget/mib, float64(r.CPUMS)/1000)
		// A one-block base stage: ~17.7 MiB of int8 weights, 18.4 MiB of activations in and out and again on
		// the wire, a 27.7 MiB arena (the spatial MLP's hidden layer), 8 MiB of runtime: about 90 MiB of
		// linear memory, the ≤ 96 MiB the executor is being cut to; with the JS message and the module, 113 MiB
		// (the head stage answers logits: 72 MiB of linear memory).
		if !r.OK || r.Linear < 64*mib || r.Linear > 96*mib || r.Total > r.Budget {
			t.Errorf("%s: linear %.1f MiB, total %.1f MiB (budget %d), ok %v", r.Stage, float64(r.Linear)/mib, float64(r.Total)/mib, r.Budget/mib, r.OK)
		}
		// One base block is 32.3 GMAC: about 4 s of WASM CPU, under the 15 s a stage may take.
		if r.CPUMS < 3000 || r.CPUMS > 6000 {
			t.Errorf("%s: CPU estimate %d ms, want about 4 s", r.Stage, r.CPUMS)
		}
	}
	if got := reps[5]; got.Weights != bytesOf(got.Stage) || got.InOut != got.Wire || got.InOut != 2*(1576+1568)*768*4 {
		t.Errorf("middle stage parts: %+v", got)
	}
	// Two blocks per stage: the weights are counted once, and a second block's do not fit.
	two := cast.Stage{From: 4, To: 6}
	if r := shard.Fit(cfg, two, bytesOf(two), 0); r.OK || r.Total <= r.Budget || r.Weights != bytesOf(two) {
		t.Errorf("%s: total %.1f MiB fits the budget %d", two, float64(r.Total)/mib, r.Budget/mib)
	}
	// CPU alone: four base blocks are ~16 s, over the 15 s a stage may take.
	four := cast.Stage{From: 0, To: 4}
	if r := shard.Fit(cfg, four, 0, 0); r.OK || r.CPUMS <= shard.MaxStageCPUMS || r.CPUMS > shard.WorkersCPUMS {
		t.Errorf("%s: CPU %d ms, ok %v", four, r.CPUMS, r.OK)
	}
	// A model too big for one block per stage (a ViT-L-sized CAST: D 1024, 16 heads, 24 blocks) is refused
	// with the budgets named.
	large := cast.DefaultBase()
	large.EmbedDim, large.NumHeads, large.Depth = 1024, 16, 24
	if _, _, err := shard.ChooseStages(large, baseTensorBytes(large), 0); err == nil || !strings.Contains(err.Error(), "even one block per stage does not fit an isolate") || !strings.Contains(err.Error(), "budget 120 MiB") {
		t.Errorf("large: %v", err)
	}
}
