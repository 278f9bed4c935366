package main

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/castvideo/castgo/internal/golden"
	"github.com/castvideo/castgo/internal/npy"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// lastExit is the status the last command asked exitProcess for (-1: none).
var lastExit = -1

func TestMain(m *testing.M) {
	exitProcess = func(code int) { lastExit = code }
	code := m.Run()
	if testWASM.built {
		os.RemoveAll(testWASM.dir)
	}
	os.Exit(code)
}

// cliResult is what one in-process `cast` invocation produced.
type cliResult struct {
	stdout, stderr string
	err            error
	exit           int // status requested through exitProcess, -1 when none
}

// runCLI runs the cast command in-process with args, every flag reset to its default first (cobra keeps
// flag values between executions of the same command tree).
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	resetFlags(rootCmd)
	var out, errb bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&errb)
	rootCmd.SetArgs(args)
	lastExit = -1
	_, err := rootCmd.ExecuteC()
	return cliResult{stdout: out.String(), stderr: errb.String(), err: err, exit: lastExit}
}

// mustRun runs the command and fails the test when it returns an error.
func mustRun(t *testing.T, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, args...)
	if r.err != nil {
		t.Fatalf("cast %s: %v\nstderr:\n%s", strings.Join(args, " "), r.err, r.stderr)
	}
	return r
}

func resetFlags(c *cobra.Command) {
	reset := func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			_ = sv.Replace(nil) // Set would append to a repeatable flag (whose defaults are all empty)
		} else {
			_ = f.Value.Set(f.DefValue)
		}
		f.Changed = false
	}
	c.Flags().VisitAll(reset)
	c.PersistentFlags().VisitAll(reset)
	for _, sub := range c.Commands() {
		resetFlags(sub)
	}
}

// readNPY reads a float32 .npy file.
func readNPY(t *testing.T, path string) ([]int, []float32) {
	t.Helper()
	a, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return a.Shape, v
}

// maxAbsDiff is the largest |a[i]-b[i]| (Inf when the lengths differ).
func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// goldenFile is the path of a file under the shared goldens (failing when they are missing).
func goldenFile(t *testing.T, elem ...string) string {
	t.Helper()
	return golden.Path(t, append([]string{"goldens"}, elem...)...)
}

// needFFmpeg fails tests that encode videos when ffmpeg or ffprobe is missing: CI installs both (.ci/run), so a
// missing tool is a broken machine, not a reason to skip.
func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not on PATH (apt-get install ffmpeg; .ci/run installs it)", bin)
		}
	}
}

// ffmpegVideo encodes a testsrc2 video of frames frames of w×h pixels into dir/name.
func ffmpegVideo(t *testing.T, dir, name string, w, h, frames int, extra ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	args := []string{"-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc2=size=" + strconv.Itoa(w) + "x" + strconv.Itoa(h) + ":rate=10",
		"-frames:v", strconv.Itoa(frames)}
	args = append(append(args, extra...), path)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
	return path
}
