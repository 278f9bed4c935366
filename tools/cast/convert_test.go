package main

import (
	"encoding/json"
	"github.com/castvideo/castgo/backend/kernels"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/castvideo/castgo/cast/modelfile"
)

// convertGolden converts goldens/<name>/<ckpt> with its config.json into a model file in a temp dir.
func convertGolden(t *testing.T, name, ckpt string, extra ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".safetensors")
	args := append([]string{"convert", "--checkpoint", goldenFile(t, name, ckpt), "--config", goldenFile(t, name, "config.json"), "--out", out}, extra...)
	mustRun(t, args...)
	return out
}

// checkLogits runs `cast logits` with the given model arguments on the golden's input and compares every
// head's output with the golden files (want maps output file → golden file) within tol.
func checkLogits(t *testing.T, name string, modelArgs []string, want map[string]string, tol float64) {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"logits", "--input", goldenFile(t, name, "input.npy"), "--out-dir", dir}, modelArgs...)
	mustRun(t, args...)
	for got, ref := range want {
		gs, gv := readNPY(t, filepath.Join(dir, got))
		rs, rv := readNPY(t, goldenFile(t, name, ref))
		if len(gs) != 2 || gs[0] != rs[0] || gs[1] != rs[1] {
			t.Fatalf("%s: shape %v, want %v", got, gs, rs)
		}
		if d := maxAbsDiff(gv, rv); d > tol {
			t.Errorf("%s %s vs %s: max abs diff %g > %g", name, got, ref, d, tol)
		} else {
			t.Logf("%s %s vs %s: max abs diff %.3g", name, got, ref, d)
		}
	}
}

func TestConvertLogitsGoldens(t *testing.T) {
	tiny := convertGolden(t, "tiny", "model.pt")
	checkLogits(t, "tiny", []string{"--model", tiny}, map[string]string{"logits.npy": "logits.npy"}, 1e-4)
	tiny16 := convertGolden(t, "tiny", "model_fp16.pt")
	checkLogits(t, "tiny", []string{"--model", tiny16}, map[string]string{"logits.npy": "logits_model_fp16.npy"}, 1e-4)
	compo := convertGolden(t, "tiny_compo", "model.pt")
	checkLogits(t, "tiny_compo", []string{"--model", compo},
		map[string]string{"logits_noun.npy": "logits_noun.npy", "logits_verb.npy": "logits_verb.npy"}, 1e-4)
	compo16 := convertGolden(t, "tiny_compo", "model_fp16.pt")
	checkLogits(t, "tiny_compo", []string{"--model", compo16},
		map[string]string{"logits_noun.npy": "logits_noun_model_fp16.npy", "logits_verb.npy": "logits_verb_model_fp16.npy"}, 1e-4)

	// The converted files carry generic labels for 10 classes, EPIC labels for the 300/97 heads.
	f, err := modelfile.Load(tiny)
	if err != nil {
		t.Fatal(err)
	}
	if l := f.Meta.Labels["logits"]; len(l) != 10 || l[3] != "class 3" || f.Meta.Protocol.Clips != 2 || f.Meta.Protocol.Crops != 3 {
		t.Errorf("tiny model file: labels %v, protocol %+v", l, f.Meta.Protocol)
	}
	f, err = modelfile.Load(compo)
	if err != nil {
		t.Fatal(err)
	}
	if f.Meta.Labels["verb"][0] != "take" || f.Meta.Labels["noun"][0] != "tap" {
		t.Errorf("tiny_compo labels: verb %q, noun %q", f.Meta.Labels["verb"][0], f.Meta.Labels["noun"][0])
	}

	// Info on the converted file.
	r := mustRun(t, "info", tiny)
	for _, want := range []string{"579,434", "157,738", "10 classes", "segment 2x3", "quantization  none", "GMAC"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info %s lacks %q:\n%s", tiny, want, r.stdout)
		}
	}
}

func TestLogitsFromCheckpoint(t *testing.T) {
	checkLogits(t, "tiny", []string{"--checkpoint", goldenFile(t, "tiny", "model.pt"), "--config", goldenFile(t, "tiny", "config.json")},
		map[string]string{"logits.npy": "logits.npy"}, 1e-4)
}

func TestLogitsBadInput(t *testing.T) {
	// The small golden's input is [2,3,16,224,224]; the tiny model takes [B,3,4,56,56].
	r := runCLI(t, "logits", "--checkpoint", goldenFile(t, "tiny", "model.pt"), "--config", goldenFile(t, "tiny", "config.json"),
		"--input", goldenFile(t, "small", "input.npy"), "--out-dir", t.TempDir())
	if r.err == nil || !strings.Contains(r.err.Error(), "3 16 224 224]") || !strings.Contains(r.err.Error(), "[B, 3, 4, 56, 56]") {
		t.Errorf("wrong-shape input: err = %v", r.err)
	}
	r = runCLI(t, "logits", "--model", "default", "--input", filepath.Join(t.TempDir(), "none.npy"), "--out-dir", t.TempDir())
	if r.err == nil || !strings.Contains(r.err.Error(), "none.npy") {
		t.Errorf("missing input: err = %v", r.err)
	}
	r = runCLI(t, "logits", "--model", "default", "--checkpoint", "x.pt", "--input", "x.npy", "--out-dir", "d")
	if r.err == nil || !strings.Contains(r.err.Error(), "not both") {
		t.Errorf("--model with --checkpoint: err = %v", r.err)
	}
}

func TestConvertInt8(t *testing.T) {
	fp32 := convertGolden(t, "tiny", "model.pt")
	q := convertGolden(t, "tiny", "model.pt", "--quantize", "int8", "--name", "tiny-int8", "--views", "1x1")
	s32, err := os.Stat(fp32)
	if err != nil {
		t.Fatal(err)
	}
	s8, err := os.Stat(q)
	if err != nil {
		t.Fatal(err)
	}
	if s8.Size() >= s32.Size()/2 {
		t.Errorf("int8 file is %d bytes, fp32 %d: want less than half", s8.Size(), s32.Size())
	}
	f, err := modelfile.Load(q)
	if err != nil {
		t.Fatal(err)
	}
	if f.Meta.Quantization != modelfile.QuantInt8 || f.Meta.Name != "tiny-int8" || f.Meta.Protocol.Clips != 1 || f.Meta.Protocol.Crops != 1 {
		t.Errorf("int8 metadata: %+v", f.Meta)
	}
	// Per-channel int8 weights keep the tiny model's logits close to fp32 (logits are O(1) here).
	checkLogits(t, "tiny", []string{"--model", q}, map[string]string{"logits.npy": "logits.npy"}, 0.05)
	r := mustRun(t, "info", q, "--json")
	var info struct {
		Quantization string `json:"quantization"`
		ParamsTotal  int    `json:"params_total"`
		Kernels      string `json:"kernels"`
		Int8Kernels  string `json:"int8_kernels"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("info --json: %v\n%s", err, r.stdout)
	}
	if info.Quantization != "int8" || info.ParamsTotal != 579434 || info.Kernels != kernels.Tier() || info.Int8Kernels != kernels.Int8Kernels() {
		t.Errorf("info --json: %+v", info)
	}
}

func TestConvertErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.safetensors")
	cfg := goldenFile(t, "tiny", "config.json")

	// Truncated checkpoint.
	data, err := os.ReadFile(goldenFile(t, "tiny", "model.pt"))
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(dir, "truncated.pt")
	if err := os.WriteFile(trunc, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "convert", "--checkpoint", trunc, "--config", cfg, "--out", out)
	if r.err == nil || !strings.Contains(r.err.Error(), "truncated.pt") {
		t.Errorf("truncated checkpoint: err = %v", r.err)
	}

	// Wrong config: 12 classes instead of 10 → the head's shape mismatch is named.
	var raw map[string]any
	cfgData, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(cfgData, &raw); err != nil {
		t.Fatal(err)
	}
	raw["model"].(map[string]any)["num_classes"] = 12
	wrong := filepath.Join(dir, "wrong.json")
	b, _ := json.Marshal(raw)
	if err := os.WriteFile(wrong, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "convert", "--checkpoint", goldenFile(t, "tiny", "model.pt"), "--config", wrong, "--out", out)
	if r.err == nil || !strings.Contains(r.err.Error(), "head.weight is [10 64], want [12 64]") {
		t.Errorf("wrong config: err = %v", r.err)
	}

	// Missing checkpoint, missing config, bad flags.
	r = runCLI(t, "convert", "--checkpoint", filepath.Join(dir, "nope.pt"), "--config", cfg, "--out", out)
	if r.err == nil || !strings.Contains(r.err.Error(), "nope.pt") {
		t.Errorf("missing checkpoint: err = %v", r.err)
	}
	r = runCLI(t, "convert", "--checkpoint", goldenFile(t, "tiny", "model.pt"), "--config", filepath.Join(dir, "nope.json"), "--out", out)
	if r.err == nil || !strings.Contains(r.err.Error(), "nope.json") {
		t.Errorf("missing config: err = %v", r.err)
	}
	r = runCLI(t, "convert", "--checkpoint", goldenFile(t, "tiny", "model.pt"), "--config", cfg, "--out", out, "--quantize", "int4")
	if r.err == nil || !strings.Contains(r.err.Error(), "int4") {
		t.Errorf("--quantize int4: err = %v", r.err)
	}
	labels := filepath.Join(dir, "labels.txt")
	if err := os.WriteFile(labels, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "convert", "--checkpoint", goldenFile(t, "tiny", "model.pt"), "--config", cfg, "--out", out, "--labels", labels)
	if r.err == nil || !strings.Contains(r.err.Error(), "has 2 names but the logits head has 10 classes") {
		t.Errorf("short labels: err = %v", r.err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed convert left %s behind (stat err %v)", out, err)
	}
}

// TestConvertUnexpectedKeys checks that keys the official loader ignores (clip_proj) only warn.
func TestConvertUnexpectedKeys(t *testing.T) {
	tiny := convertGolden(t, "tiny", "model.pt")
	f, err := modelfile.Load(tiny)
	if err != nil {
		t.Fatal(err)
	}
	f.Weights["clip_proj"] = f.Weights["head.weight"]
	clean, unexpected, err := checkCheckpoint(f.Weights, f.Meta.Config)
	if err != nil || len(unexpected) != 1 || unexpected[0] != "clip_proj" || clean["clip_proj"] != nil || clean["head.weight"] == nil {
		t.Errorf("checkCheckpoint with clip_proj: %v, %v", unexpected, err)
	}
	delete(f.Weights, "head.bias")
	if _, _, err := checkCheckpoint(f.Weights, f.Meta.Config); err == nil || !strings.Contains(err.Error(), "1 missing: head.bias") {
		t.Errorf("checkCheckpoint without head.bias: %v", err)
	}
}

func TestInfoPresets(t *testing.T) {
	r := mustRun(t, "info", "base-ssv2")
	for _, want := range []string{"217,228,590", "45,205,038", "174 classes", "segment 2x3", "GMAC"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info base-ssv2 lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustRun(t, "info", "--config", "base-k400", "--json")
	var info infoReport
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatal(err)
	}
	if info.Protocol.Sampling != "dense" || info.Protocol.Clips != 5 || len(info.Heads) != 1 || info.Heads[0].Classes != 400 || info.GMACPerView < 100 {
		t.Errorf("info base-k400 --json: %+v", info)
	}
	r = mustRun(t, "info", "base-epic")
	if !strings.Contains(r.stdout, "head noun") || !strings.Contains(r.stdout, "head verb") {
		t.Errorf("info base-epic:\n%s", r.stdout)
	}
	r = mustRun(t, "info", "default")
	if !strings.Contains(r.stdout, "16 classes") || !strings.Contains(r.stdout, "embedded") {
		t.Errorf("info default:\n%s", r.stdout)
	}
	if r := runCLI(t, "info", goldenFile(t, "tiny", "model.pt")); r.err == nil || !strings.Contains(r.err.Error(), "--config") {
		t.Errorf("info on a non-preset checkpoint without --config: %v", r.err)
	}
	r = mustRun(t, "info", goldenFile(t, "tiny", "model.pt"), "--config", goldenFile(t, "tiny", "config.json"))
	if !strings.Contains(r.stdout, "579,434") {
		t.Errorf("info checkpoint:\n%s", r.stdout)
	}
}
