package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/spf13/cobra"
)

// Default tolerances of cast compare, as relative L2 error of the logits against the reference.
const (
	compareTolFP32 = 1e-5 // another backend vs native Go, same model (WASM runs the same Go code)
	compareTolXLA  = 1e-4 // XLA's fused CPU kernels sum in another order
	compareTolInt8 = 0.02 // an int8 model vs its fp32 --reference (and the same top-1)
	// An int8 model on simplego vs native Go: simplego multiplies dequantized weights in float32, and castgo's
	// int8 GEMM quantizes activations per row to int16, so float differences of 1e-7 upstream flip roundings.
	compareTolInt8Backend = 2e-4
	// An int8 model on WASM vs native Go: the same logits. Its GEMMs and attentions are integer, and every
	// kernel tier does its float operations (layer norm, GELU, the epilogues, few-key attention) with the same
	// rounded operations in the same order (backend/kernels/README.md, "One result on every tier").
	compareTolInt8WASM = 0
)

// compareOptions are the flags of cast compare.
type compareOptions struct {
	streams
	model, input, backends, reference, wasmDir string
	videos                                     []string // --video: clips made by the official preprocessing instead of --input
	views                                      string   // --views for --video (default: the model's protocol)
	json                                       bool
	allowMissing                               bool // a requested backend that cannot run here does not fail the run
	backendsSet                                bool // --backends was given (else the defaults run where available)
	repeat                                     int
	tolerance                                  float64 // hidden: overrides every bound when set (tests force failures)
}

// compareRow is one line of the report: a backend's logits against the reference.
type compareRow struct {
	Backend     string  `json:"backend"`
	Status      string  `json:"status"` // "reference", "ok", "fail" (outside the bound or the run failed), "not run"
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
	// NotRun lists the requested backends that could not run here (their rows say why).
	NotRun []string `json:"not_run"`
	// MissingAllowed is true when NotRun does not fail the run: --allow-missing, or the default --backends.
	MissingAllowed bool `json:"missing_allowed"`
	// WithinTolerance is true when every backend that ran is within its bound.
	WithinTolerance bool `json:"within_tolerance"`
	// Pass is WithinTolerance and, unless MissingAllowed, every requested backend ran: the exit status is 0
	// exactly when Pass is true.
	Pass bool `json:"pass"`
}

// compareLogits is one run's output: logits per head ([B·classes] each) and the time per clip.
type compareLogits struct {
	heads     [][]float32
	msPerView float64
}

// newCompareCmd builds `cast compare`.
func newCompareCmd() *cobra.Command {
	var o compareOptions
	cmd := &cobra.Command{
		Use:   "compare --model MODEL (--input CLIPS.npy | --video FILE...) [--backends go,wasm,xla] [--reference FP32MODEL] [--json]",
		Short: "Run the same clips on every backend (pure Go, WASM under Node, XLA) and compare the logits",
		Long: `Compare runs the same normalised clips through the model on each backend and reports, against the native
pure-Go run: the largest absolute logit difference, the relative L2 error, how many clip×head rows agree on the
top-1 class and on the top-5 set, and the time per view.

The clips are a float32 .npy [B, 3, T, H, W] (--input), or your own videos (--video FILE, repeatable): each is
decoded with ffmpeg (or read as a folder of frames) and preprocessed the official way into the test views of
the model's protocol (or --views), every view one clip of the batch.

Backends: go (castgo in-process, always run: it is the reference), simplego (GoMLX's reference pure-Go
backend in-process: an independent implementation of every op), wasm (the WebAssembly module run under Node)
and xla (needs a binary built with -tags xla and a PJRT plugin). The WASM module is never built here: --wasm DIR
names a directory holding cast.wasm and wasm_exec.js, else it is looked for in $CASTGO_WASM_DIR, beside the
executable (dist/cast finds dist/site) and in dist/site of the checkout; ./build.sh wasm builds it there. So
dist/cast and dist/site are all a machine without Go needs.

With --backends, every backend named must run: one that cannot gets a "not run" row saying why and makes
the exit status 1 unless --allow-missing is given. Without --backends, go runs with each of wasm and xla
that can run here (a module and Node found; a binary with XLA and its plugin), and stderr says why a
missing one was left out.

Bounds: relative L2 ≤ 1e-5 for simplego and wasm (≤ 1e-4 for xla); for an int8 model 2e-4 on simplego and 0 on
wasm (castgo's kernel tiers give an int8 model the same bits natively and in WASM). With --reference FP32MODEL the native run of the
model is also compared with that float32 model: an int8 model must stay within 2% relative L2 with the same
top-1 on every row (a float32 model within 1e-5). The exit status is 1 when a row is outside its bound or
a requested backend did not run (see above).`,
		Example: `  cast compare --model default --video site/examples/red-circle-growing.mp4 --backends go,wasm   # after ./build.sh wasm
  cast compare --model default-int8 --reference default --video site/examples/red-triangle-shrinking.mp4 --views 1x1 --json
  cast compare --model default --input clips.npy --backends go,simplego`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.streams, o.backendsSet = streamsOf(cmd), cmd.Flags().Changed("backends")
			return runCompare(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.model, "model", "", "model file (or default, default-int8 for the embedded models) (required)")
	fl.StringVar(&o.input, "input", "", "float32 .npy clips [B, 3, T, H, W], normalised (this or --video)")
	fl.StringArrayVar(&o.videos, "video", nil, "a video file or folder of frames, preprocessed the official way (repeatable; this or --input)")
	fl.StringVar(&o.views, "views", "", "with --video: test views CLIPSxCROPS (default: the model's protocol)")
	fl.StringVar(&o.backends, "backends", "", "comma-separated backends to compare: go, simplego, wasm, xla (when given, each must run unless --allow-missing; default: go and those of wasm, xla that can run here)")
	fl.StringVar(&o.reference, "reference", "", "float32 model to compare the native run with (int8 bound: 2% relative L2, same top-1)")
	fl.StringVar(&o.wasmDir, "wasm", "", "directory holding cast.wasm and wasm_exec.js (default: $CASTGO_WASM_DIR, beside the executable, dist/site of the checkout)")
	fl.BoolVar(&o.allowMissing, "allow-missing", false, "a backend named in --backends that cannot run here does not make the exit status 1")
	fl.BoolVar(&o.json, "json", false, "print the report as JSON")
	fl.IntVar(&o.repeat, "repeat", 1, "runs per backend; the time is the fastest (the first includes graph compilation)")
	fl.Float64Var(&o.tolerance, "tolerance", 0, "override every relative L2 bound (for tests; a negative value always fails)")
	_ = fl.MarkHidden("tolerance")
	return cmd
}

// runCompare runs the comparison and prints the report; a row outside its bound, or a requested backend
// that did not run, ends the process with status 1 (exitPartialFailure).
func runCompare(ctx context.Context, o compareOptions) error {
	rep, err := buildCompare(ctx, o)
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(o.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printCompare(o.stdout, rep)
	}
	if !rep.WithinTolerance {
		return exitPartialFailure(o.stderr, "compare: a backend is outside its tolerance")
	}
	if !rep.Pass {
		return exitPartialFailure(o.stderr, fmt.Sprintf("compare: requested backend(s) not run: %s (--allow-missing accepts that)",
			strings.Join(rep.NotRun, ", ")))
	}
	return nil
}

// compareBackends is the list of backends to run: --backends, or by default go with each of wasm and xla
// that can run here (the others are named on log with the reason).
func compareBackends(o compareOptions) ([]string, error) {
	spec := o.backends
	if !o.backendsSet {
		want := []string{"go"}
		if ok, why := wasmReady(o.wasmDir); ok {
			want = append(want, "wasm")
		} else {
			fmt.Fprintf(o.stderr, "compare: wasm left out of the default backends: %s\n", why)
		}
		if ok, why := infer.XLAAvailable(); ok {
			want = append(want, "xla")
		} else {
			fmt.Fprintf(o.stderr, "compare: xla left out of the default backends: %s\n", why)
		}
		return want, nil
	}
	var want []string
	for _, b := range strings.Split(spec, ",") {
		b = strings.TrimSpace(b)
		switch b {
		case "":
		case "go", "simplego", "wasm", "xla":
			if !slices.Contains(want, b) {
				want = append(want, b)
			}
		default:
			return nil, fmt.Errorf("--backends: unknown backend %q (use go, simplego, wasm, xla)", b)
		}
	}
	return want, nil
}

// compareClips reads the clips of o for model f: the --input .npy, or the views of each --video.
func compareClips(ctx context.Context, o compareOptions, f *modelfile.File) ([]float32, int, string, error) {
	switch {
	case o.input != "" && len(o.videos) > 0:
		return nil, 0, "", errors.New("give --input CLIPS.npy or --video FILE, not both")
	case o.input != "":
		if o.views != "" {
			return nil, 0, "", errors.New("--views goes with --video (an --input .npy holds its clips already)")
		}
		x, batch, err := readClips(o.input, f.Meta.Config)
		return x, batch, o.input, err
	case len(o.videos) > 0:
		var all []float32
		batch := 0
		for _, v := range o.videos {
			x, n, err := videoClips(ctx, f, v, o.views)
			if err != nil {
				return nil, 0, "", fmt.Errorf("--video %s: %w", v, err)
			}
			all, batch = append(all, x...), batch+n
		}
		return all, batch, strings.Join(o.videos, ", "), nil
	}
	return nil, 0, "", errors.New("--model and --input (or --video) are required")
}

// buildCompare runs the comparison and builds the report; o.log gets progress lines.
func buildCompare(ctx context.Context, o compareOptions) (*compareReport, error) {
	if o.model == "" {
		return nil, errors.New("--model and --input (or --video) are required")
	}
	if o.repeat < 1 {
		return nil, fmt.Errorf("--repeat is %d, want at least 1", o.repeat)
	}
	want, err := compareBackends(o)
	if err != nil {
		return nil, err
	}
	f, err := loadModelFile(o.model)
	if err != nil {
		return nil, err
	}
	x, batch, input, err := compareClips(ctx, o, f)
	if err != nil {
		return nil, err
	}
	log := o.stderr
	rep := &compareReport{Model: f.Meta.Name, Quantization: f.Meta.Quantization, Input: input, Batch: batch,
		Reference: o.reference, NotRun: []string{}, MissingAllowed: o.allowMissing || !o.backendsSet, WithinTolerance: true}
	notRun := func(backend, why string) {
		rep.Rows = append(rep.Rows, compareRow{Backend: backend, Status: "not run", Note: why})
		rep.NotRun = append(rep.NotRun, backend)
	}
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
	ref := compareRow{Backend: "go", Status: "reference", Available: true, Note: desc, Pass: true, IsReference: true, MSPerView: native.msPerView, Rows: batch * len(classes)}
	ref.Top1Agree, ref.Top5Agree = ref.Rows, ref.Rows
	rep.Rows = append(rep.Rows, ref)

	sameModelTol := compareTolFP32
	if f.Meta.Quantization == modelfile.QuantInt8 {
		sameModelTol = compareTolInt8Backend
	}
	for _, b := range want {
		var got *compareLogits
		var note string
		var bound float64
		switch b {
		case "go":
			continue
		case "simplego":
			bound = tol(sameModelTol)
			fmt.Fprintln(log, "compare: simplego: running")
			got, note, err = compareNative("simplego", f, x, batch, o.repeat)
		case "wasm":
			bound = tol(sameModelTol)
			if f.Meta.Quantization == modelfile.QuantInt8 {
				bound = tol(compareTolInt8WASM)
			}
			fmt.Fprintln(log, "compare: wasm: running under Node")
			got, note, err = compareWASM(o, f, x, batch)
		case "xla":
			bound = tol(compareTolXLA)
			if ok, why := infer.XLAAvailable(); !ok {
				notRun("xla", why)
				continue
			}
			fmt.Fprintln(log, "compare: xla: running")
			got, note, err = compareNative("xla", f, x, batch, o.repeat)
		}
		if errors.Is(err, errWASMUnavailable) {
			notRun(b, strings.TrimPrefix(err.Error(), errWASMUnavailable.Error()+": "))
			continue
		}
		if err != nil {
			rep.Rows = append(rep.Rows, compareRow{Backend: b, Status: "fail", Available: true, Note: "failed: " + err.Error()})
			rep.WithinTolerance = false
			continue
		}
		row := compareAgainst(b, note, got, native, classes, batch, bound, false)
		rep.Rows = append(rep.Rows, row)
		rep.WithinTolerance = rep.WithinTolerance && row.Pass
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
		rep.WithinTolerance = rep.WithinTolerance && row.Pass
	}
	rep.Pass = rep.WithinTolerance && (len(rep.NotRun) == 0 || rep.MissingAllowed)
	return rep, nil
}

// compareNative runs the clips in-process on backend name ("go", "simplego" or "xla"), repeat times.
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
			row.Status = "fail"
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
	row.Status = "ok"
	if !row.Pass {
		row.Status = "fail"
	}
	return row
}

// compareTopK returns the indices of the k largest values, largest first, in classify.TopK's order (ties:
// lower index first).
func compareTopK(v []float32, k int) []int {
	p := make([]float64, len(v))
	for i, x := range v {
		p[i] = float64(x)
	}
	top := classify.TopK(p, nil, k)
	idx := make([]int, len(top))
	for i, t := range top {
		idx[i] = t.Index
	}
	return idx
}

// printCompare writes the report as a table.
func printCompare(w io.Writer, r *compareReport) {
	fmt.Fprintf(w, "model %s (%s), input %s: %d clip(s)\n", r.Model, r.Quantization, r.Input, r.Batch)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "backend\tstatus\tmax |Δlogit|\trel L2\ttop-1\ttop-5\tms/view\tbound\tnote")
	for _, row := range r.Rows {
		if !row.Available {
			fmt.Fprintf(tw, "%s\tNOT-RUN\t-\t-\t-\t-\t-\t-\t%s\n", row.Backend, row.Note)
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
	switch {
	case !r.WithinTolerance:
		fmt.Fprintln(w, "OUTSIDE TOLERANCE")
	case len(r.NotRun) == 0:
		fmt.Fprintln(w, "all backends within tolerance")
	case r.MissingAllowed:
		fmt.Fprintf(w, "the backends that ran are within tolerance; NOT RUN: %s\n", strings.Join(r.NotRun, ", "))
	default:
		fmt.Fprintf(w, "INCOMPLETE: requested backend(s) NOT RUN: %s (the backends that ran are within tolerance)\n", strings.Join(r.NotRun, ", "))
	}
}

// compareWASMRunner is the Node script that loads the WASM module and a model, runs castgo.logits on the
// clips and writes {heads: {name: [logits]}, ms} as JSON.
// Arguments (wasmNodePrologue): cast.wasm wasm_exec.js MODEL CLIPS.f32 BATCH REPEAT OUT.json
const compareWASMRunner = wasmNodePrologue + `let res, ms = Infinity;
for (let i = 0; i < Number(runs); i++) {
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
	tmp, err := os.MkdirTemp("", "cast-compare-wasm-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)
	modelPath, err := wasmModelPath(tmp, o.model)
	if err != nil {
		return nil, "", err
	}
	data, nodeVersion, err := wasmNodeRun(tmp, o.wasmDir, compareWASMRunner, modelPath, x, batch, o.repeat, nil)
	if err != nil {
		return nil, "", err
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
	return got, "Node v" + nodeVersion + " (js/wasm, castgo single-threaded)", nil
}
