package labels

import (
	"testing"

	"github.com/castvideo/castgo/cast"
)

func TestBuiltinSizes(t *testing.T) {
	for name, n := range map[string]int{SSv2: 174, K400: 400, EPICVerbs: 97, EPICNouns: 300} {
		names, err := Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != n {
			t.Errorf("%s: %d names, want %d", name, len(names), n)
		}
		seen := map[string]bool{}
		for _, s := range names {
			if seen[s] {
				t.Errorf("%s: duplicate name %q", name, s)
			}
			seen[s] = true
		}
	}
	if _, err := Builtin("nope"); err == nil {
		t.Error("Builtin(nope) gave no error")
	}
}

func TestForConfig(t *testing.T) {
	got, ok := ForConfig(cast.Presets["base-ssv2"])
	if !ok || len(got["logits"]) != 174 || got["logits"][0] != "Approaching something with your camera" {
		t.Errorf("base-ssv2: ok=%v, %d names", ok, len(got["logits"]))
	}
	got, ok = ForConfig(cast.Presets["base-k400"])
	if !ok || len(got["logits"]) != 400 || got["logits"][0] != "abseiling" {
		t.Errorf("base-k400: ok=%v, %d names", ok, len(got["logits"]))
	}
	got, ok = ForConfig(cast.Presets["base-epic"])
	if !ok || len(got["noun"]) != 300 || len(got["verb"]) != 97 || got["verb"][0] != "take" || got["noun"][0] != "tap" {
		t.Errorf("base-epic: ok=%v, %d nouns, %d verbs", ok, len(got["noun"]), len(got["verb"]))
	}
	cfg := cast.DemoConfig()
	cfg.NumClasses = 10
	got, ok = ForConfig(cfg)
	if ok || len(got["logits"]) != 10 || got["logits"][9] != "class 9" {
		t.Errorf("10 classes: ok=%v, %v", ok, got["logits"])
	}
	// Built-in lists are copies: changing one must not change the next caller's.
	got, _ = ForConfig(cast.Presets["base-ssv2"])
	got["logits"][0] = "changed"
	again, _ := ForConfig(cast.Presets["base-ssv2"])
	if again["logits"][0] == "changed" {
		t.Error("ForConfig returned a shared slice")
	}
}
