package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/models"
	"github.com/spf13/cobra"
)

// Default tolerances of cast compare, as relative L2 error of the logits against the reference.
const (
	compareTolFP32 = 1e-5 // another backend vs native Go, same model (WASM runs the same Go code)
	compareTolXLA  = 1e-4 // XLA's fused CPU kernels sum in another order
	compareTolInt8 = 0.02 // an int8 model vs its fp32 --reference (and the same top-1)
)

// compareOptions are the flags of cast compare.
type compareOptions struct {
	model, input, backends, reference, wasmDir string
	json                                       bool
	repeat                                     int
	tolerance                                  float64 // hidden: overrides every bound when set (tests force failures)
}

// compareRow is one line of the report: a backend's logits against the reference.
type compareRow struct {
	Backend     string  `json:"backend"`
	Available   bool    `json:"available"`
	Note        string  `json:"note"` // backend description, or why it is unavailable / failed
	MaxAbsDiff  float64 `json:"max_abs_diff"`
	RelL2       float64 `json:"rel_l2"`
	Top1Agree   int     `json:"top1_agree"` // rows (clip × head) whose argmax matches the reference
	Top5Agree   int     `json:"top5_agree"` // rows whose top-5 class sets match
	Rows        int     `json:"rows"`
	MSPerView   float64 `json:"ms_per_view"`
	Tolerance   float64 `json:"tolerance"` // bound on RelL2; 0 for the reference row itself
	NeedTop1    bool    `json:"need_same_top1"`
	Pass        bool    `json:"pass"`
	IsReference bool    `json:"is_reference"`
}

// compareReport is the --json output of cast compare.
type compareReport struct {
	Model        string       `json:"model"`
	Quantization string       `json:"quantization"`
	Input        string       `json:"input"`
	Batch        int          `json:"batch"`
	Reference    string       `json:"reference,omitempty"`
	Rows         []compareRow `json:"rows"`
	Pass         bool         `json:"pass"`
}

// compareLogits is one run's output: logits per head ([B·classes] each) and the time per clip.
type compareLogits struct {
	heads     [][]float32
	msPerView float64
}

func init() { rootCmd.AddCommand(newCompareCmd()) }

// newCompareCmd builds the `cast compare` command.
func newCompareCmd() *cobra.Command {
	var o compareOptions
	cmd := &cobra.Command{
		Use:   "compare --model MODEL --input CLIP.npy [--backends go,wasm,xla] [--reference FP32MODEL] [--json]",
		Short: "Run one clip on every backend (pure Go, WASM under Node, XLA) and compare the logits",
		Long: `Compare runs the same normalised clips — a float32 .npy [B, 3, T, H, W] — through the model on each
backend and reports, against the native pure-Go run: the largest absolute logit difference, the relative L2
error, how many clip×head rows agree on the top-1 class and on the top-5 set, and the time per view.

Backends: go (in-process, always run: it is the reference), wasm (the WebAssembly module run under Node;
--wasm DIR names a directory from wasm/build.sh holding cast.wasm and wasm_exec.js, else it is built with the
Go toolchain from this source tree) and xla (needs a binary built with -tags xla and a PJRT plugin). A
backend that is not available gets a row saying why.

Bounds: relative L2 ≤ 1e-5 for wasm (≤ 1e-4 for xla). With --reference FP32MODEL the native run of the
model is also compared with that float32 model: an int8 model must stay within 2% relative L2 with the same
top-1 on every row (a float32 model within 1e-5). The exit status is 1 when a row is outside its bound.`,
		Example: `  cast compare --model goldens-tiny.safetensors --input goldens/tiny/input.npy
  cast compare --model default-int8 --reference default --input clip.npy --backends go,wasm --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := runCompare(o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if o.json {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printCompare(cmd.OutOrStdout(), rep)
			}
			if !rep.Pass {
				return exitPartialFailure(cmd, "compare: a backend is outside its tolerance")
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.model, "model", "", "model file (or default, default-int8 for the embedded models) (required)")
	fl.StringVar(&o.input, "input", "", "float32 .npy clips [B, 3, T, H, W], normalised (required)")
	fl.StringVar(&o.backends, "backends", "go,wasm,xla", "comma-separated backends to compare: go, wasm, xla")
	fl.StringVar(&o.reference, "reference", "", "float32 model to compare the native run with (int8 bound: 2% relative L2, same top-1)")
	fl.StringVar(&o.wasmDir, "wasm", os.Getenv("CASTGO_WASM_DIR"), "directory holding cast.wasm and wasm_exec.js (wasm/build.sh); default $CASTGO_WASM_DIR, else build it")
	fl.BoolVar(&o.json, "json", false, "print the report as JSON")
	fl.IntVar(&o.repeat, "repeat", 1, "runs per backend; the time is the fastest (the first includes graph compilation)")
	fl.Float64Var(&o.tolerance, "tolerance", 0, "override every relative L2 bound (for tests; a negative value always fails)")
	_ = fl.MarkHidden("tolerance")
	return cmd
}

// runCompare runs the comparison and builds the report; log gets progress lines.
func runCompare(o compareOptions, log io.Writer) (*compareReport, error) {
	if o.model == "" || o.input == "" {
		return nil, errors.New("--model and --input are required")
	}
	if o.repeat < 1 {
		return nil, fmt.Errorf("--repeat is %d, want at least 1", o.repeat)
	}
	var want []string
	for _, b := range strings.Split(o.backends, ",") {
		b = strings.TrimSpace(b)
		switch b {
		case "":
		case "go", "wasm", "xla":
			if !slices.Contains(want, b) {
				want = append(want, b)
			}
		default:
			return nil, fmt.Errorf("--backends: unknown backend %q (use go, wasm, xla)", b)
		}
	}
	f, err := loadModelFile(o.model)
	if err != nil {
		return nil, err
	}
	x, batch, err := readClips(o.input, f.Meta.Config)
	if err != nil {
		return nil, err
	}
	rep := &compareReport{Model: f.Meta.Name, Quantization: f.Meta.Quantization, Input: o.input, Batch: batch,
		Reference: o.reference, Pass: true}
	tol := func(def float64) float64 {
		if o.tolerance != 0 {
			return o.tolerance
		}
		return def
	}

	fmt.Fprintf(log, "compare: go: running %d clip(s)\n", batch)
	native, desc, err := compareNative("go", f, x, batch, o.repeat)
	if err != nil {
		return nil, fmt.Errorf("native Go run: %w", err)
	}
	classes := f.Meta.Config.HeadClasses()
	ref := compareRow{Backend: "go", Available: true, Note: desc, Pass: true, IsReference: true, MSPerView: native.msPerView, Rows: batch * len(classes)}
	ref.Top1Agree, ref.Top5Agree = ref.Rows, ref.Rows
	rep.Rows = append(rep.Rows, ref)

	for _, b := range want {
		var got *compareLogits
		var note string
		var bound float64
		switch b {
		case "go":
			continue
		case "wasm":
			bound = tol(compareTolFP32)
			fmt.Fprintln(log, "compare: wasm: running under Node")
			got, note, err = compareWASM(o, f, x, batch)
		case "xla":
			bound = tol(compareTolXLA)
			if ok, why := infer.XLAAvailable(); !ok {
				rep.Rows = append(rep.Rows, compareRow{Backend: "xla", Note: why, Pass: true})
				continue
			}
			fmt.Fprintln(log, "compare: xla: running")
			got, note, err = compareNative("xla", f, x, batch, o.repeat)
		}
		if errors.Is(err, errCompareUnavailable) {
			rep.Rows = append(rep.Rows, compareRow{Backend: b, Note: strings.TrimPrefix(err.Error(), errCompareUnavailable.Error()+": "), Pass: true})
			continue
		}
		if err != nil {
			rep.Rows = append(rep.Rows, compareRow{Backend: b, Available: true, Note: "failed: " + err.Error()})
			rep.Pass = false
			continue
		}
		row := compareAgainst(b, note, got, native, classes, batch, bound, false)
		rep.Rows = append(rep.Rows, row)
		rep.Pass = rep.Pass && row.Pass
	}

	if o.reference != "" {
		rf, err := loadModelFile(o.reference)
		if err != nil {
			return nil, fmt.Errorf("--reference: %w", err)
		}
		if rf.Meta.Quantization != modelfile.QuantNone {
			return nil, fmt.Errorf("--reference %s is a %s model; give a float32 one", o.reference, rf.Meta.Quantization)
		}
		if !slices.Equal(rf.Meta.Config.HeadClasses(), classes) || rf.Meta.Config.AllFrames != f.Meta.Config.AllFrames ||
			rf.Meta.Config.ImgSize != f.Meta.Config.ImgSize {
			return nil, fmt.Errorf("--reference %s does not have the shape of the model (heads %v, %d frames of %d px)",
				o.reference, classes, f.Meta.Config.AllFrames, f.Meta.Config.ImgSize)
		}
		fmt.Fprintln(log, "compare: go: running the --reference model")
		refOut, _, err := compareNative("go", rf, x, batch, 1)
		if err != nil {
			return nil, fmt.Errorf("--reference run: %w", err)
		}
		bound, needTop1 := tol(compareTolFP32), false
		if f.Meta.Quantization == modelfile.QuantInt8 {
			bound, needTop1 = tol(compareTolInt8), true
		}
		row := compareAgainst("go vs reference", "native "+f.Meta.Quantization+" model vs float32 "+rf.Meta.Name,
			native, refOut, classes, batch, bound, needTop1)
		row.MSPerView = native.msPerView
		rep.Rows = append(rep.Rows, row)
		rep.Pass = rep.Pass && row.Pass
	}
	return rep, nil
}

// errCompareUnavailable marks a backend that cannot run here (not an error of the comparison).
var errCompareUnavailable = errors.New("unavailable")

// compareNative runs the clips in-process on backend name ("go" or "xla"), repeat times.
func compareNative(name string, f *modelfile.File, x []float32, batch, repeat int) (*compareLogits, string, error) {
	b, desc, err := infer.NewBackend(name)
	if err != nil {
		return nil, "", err
	}
	m, err := infer.New(b, f.Meta.Config, f.Weights)
	if err != nil {
		return nil, "", fmt.Errorf("loading the model: %w", err)
	}
	out := &compareLogits{msPerView: math.Inf(1)}
	for i := 0; i < repeat; i++ {
		start := time.Now()
		logits, err := m.Run(x, batch)
		if err != nil {
			return nil, "", err
		}
		out.msPerView = math.Min(out.msPerView, float64(time.Since(start).Microseconds())/1000/float64(batch))
		out.heads = logits
	}
	return out, desc, nil
}

// compareAgainst measures got against want (per head [B·classes]) and checks the bound.
func compareAgainst(backend, note string, got, want *compareLogits, classes []int, batch int, bound float64, needTop1 bool) compareRow {
	row := compareRow{Backend: backend, Available: true, Note: note, MSPerView: got.msPerView, Tolerance: bound, NeedTop1: needTop1}
	var diff2, ref2 float64
	for h, n := range classes {
		g, w := got.heads[h], want.heads[h]
		if len(g) != batch*n || len(w) != batch*n {
			row.Note = fmt.Sprintf("head %d has %d logits, want %d", h, len(g), batch*n)
			row.RelL2, row.MaxAbsDiff = math.Inf(1), math.Inf(1)
			return row
		}
		for i := range w {
			d := float64(g[i]) - float64(w[i])
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			row.MaxAbsDiff = math.Max(row.MaxAbsDiff, math.Abs(d))
			diff2 += d * d
			ref2 += float64(w[i]) * float64(w[i])
		}
		for b := 0; b < batch; b++ {
			gr, wr := g[b*n:(b+1)*n], w[b*n:(b+1)*n]
			row.Rows++
			gt, wt := compareTopK(gr, 5), compareTopK(wr, 5)
			if gt[0] == wt[0] {
				row.Top1Agree++
			}
			slices.Sort(gt)
			slices.Sort(wt)
			if slices.Equal(gt, wt) {
				row.Top5Agree++
			}
		}
	}
	switch {
	case ref2 > 0:
		row.RelL2 = math.Sqrt(diff2 / ref2)
	case diff2 > 0:
		row.RelL2 = math.Inf(1)
	}
	row.Pass = row.RelL2 <= bound && (!needTop1 || row.Top1Agree == row.Rows)
	return row
}

// compareTopK returns the indices of the k largest values, largest first (ties: lower index first).
func compareTopK(v []float32, k int) []int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case v[a] > v[b]:
			return -1
		case v[a] < v[b]:
			return 1
		}
		return 0
	})
	return idx[:min(k, len(idx))]
}

// printCompare writes the report as a table.
func printCompare(w io.Writer, r *compareReport) {
	fmt.Fprintf(w, "model %s (%s), input %s: %d clip(s)\n", r.Model, r.Quantization, r.Input, r.Batch)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "backend\tstatus\tmax |Δlogit|\trel L2\ttop-1\ttop-5\tms/view\tbound\tnote")
	for _, row := range r.Rows {
		if !row.Available {
			fmt.Fprintf(tw, "%s\tn/a\t-\t-\t-\t-\t-\t-\t%s\n", row.Backend, row.Note)
			continue
		}
		status, bound := "ok", fmt.Sprintf("≤ %.0e", row.Tolerance)
		switch {
		case row.IsReference:
			status, bound = "reference", "-"
		case !row.Pass:
			status = "FAIL"
		}
		if row.NeedTop1 {
			bound += ", same top-1"
		}
		ms := "-"
		if row.MSPerView > 0 && !math.IsInf(row.MSPerView, 0) {
			ms = fmt.Sprintf("%.1f", row.MSPerView)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3g\t%.3g\t%d/%d\t%d/%d\t%s\t%s\t%s\n", row.Backend, status, row.MaxAbsDiff, row.RelL2,
			row.Top1Agree, row.Rows, row.Top5Agree, row.Rows, ms, bound, row.Note)
	}
	tw.Flush()
	if r.Pass {
		fmt.Fprintln(w, "all backends within tolerance")
	} else {
		fmt.Fprintln(w, "OUTSIDE TOLERANCE")
	}
}

// compareWASMRunner is the Node script that loads the WASM module and a model, runs castgo.logits on the
// clips and writes {heads: {name: [logits]}, ms} as JSON.
// Arguments: cast.wasm wasm_exec.js MODEL CLIPS.f32 BATCH REPEAT OUT.json
const compareWASMRunner = `import { createRequire } from "node:module";
import fs from "node:fs";
const [wasm, wasmExec, model, clips, batch, repeat, out] = process.argv.slice(2);
createRequire(import.meta.url)(wasmExec);
const go = new globalThis.Go();
const { instance } = await WebAssembly.instantiate(fs.readFileSync(wasm), go.importObject);
go.run(instance);
const castgo = await globalThis.castgoReady;
const { handle } = await castgo.loadModel(fs.readFileSync(model));
const buf = fs.readFileSync(clips);
const x = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
let res, ms = Infinity;
for (let i = 0; i < Number(repeat); i++) {
  res = await castgo.logits(handle, x, Number(batch));
  ms = Math.min(ms, res.ms);
}
const heads = {};
for (const [name, v] of Object.entries(res.heads)) heads[name] = Array.from(v);
fs.writeFileSync(out, JSON.stringify({ heads, ms }));
process.exit(0);
`

// compareWASM runs the clips through the WASM module under Node.
func compareWASM(o compareOptions, f *modelfile.File, x []float32, batch int) (*compareLogits, string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, "", fmt.Errorf("%w: node not found on PATH", errCompareUnavailable)
	}
	tmp, err := os.MkdirTemp("", "cast-compare-wasm-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)
	dir := o.wasmDir
	if dir == "" {
		dir = filepath.Join(tmp, "dist")
		if err := compareBuildWASM(dir); err != nil {
			return nil, "", fmt.Errorf("%w: no --wasm DIR and building the module failed: %v", errCompareUnavailable, err)
		}
	}
	wasmPath, execPath := filepath.Join(dir, "cast.wasm"), filepath.Join(dir, "wasm_exec.js")
	for _, p := range []string{wasmPath, execPath} {
		if _, err := os.Stat(p); err != nil {
			return nil, "", fmt.Errorf("%w: --wasm %s: %v (run wasm/build.sh DIR)", errCompareUnavailable, dir, err)
		}
	}
	modelPath := o.model
	switch o.model {
	case models.DefaultName, models.DefaultName + "-int8":
		b := models.DefaultBytes()
		if o.model != models.DefaultName {
			b = models.DefaultInt8Bytes()
		}
		modelPath = filepath.Join(tmp, "model.safetensors")
		if err := os.WriteFile(modelPath, b, 0o644); err != nil {
			return nil, "", err
		}
	}
	raw := make([]byte, 4*len(x))
	for i, v := range x {
		bits := math.Float32bits(v)
		raw[4*i], raw[4*i+1], raw[4*i+2], raw[4*i+3] = byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24)
	}
	clips, script, out := filepath.Join(tmp, "clips.f32"), filepath.Join(tmp, "runner.mjs"), filepath.Join(tmp, "out.json")
	if err := os.WriteFile(clips, raw, 0o644); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(script, []byte(compareWASMRunner), 0o644); err != nil {
		return nil, "", err
	}
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	cmd := exec.Command(node, script, abs(wasmPath), abs(execPath), abs(modelPath), clips, fmt.Sprint(batch), fmt.Sprint(o.repeat), out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("node: %w\n%s", err, compareTail(string(msg), 2000))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, "", fmt.Errorf("node wrote no result: %w", err)
	}
	var res struct {
		Heads map[string][]float64 `json:"heads"`
		MS    float64              `json:"ms"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, "", fmt.Errorf("node result: %w", err)
	}
	got := &compareLogits{msPerView: res.MS / float64(batch)}
	for _, h := range f.Meta.Config.Heads() {
		v, ok := res.Heads[h]
		if !ok {
			return nil, "", fmt.Errorf("node result has no head %q", h)
		}
		l := make([]float32, len(v))
		for i, x := range v {
			l[i] = float32(x)
		}
		got.heads = append(got.heads, l)
	}
	ver, _ := exec.Command(node, "--version").Output()
	return got, "Node " + strings.TrimSpace(string(ver)) + " (js/wasm, castgo single-threaded)", nil
}

// compareBuildWASM builds the WASM module of this source tree into dir with the Go toolchain, the way
// wasm/build.sh does.
func compareBuildWASM(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("go not found on PATH")
	}
	root, err := compareModuleRoot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	build := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "cast.wasm"), "./wasm")
	build.Dir = root
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./wasm: %w\n%s", err, compareTail(string(out), 2000))
	}
	goroot, err := exec.Command(goBin, "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %w", err)
	}
	js, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "wasm_exec.js"), js, 0o644)
}

// compareModuleRoot finds the castgo source tree: the directory above the working directory (or, in
// tests, above this file) whose go.mod declares the module and which has wasm/main.go.
func compareModuleRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && strings.Contains(string(mod), "module github.com/castvideo/castgo\n") {
				if _, err := os.Stat(filepath.Join(dir, "wasm", "main.go")); err == nil {
					return dir, nil
				}
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("the castgo source tree (go.mod with wasm/main.go) is not above the working directory")
}

// compareTail returns the last n bytes of s.
func compareTail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
