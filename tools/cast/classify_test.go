package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// jsonOutcome mirrors one entry of `cast classify --json` as a script reads it.
type jsonOutcome struct {
	Video  string `json:"video"`
	Error  string `json:"error"`
	Result *struct {
		Model string   `json:"model"`
		Views string   `json:"views"`
		Heads []string `json:"heads"`
		Top   map[string][]struct {
			Index int     `json:"index"`
			Label string  `json:"label"`
			Prob  float64 `json:"prob"`
		} `json:"top"`
		PerView []json.RawMessage `json:"per_view"`
		Frames  int               `json:"frames"`
	} `json:"result"`
}

// classifyJSON runs `cast classify --json` and decodes its one JSON document.
func classifyJSON(t *testing.T, args ...string) ([]jsonOutcome, cliResult) {
	t.Helper()
	r := runCLI(t, append([]string{"classify", "--json"}, args...)...)
	var out []jsonOutcome
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("classify --json output is not one JSON array: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return out, r
}

// checkOutcome checks one successful result: the number of views, probabilities and labels (generic
// "class N" names, or real names).
func checkOutcome(t *testing.T, o jsonOutcome, views, classes int, generic bool) {
	t.Helper()
	if o.Error != "" || o.Result == nil {
		t.Fatalf("%s: error %q", o.Video, o.Error)
	}
	r := o.Result
	if len(r.PerView) != views {
		t.Errorf("%s: %d per-view results, want %d (views %s)", o.Video, len(r.PerView), views, r.Views)
	}
	if len(r.Heads) != 1 || r.Heads[0] != "logits" || len(r.Top["logits"]) == 0 {
		t.Fatalf("%s: heads %v, top %v", o.Video, r.Heads, r.Top)
	}
	sum, prev := 0.0, 2.0
	for _, p := range r.Top["logits"] {
		if p.Prob < 0 || p.Prob > prev || p.Index < 0 || p.Index >= classes || p.Label == "" {
			t.Errorf("%s: bad prediction %+v", o.Video, p)
		}
		sum, prev = sum+p.Prob, p.Prob
	}
	if sum > 1+1e-9 {
		t.Errorf("%s: top probabilities sum to %g > 1", o.Video, sum)
	}
	for _, p := range r.Top["logits"] {
		if generic != strings.HasPrefix(p.Label, "class ") {
			t.Errorf("%s: label %q (generic names expected: %v)", o.Video, p.Label, generic)
		}
	}
}

func TestClassifyVideos(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	land := ffmpegVideo(t, dir, "landscape.mp4", 96, 64, 20, "-pix_fmt", "yuv420p")
	portrait := ffmpegVideo(t, dir, "portrait.mp4", 48, 80, 24, "-pix_fmt", "yuv420p")
	short := ffmpegVideo(t, dir, "short.mp4", 64, 64, 7, "-pix_fmt", "yuv420p")
	odd := ffmpegVideo(t, dir, "odd.mkv", 65, 47, 12, "-c:v", "ffv1")

	// The embedded default model (16 synth classes), fast 1x1 views.
	csvPath := filepath.Join(dir, "out.csv")
	out, r := classifyJSON(t, "--views", "1x1", "--top", "3", "--csv", csvPath, land, portrait, short, odd)
	if r.err != nil || r.exit != -1 || len(out) != 4 {
		t.Fatalf("classify: err %v, exit %d, %d results\nstderr: %s", r.err, r.exit, len(out), r.stderr)
	}
	for i, o := range out {
		if o.Video != []string{land, portrait, short, odd}[i] {
			t.Errorf("result %d is for %s", i, o.Video)
		}
		checkOutcome(t, o, 1, 16, false)
		if len(o.Result.Top["logits"]) != 3 {
			t.Errorf("%s: %d predictions, want --top 3", o.Video, len(o.Result.Top["logits"]))
		}
	}
	if out[2].Result.Frames != 7 {
		t.Errorf("short video: %d frames, want 7", out[2].Result.Frames)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 1+4*3 || strings.Join(rows[0], ",") != "video,rank,label,prob" || rows[1][1] != "1" {
		t.Errorf("csv: %v, %d rows: %v", err, len(rows), rows)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".out.csv.tmp-*")); len(tmp) != 0 {
		t.Errorf("--csv left temporary files behind: %v", tmp)
	}

	// The default protocol of the default model is 2 clips × 1 crop; 2x3 gives 6 views.
	out, _ = classifyJSON(t, short)
	checkOutcome(t, out[0], 2, 16, false)
	out, _ = classifyJSON(t, "--views", "2x3", "--batch", "3", portrait)
	checkOutcome(t, out[0], 6, 16, false)

	// A converted tiny golden model: 10 classes with generic names, its default protocol is 2x3.
	tiny := filepath.Join(dir, "tiny.safetensors")
	mustRun(t, "convert", "--checkpoint", goldenFile(t, "tiny", "model.pt"), "--config", goldenFile(t, "tiny", "config.json"), "--out", tiny)
	out, _ = classifyJSON(t, "--model", tiny, "--views", "1x3", land)
	checkOutcome(t, out[0], 3, 10, true)

	// Plain-text output.
	r = mustRun(t, "classify", "--views", "1x1", "--top", "2", odd)
	if !strings.Contains(r.stdout, "odd.mkv") || !strings.Contains(r.stdout, "1x1 views") || !strings.Contains(r.stdout, "%") {
		t.Errorf("text output:\n%s", r.stdout)
	}

	// Bad --views fails before any video.
	if r := runCLI(t, "classify", "--views", "5x3", land); r.err == nil || !strings.Contains(r.err.Error(), "at most 2 clips") {
		t.Errorf("--views 5x3 on a segment model: %v", r.err)
	}
}

func TestClassifyFolders(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	videos := filepath.Join(dir, "videos")
	frames := filepath.Join(dir, "frames")
	for _, d := range []string{videos, frames} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a := ffmpegVideo(t, videos, "a.mp4", 64, 48, 10, "-pix_fmt", "yuv420p")
	b := ffmpegVideo(t, videos, "b.webm", 48, 64, 10)
	if err := os.WriteFile(filepath.Join(videos, "notes.txt"), []byte("not a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	ffmpegVideo(t, frames, "f%03d.png", 64, 48, 6)
	out, r := classifyJSON(t, "--views", "1x1", videos, frames)
	if r.err != nil || len(out) != 3 {
		t.Fatalf("folders: err %v, %d results: %+v\nstderr: %s", r.err, len(out), out, r.stderr)
	}
	for i, want := range []string{a, b, frames} {
		if out[i].Video != want {
			t.Errorf("result %d is for %s, want %s", i, out[i].Video, want)
		}
		checkOutcome(t, out[i], 1, 16, false)
	}
	if out[2].Result.Frames != 6 {
		t.Errorf("frame folder: %d frames, want 6", out[2].Result.Frames)
	}
}

func TestClassifyBadInputs(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	good := ffmpegVideo(t, dir, "good.mp4", 64, 64, 8, "-pix_fmt", "yuv420p")
	one := ffmpegVideo(t, dir, "one.mp4", 64, 64, 1, "-pix_fmt", "yuv420p")
	text := filepath.Join(dir, "text.mp4")
	zero := filepath.Join(dir, "zero.mp4")
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(text, []byte("this is not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(zero, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.mp4")
	out, r := classifyJSON(t, "--views", "1x1", text, zero, one, good, missing, empty)
	if len(out) != 6 || r.exit != 1 || r.err == nil || !strings.Contains(r.err.Error(), "5 of 6 videos failed") {
		t.Fatalf("bad inputs: %d results, exit %d, err %v\nstderr: %s", len(out), r.exit, r.err, r.stderr)
	}
	checkOutcome(t, out[3], 1, 16, false)
	for i, want := range map[int]string{0: "cannot read", 1: "empty (0 bytes)", 2: "video has only 1 frame", 4: "no such file", 5: "no video files"} {
		if out[i].Result != nil || !strings.Contains(out[i].Error, want) {
			t.Errorf("%s: error %q, want it to mention %q", out[i].Video, out[i].Error, want)
		}
		if !strings.Contains(r.stderr, out[i].Video) {
			t.Errorf("stderr does not name %s:\n%s", out[i].Video, r.stderr)
		}
	}

	// Without ffmpeg on PATH every video fails with an install hint.
	t.Setenv("PATH", "")
	out, r = classifyJSON(t, good)
	if r.exit != 1 || len(out) != 1 || !strings.Contains(out[0].Error, "not found on PATH: install ffmpeg") {
		t.Errorf("no ffmpeg: exit %d, %+v", r.exit, out)
	}
}
