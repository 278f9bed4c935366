package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/checkpoint"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/internal/golden"
)

// compareGoldenModel converts goldens/NAME/model.pt with its config.json into a model file in dir (generic
// labels "class 0"…, the SSv2 protocol), as float32 or, with int8, quantized.
func compareGoldenModel(t *testing.T, dir, name string, int8 bool) string {
	t.Helper()
	cfg := golden.Config(t, name)
	set, err := checkpoint.Load(goldenFile(t, name, "model.pt"))
	if err != nil {
		t.Fatal(err)
	}
	quant := modelfile.QuantNone
	if int8 {
		if set, err = cast.QuantizeInt8(set, nil); err != nil {
			t.Fatal(err)
		}
		quant = modelfile.QuantInt8
	}
	labels := map[string][]string{}
	for h, head := range cfg.Heads() {
		for i := 0; i < cfg.HeadClasses()[h]; i++ {
			labels[head] = append(labels[head], fmt.Sprintf("class %d", i))
		}
	}
	f := &modelfile.File{Meta: modelfile.Metadata{Name: "golden-" + name, Config: cfg, Labels: labels,
		Protocol: preprocess.SSv2, Quantization: quant}, Weights: set}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.safetensors", name, quant))
	if err := modelfile.Save(path, f); err != nil {
		t.Fatal(err)
	}
	return path
}

// testWASMDir is a directory holding a built module (cast.wasm, wasm_exec.js) for the tests: $CASTGO_WASM_DIR,
// dist/site of this checkout when it holds one, else one built once per test binary by wasm/build.sh (which
// reads the toolchain from toolchain.env). The module is needed by CI's tests: failing to get one fails.
func testWASMDir(t *testing.T) string {
	t.Helper()
	testWASM.once.Do(func() {
		if d, err := findWASMDir(""); err == nil {
			testWASM.dir = d
			return
		}
		dir, err := os.MkdirTemp("", "cast-test-wasm-")
		if err != nil {
			testWASM.err = err
			return
		}
		testWASM.dir, testWASM.built = dir, true // removed by TestMain
		out, err := exec.Command(filepath.Join(repoRoot(t), "wasm", "build.sh"), dir).CombinedOutput()
		if err != nil {
			testWASM.err = fmt.Errorf("wasm/build.sh: %v\n%s", err, out)
		}
	})
	if testWASM.err != nil {
		t.Fatalf("building the WASM module: %v", testWASM.err)
	}
	return testWASM.dir
}

// testWASM is the module testWASMDir found or built.
var testWASM struct {
	once  sync.Once
	dir   string
	built bool // dir is a temporary build of this test binary
	err   error
}

// repoRoot is the checkout this test runs in (two levels above tools/cast).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// compareJSON runs cast compare --json and decodes the report.
func compareJSON(t *testing.T, args ...string) (compareReport, cliResult) {
	t.Helper()
	r := runCLI(t, append([]string{"compare", "--json"}, args...)...)
	var rep compareReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("cast compare --json output: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	return rep, r
}

func compareRowOf(t *testing.T, rep compareReport, backend string) compareRow {
	t.Helper()
	for _, row := range rep.Rows {
		if row.Backend == backend {
			return row
		}
	}
	t.Fatalf("no %s row in %+v", backend, rep.Rows)
	return compareRow{}
}

func TestCompare(t *testing.T) {
	dir := t.TempDir()
	wasmDir := testWASMDir(t)
	tiny := compareGoldenModel(t, dir, "tiny", false)
	tinyInput := goldenFile(t, "tiny", "input.npy")

	t.Run("tiny go,wasm table", func(t *testing.T) {
		r := mustRun(t, "compare", "--model", tiny, "--input", tinyInput, "--backends", "go,wasm,xla", "--allow-missing", "--wasm", wasmDir)
		if r.exit != -1 {
			t.Fatalf("exit status %d, want 0\n%s\n%s", r.exit, r.stdout, r.stderr)
		}
		t.Logf("\n%s", r.stdout)
		lines := strings.Split(r.stdout, "\n")
		wantRows := map[string]string{"go": "reference", "wasm": "ok", "xla": "NOT-RUN"}
		for backend, status := range wantRows {
			found := false
			for _, l := range lines {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == backend && f[1] == status {
					found = true
				}
			}
			if !found {
				t.Errorf("no %q row with status %q in:\n%s", backend, status, r.stdout)
			}
		}
		for _, s := range []string{"max |Δlogit|", "rel L2", "top-1", "top-5", "ms/view", "2/2", "the backends that ran are within tolerance; NOT RUN: xla"} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("table lacks %q:\n%s", s, r.stdout)
			}
		}
	})

	t.Run("tiny json", func(t *testing.T) {
		rep, r := compareJSON(t, "--model", tiny, "--input", tinyInput, "--backends", "go,simplego,wasm", "--wasm", wasmDir)
		if r.err != nil || r.exit != -1 || !rep.Pass || !rep.WithinTolerance || len(rep.NotRun) != 0 {
			t.Fatalf("err %v, exit %d, pass %v\n%s", r.err, r.exit, rep.Pass, r.stderr)
		}
		sg := compareRowOf(t, rep, "simplego")
		if !sg.Available || !sg.Pass || sg.RelL2 > compareTolFP32 || sg.RelL2 == 0 || sg.Top1Agree != sg.Rows || sg.Rows != 2 {
			t.Errorf("simplego row %+v (castgo and simplego are independent implementations: close, not bit-identical)", sg)
		}
		w := compareRowOf(t, rep, "wasm")
		if !w.Available || !w.Pass || w.RelL2 > compareTolFP32 || w.Top1Agree != w.Rows || w.Top5Agree != w.Rows || w.Rows != 2 || w.MSPerView <= 0 {
			t.Errorf("wasm row %+v", w)
		}
		t.Logf("tiny: go %.1f ms/view, simplego %.1f ms/view (rel L2 %g), wasm %.1f ms/view, wasm rel L2 %g, max |Δ| %g",
			compareRowOf(t, rep, "go").MSPerView, sg.MSPerView, sg.RelL2, w.MSPerView, w.RelL2, w.MaxAbsDiff)
	})

	t.Run("out of tolerance exits 1", func(t *testing.T) {
		r := runCLI(t, "compare", "--model", tiny, "--input", tinyInput, "--backends", "go,wasm", "--wasm", wasmDir, "--tolerance", "-1")
		if r.exit != 1 || r.err == nil {
			t.Fatalf("exit %d, err %v; want exit 1\n%s", r.exit, r.err, r.stdout)
		}
		if !strings.Contains(r.stdout, "FAIL") || !strings.Contains(r.stdout, "OUTSIDE TOLERANCE") || !strings.Contains(r.stderr, "outside its tolerance") {
			t.Errorf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		}
	})

	t.Run("int8 vs fp32 reference", func(t *testing.T) {
		tiny8 := compareGoldenModel(t, dir, "tiny", true)
		rep, r := compareJSON(t, "--model", tiny8, "--reference", tiny, "--input", tinyInput, "--backends", "go,wasm", "--wasm", wasmDir)
		if r.err != nil || r.exit != -1 || !rep.Pass {
			t.Fatalf("err %v, exit %d, report %+v\n%s", r.err, r.exit, rep, r.stderr)
		}
		ref := compareRowOf(t, rep, "go vs reference")
		if ref.Tolerance != compareTolInt8 || !ref.NeedTop1 || ref.RelL2 == 0 || ref.RelL2 > compareTolInt8 {
			t.Errorf("reference row %+v", ref)
		}
		w := compareRowOf(t, rep, "wasm")
		// the same logits, bit for bit: every kernel tier computes an int8 model with the same rounded operations
		if w.Tolerance != compareTolInt8WASM || w.RelL2 != 0 || w.MaxAbsDiff != 0 || !w.Pass {
			t.Errorf("int8 wasm vs int8 go: %+v", w)
		}
		t.Logf("tiny int8 vs fp32: rel L2 %.4f, max |Δ| %.4g; int8 wasm vs int8 go: rel L2 %.3g, max |Δ| %.3g", ref.RelL2, ref.MaxAbsDiff, w.RelL2, w.MaxAbsDiff)
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--model", tiny}, "--input (or --video) are required"},
			{[]string{"--model", tiny, "--input", tinyInput, "--video", "x.mp4"}, "not both"},
			{[]string{"--model", tiny, "--input", tinyInput, "--views", "1x1"}, "--views goes with --video"},
			{[]string{"--model", "default", "--video", filepath.Join(dir, "missing.mp4")}, "--video"},
			{[]string{"--model", tiny, "--input", tinyInput, "--backends", "go,cuda"}, `unknown backend "cuda"`},
			{[]string{"--model", tiny, "--input", goldenFile(t, "small", "logits.npy")}, "has shape"},
			{[]string{"--model", tiny, "--input", tinyInput, "--backends", "go", "--reference", "default"}, "does not have the shape"},
		} {
			r := runCLI(t, append([]string{"compare"}, tc.args...)...)
			if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("%v: error %v, want %q", tc.args, r.err, tc.want)
			}
		}
	})

	t.Run("small go,wasm", func(t *testing.T) {
		if testing.Short() {
			t.Skip("small golden on WASM takes about a minute (-short)")
		}
		small := compareGoldenModel(t, dir, "small", false)
		rep, r := compareJSON(t, "--model", small, "--input", goldenFile(t, "small", "input.npy"), "--backends", "go,wasm", "--wasm", wasmDir)
		if r.err != nil || r.exit != -1 || !rep.Pass {
			t.Fatalf("err %v, exit %d, report %+v\n%s", r.err, r.exit, rep, r.stderr)
		}
		w := compareRowOf(t, rep, "wasm")
		if w.RelL2 > compareTolFP32 || w.Top1Agree != w.Rows {
			t.Errorf("wasm row %+v", w)
		}
		t.Logf("small: go %.1f ms/view, wasm %.1f ms/view, wasm rel L2 %g, max |Δ| %g",
			compareRowOf(t, rep, "go").MSPerView, w.MSPerView, w.RelL2, w.MaxAbsDiff)
	})
}

// TestCompareNotRun checks that a requested backend that cannot run is reported as not run, never as
// passing: the summary says so and the exit status is 1 unless --allow-missing; the default --backends run
// only what can run here. The subtests that need XLA to be missing are skipped where it is available.
func TestCompareNotRun(t *testing.T) {
	xla, _ := infer.XLAAvailable()
	needNoXLA := func(t *testing.T) {
		if xla {
			t.Skip("XLA is available here; this subtest needs it missing")
		}
	}
	dir := t.TempDir()
	tiny := compareGoldenModel(t, dir, "tiny", false)
	tinyInput := goldenFile(t, "tiny", "input.npy")
	nowhere := filepath.Join(dir, "nowhere")

	t.Run("requested xla missing: table, exit 1", func(t *testing.T) {
		needNoXLA(t)
		r := runCLI(t, "compare", "--model", tiny, "--input", tinyInput, "--backends", "go,xla")
		if r.exit != 1 || r.err == nil {
			t.Fatalf("exit %d, err %v; want exit 1\n%s", r.exit, r.err, r.stdout)
		}
		if strings.Contains(r.stdout, "all backends within tolerance") || !strings.Contains(r.stdout, "INCOMPLETE: requested backend(s) NOT RUN: xla") {
			t.Errorf("summary:\n%s", r.stdout)
		}
		found := false
		for _, l := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "xla" {
				found = f[1] == "NOT-RUN"
			}
		}
		if !found {
			t.Errorf("no xla NOT-RUN row:\n%s", r.stdout)
		}
		if !strings.Contains(r.stderr, "requested backend(s) not run: xla") || !strings.Contains(r.stderr, "--allow-missing") {
			t.Errorf("stderr:\n%s", r.stderr)
		}
	})

	t.Run("requested wasm missing: json, exit 1", func(t *testing.T) {
		rep, r := compareJSON(t, "--model", tiny, "--input", tinyInput, "--backends", "go,wasm", "--wasm", nowhere)
		if r.exit != 1 || rep.Pass || !rep.WithinTolerance || rep.MissingAllowed || len(rep.NotRun) != 1 || rep.NotRun[0] != "wasm" {
			t.Fatalf("exit %d, report %+v", r.exit, rep)
		}
		w := compareRowOf(t, rep, "wasm")
		if w.Available || w.Pass || w.Status != "not run" || !strings.Contains(w.Note, "./build.sh wasm") || !strings.Contains(w.Note, nowhere) {
			t.Errorf("wasm row %+v", w)
		}
		if g := compareRowOf(t, rep, "go"); g.Status != "reference" {
			t.Errorf("go row %+v", g)
		}
	})

	t.Run("--allow-missing", func(t *testing.T) {
		rep, r := compareJSON(t, "--model", tiny, "--input", tinyInput, "--backends", "go,wasm", "--wasm", nowhere, "--allow-missing")
		if r.err != nil || r.exit != -1 || !rep.Pass || !rep.MissingAllowed || strings.Join(rep.NotRun, ",") != "wasm" {
			t.Fatalf("err %v, exit %d, report %+v", r.err, r.exit, rep)
		}
		if row := compareRowOf(t, rep, "wasm"); row.Pass || row.Status != "not run" {
			t.Errorf("wasm row %+v", row)
		}
	})

	t.Run("--allow-missing xla", func(t *testing.T) {
		needNoXLA(t)
		r := mustRun(t, "compare", "--model", tiny, "--input", tinyInput, "--backends", "go,xla", "--allow-missing")
		if r.exit != -1 || strings.Contains(r.stdout, "all backends within tolerance") || !strings.Contains(r.stdout, "NOT RUN: xla") {
			t.Errorf("exit %d, stdout:\n%s", r.exit, r.stdout)
		}
	})

	t.Run("default backends: what can run here", func(t *testing.T) {
		rep, r := compareJSON(t, "--model", tiny, "--input", tinyInput, "--wasm", nowhere)
		if r.err != nil || r.exit != -1 || !rep.Pass || len(rep.NotRun) != 0 {
			t.Fatalf("err %v, exit %d, report %+v", r.err, r.exit, rep)
		}
		var ran []string
		for _, row := range rep.Rows {
			ran = append(ran, row.Backend)
		}
		want := "go"
		if xla {
			want = "go,xla"
		} else if !strings.Contains(r.stderr, "xla left out of the default backends") {
			t.Errorf("stderr does not say why xla was left out:\n%s", r.stderr)
		}
		if strings.Join(ran, ",") != want || !strings.Contains(r.stderr, "wasm left out of the default backends") {
			t.Errorf("default backends ran %v, want %s; stderr:\n%s", ran, want, r.stderr)
		}
	})

	t.Run("only go: complete", func(t *testing.T) {
		r := mustRun(t, "compare", "--model", tiny, "--input", tinyInput, "--backends", "go")
		if r.exit != -1 || !strings.Contains(r.stdout, "all backends within tolerance") {
			t.Errorf("exit %d, stdout:\n%s", r.exit, r.stdout)
		}
	})
}

// TestCompareVideo compares native and WASM on a video file: the official preprocessing makes one clip per
// test view of the model's protocol (the default model's segment 2×1: two clips), or of --views.
func TestCompareVideo(t *testing.T) {
	needFFmpeg(t)
	wasmDir := testWASMDir(t)
	clip := filepath.Join(repoRoot(t), "site", "examples", "red-circle-growing.mp4")
	rep, r := compareJSON(t, "--model", "default", "--video", clip, "--backends", "go,wasm", "--wasm", wasmDir)
	if r.err != nil || r.exit != -1 || !rep.Pass || rep.Batch != 2 || rep.Input != clip {
		t.Fatalf("err %v, exit %d, report %+v\n%s", r.err, r.exit, rep, r.stderr)
	}
	if w := compareRowOf(t, rep, "wasm"); !w.Pass || w.RelL2 > compareTolFP32 || w.Rows != 2 || w.Top1Agree != 2 {
		t.Errorf("wasm row %+v", w)
	}
	rep, r = compareJSON(t, "--model", "default-int8", "--reference", "default", "--video", clip, "--video", clip, "--views", "1x1", "--backends", "go")
	if r.err != nil || !rep.Pass || rep.Batch != 2 {
		t.Fatalf("two videos at 1x1: err %v, report %+v\n%s", r.err, rep, r.stderr)
	}
	if ref := compareRowOf(t, rep, "go vs reference"); !ref.Pass || ref.Top1Agree != 2 {
		t.Errorf("int8 vs fp32 on the video: %+v", ref)
	}
}

// TestCompareVideoWithoutGo is the user with only dist/cast and dist/site and no Go on PATH: cast compare
// --video clip.mp4 --backends go,wasm finds the module beside the executable (dist/site) and runs, from a
// folder outside any checkout, with a PATH that holds only node, ffmpeg and ffprobe.
func TestCompareVideoWithoutGo(t *testing.T) {
	needFFmpeg(t)
	wasmDir := testWASMDir(t)
	tmp := t.TempDir()
	dist := filepath.Join(tmp, "dist")
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dist, "cast"), ".") // as ./build.sh cli
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	copyFile := func(src, dst string) {
		t.Helper()
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range wasmModuleFiles {
		copyFile(filepath.Join(wasmDir, f), filepath.Join(dist, "site", f))
	}
	work := filepath.Join(tmp, "work")
	copyFile(filepath.Join(repoRoot(t), "site", "examples", "red-circle-growing.mp4"), filepath.Join(work, "clip.mp4"))
	path := filepath.Join(tmp, "path")
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"node", "ffmpeg", "ffprobe"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s not on PATH: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(path, tool)); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=" + path, "HOME=" + tmp}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(filepath.Join(dist, "cast"), "compare", "--model", "default", "--video", "clip.mp4", "--backends", "go,wasm", "--json")
	cmd.Dir, cmd.Env = work, env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dist/cast compare --video clip.mp4 --backends go,wasm without Go: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var rep compareReport
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if w := compareRowOf(t, rep, "wasm"); !rep.Pass || rep.Batch != 2 || !w.Pass || w.Rows != 2 {
		t.Errorf("report %+v", rep)
	}
}
