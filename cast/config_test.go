package cast

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigBounds: every field is bounded to what a real model can have, so a config read from an
// untrusted file cannot ask for absurd sizes; the presets stay valid.
func TestConfigBounds(t *testing.T) {
	for name, c := range Presets {
		if err := c.Validate(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	cases := []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"depth 2^30", func(c *Config) { c.Depth = 1 << 30 }, "depth 1073741824 is out of range"},
		{"depth 65", func(c *Config) { c.Depth = 65 }, "depth 65"},
		{"zero depth", func(c *Config) { c.Depth = 0 }, "must be positive"},
		{"huge embed dim", func(c *Config) { c.EmbedDim, c.NumHeads = 1<<20, 16 }, "embed_dim 1048576 is out of range"},
		{"zero heads", func(c *Config) { c.NumHeads = 0 }, "num_heads (0) must be positive"},
		{"negative heads", func(c *Config) { c.NumHeads = -12 }, "must be positive"},
		{"too many heads", func(c *Config) { c.EmbedDim, c.NumHeads = 8192, 512 }, "num_heads 512"},
		{"heads do not divide", func(c *Config) { c.NumHeads = 7 }, "not divisible"},
		{"huge frames", func(c *Config) { c.AllFrames = 1 << 30 }, "all_frames 1073741824 is out of range"},
		{"odd frames", func(c *Config) { c.AllFrames = 15 }, "even"},
		{"image not a multiple of patch", func(c *Config) { c.ImgSize = 225 }, "14×14"},
		{"huge patch", func(c *Config) { c.ImgSize, c.PatchSize = 14<<20, 1<<20 }, "out of range"},
		{"huge in_chans", func(c *Config) { c.InChans = 1 << 20 }, "in_chans 1048576"},
		{"huge classes", func(c *Config) { c.NumClasses = 1 << 30 }, "class counts"},
		{"negative noun classes", func(c *Config) { c.NounClasses = -1 }, "class counts"},
		{"huge verb classes", func(c *Config) { c.Composition, c.NumClasses, c.NounClasses, c.VerbClasses = true, 0, 300, 1<<40 }, "class counts"},
		{"huge mlp ratio", func(c *Config) { c.MLPRatio = 1e9 }, "mlp_ratio"},
		{"NaN adapter ratio", func(c *Config) { c.AdapterRatio = math.NaN() }, "adapter_ratio"},
		{"huge down ratio", func(c *Config) { c.DownRatio = 768 }, "down_ratio 768"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultBase()
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	// ParseConfig applies the bounds too.
	if _, err := ParseConfig([]byte(`{"model": {"depth": 1073741824}}`)); err == nil || !strings.Contains(err.Error(), "depth") {
		t.Fatalf("ParseConfig accepted depth 2^30: %v", err)
	}
}

// TestMatchedExpertConfigs: the widened single-expert configs of docs/experts (the matched-size comparison in
// docs/demo-model.md) parse, keep their ablation and are within 3% of CAST's parameter count; the B-CAST
// width rule (embed_dim/down_ratio a multiple of num_heads) binds CAST only.
func TestMatchedExpertConfigs(t *testing.T) {
	castParams, _ := DemoConfig().ParamCounts()
	if castParams != 89408 {
		t.Fatalf("demo CAST has %d parameters, want 89,408", castParams)
	}
	for _, tc := range []struct {
		file, experts string
		dim, params   int
	}{{"spatial-wide.json", "spatial", 52, 87181}, {"temporal-wide.json", "temporal", 56, 91254}} {
		data, err := os.ReadFile(filepath.Join("..", "docs", "experts", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseConfig(data)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		n, _ := c.ParamCounts()
		if c.Experts != tc.experts || c.EmbedDim != tc.dim || n != tc.params || math.Abs(float64(n-castParams)) > 0.03*float64(castParams) {
			t.Errorf("%s: experts %q, D=%d, %d parameters; want %q, D=%d, %d (CAST %d)", tc.file, c.Experts, c.EmbedDim, n, tc.experts, tc.dim, tc.params, castParams)
		}
		c.Experts = ""
		if err := c.Validate(); tc.dim == 52 && (err == nil || !strings.Contains(err.Error(), "B-CAST width")) {
			t.Errorf("CAST with D=52 and 4 heads (B-CAST width 26): %v, want the B-CAST width error", err)
		}
	}
	c := DemoConfig()
	c.Experts, c.DownRatio = "spatial", 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "down_ratio must be positive") {
		t.Errorf("down_ratio 0: %v", err)
	}
}
