package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/castvideo/castgo/internal/golden"
	"github.com/castvideo/castgo/internal/npy"
	"github.com/castvideo/castgo/models"
)

// example is one command line of a command's Example: its arguments (without the leading "cast") and the file
// its stdout is redirected to ("" for none).
type example struct {
	line   string
	args   []string
	stdout string
}

// parseExamples reads an Example text: one `cast …` command a line, a trailing \ continuing it, an optional
// "# comment" and an optional "> FILE" redirect of stdout. Arguments are separated by spaces (no quoting).
func parseExamples(t *testing.T, cmd, text string) []example {
	t.Helper()
	var out []example
	text = strings.ReplaceAll(text, "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		ex := example{line: line}
		if before, after, ok := strings.Cut(line, " > "); ok {
			line, ex.stdout = before, strings.TrimSpace(after)
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "cast" {
			t.Errorf("cast %s: example line %q is not a cast command", cmd, ex.line)
			continue
		}
		ex.args = f[1:]
		out = append(out, ex)
	}
	return out
}

// TestHelpListsEveryCommand: `cast help` lists every command with its one-line summary.
func TestHelpListsEveryCommand(t *testing.T) {
	r := mustRun(t, "help")
	for _, c := range rootCmd.Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Short == "" || strings.Contains(c.Short, "\n") {
			t.Errorf("cast %s: summary %q is not one line", c.Name(), c.Short)
		}
		found := false
		for _, l := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == c.Name() && strings.Contains(l, c.Short) {
				found = true
			}
		}
		if !found {
			t.Errorf("cast help does not list %s with %q:\n%s", c.Name(), c.Short, r.stdout)
		}
	}
}

// TestHelpExamples runs every example of every command's --help, as written, in a folder laid out like a
// fresh clone after ./build.sh cli and ./build.sh wasm: site/ of the checkout, the shared goldens at
// ../shared/goldens, the module where cast finds it ($CASTGO_WASM_DIR here), and clips.npy, the one input
// no command writes (the normalised 1×1 view of an example clip, for the commands that read .npy clips).
func TestHelpExamples(t *testing.T) {
	needFFmpeg(t)
	wasmDir := testWASMDir(t)
	root := repoRoot(t)
	shared := golden.SharedDir()
	if shared == "" {
		t.Fatal("golden vectors not found: expected ../shared/goldens beside the checkout (or set CAST_SHARED)")
	}
	tmp := t.TempDir()
	work := filepath.Join(tmp, "castgo")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{filepath.Join(work, "site"): filepath.Join(root, "site"), filepath.Join(tmp, "shared"): shared} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(wasmDirEnv, wasmDir)
	f, err := models.Default()
	if err != nil {
		t.Fatal(err)
	}
	x, n, err := videoClips(context.Background(), f, filepath.Join(root, "site", "examples", "red-circle-growing.mp4"), "1x1")
	if err != nil {
		t.Fatal(err)
	}
	c := f.Meta.Config
	if err := npy.WriteFile(filepath.Join(work, "clips.npy"), npy.FromFloat32([]int{n, c.InChans, c.AllFrames, c.ImgSize, c.ImgSize}, x)); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)

	for _, c := range rootCmd.Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("cast %s --help has no example", c.Name())
			continue
		}
		for _, ex := range parseExamples(t, c.Name(), c.Example) {
			r := runCLI(t, ex.args...)
			if r.err != nil || r.exit != -1 {
				t.Errorf("cast %s example %q: exit %d, %v\nstderr:\n%s", c.Name(), ex.line, r.exit, r.err, tail(r.stderr, 2000))
				continue
			}
			if ex.stdout != "" {
				if err := os.WriteFile(ex.stdout, []byte(r.stdout), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}
