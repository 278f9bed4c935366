package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/castvideo/castgo/cast/explain"
	"github.com/castvideo/castgo/cast/synth"
)

// TestExplainCommand writes two procedural clips with their boxes and runs cast explain on them: the JSON
// of one view, the PNG sheets, and the pointing game's table.
func TestExplainCommand(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "dataset", "--seed", "31337", "--clips", "2", "--boxes", "--out", dir)
	boxes, err := synth.ReadBoxes(filepath.Join(dir, synth.BoxesFile))
	if err != nil || len(boxes) != 2 || len(boxes["clip_000001.mp4"]) != synth.DefaultFrames {
		t.Fatalf("boxes.json: %v, %v", boxes, err)
	}
	clip := filepath.Join(dir, "clip_000001.mp4")

	r := mustRun(t, "explain", "--json", "--view", "1", "--method", "cast-rollout,grad-cam", clip)
	var got explain.Result
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if got.Video != clip || len(got.Views) != 1 || got.Views[0].View != 1 || len(got.Methods) != 2 {
		t.Fatalf("--json: video %q, views %+v, %d methods", got.Video, got.Views, len(got.Methods))
	}
	for name, maps := range got.Methods {
		if len(maps) != 4 {
			t.Fatalf("%s: %d maps, want 4 (the demo model's frames)", name, len(maps))
		}
		for k, m := range maps {
			if m.Frame != got.Views[0].Frames[k] || m.Rect != [4]float64{0, 0, 64, 64} || len(m.Grid) != 14 || len(m.Grid[13]) != 14 {
				t.Errorf("%s map %d: frame %d rect %v grid %d rows", name, k, m.Frame, m.Rect, len(m.Grid))
			}
		}
	}

	out := filepath.Join(dir, "maps")
	r = mustRun(t, "explain", "--out", out, "--scale", "1", clip)
	for view := range 2 {
		name := filepath.Join(out, "clip_000001.view"+string(rune('0'+view))+".png")
		if !strings.Contains(r.stdout, name) {
			t.Errorf("stdout does not name %s:\n%s", name, r.stdout)
		}
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != 4*64 || cfg.Height != (1+len(explain.Methods))*64 {
			t.Errorf("%s: %dx%d, %v; want 4 frames of 64 px by %d rows", name, cfg.Width, cfg.Height, err, 1+len(explain.Methods))
		}
	}

	r = mustRun(t, "explain", "--pointing", dir)
	for _, m := range explain.Methods {
		if !strings.Contains(r.stdout, "| "+m+" |") {
			t.Errorf("the pointing table has no row for %s:\n%s", m, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "all (4 views)") {
		t.Errorf("the pointing table does not count 4 views:\n%s", r.stdout)
	}

	r = mustRun(t, "explain", "--pointing", "seed:31337", "--clips", "1", "--method", "spatial-rollout")
	if !strings.Contains(r.stdout, "| spatial-rollout |") || !strings.Contains(r.stdout, "all (2 views)") {
		t.Errorf("--pointing seed:31337 --clips 1:\n%s", r.stdout)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"explain", "--json"}, "give one or more videos"},
		{[]string{"explain", clip}, "nothing to write"},
		{[]string{"explain", "--json", "--method", "saliency", clip}, `unknown method "saliency"`},
		{[]string{"explain", "--json", "--view", "5", clip}, "the plan has 2 views"},
		{[]string{"explain", "--pointing", dir, clip}, "give no videos"},
		{[]string{"explain", "--pointing", t.TempDir()}, "annotations.csv"},
		{[]string{"explain", "--pointing", "seed:x", "--clips", "2"}, "want seed:N"},
		{[]string{"explain", "--pointing", "seed:3"}, "needs --clips N"},
	} {
		r := runCLI(t, tc.args...)
		msg := ""
		if r.err != nil {
			msg = r.err.Error()
		}
		if !strings.Contains(msg+r.stderr, tc.want) {
			t.Errorf("cast %s: error %q, stderr %q; want %q", strings.Join(tc.args, " "), msg, r.stderr, tc.want)
		}
	}
}
