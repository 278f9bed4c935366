package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"text/tabwriter"
	"time"

	"github.com/castvideo/castgo/backend"
	"github.com/castvideo/castgo/backend/kernels"
	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/castvideo/castgo/labels"
	"github.com/spf13/cobra"
)

// benchReport is the result of `cast bench` (its --json form).
type benchReport struct {
	Config         string  `json:"config"`
	Backend        string  `json:"backend"`
	Kernels        string  `json:"kernels,omitempty"`      // castgo's kernel tier ("avx512-vnni", "wasm-simd128", …); empty on other backends
	Int8Kernels    string  `json:"int8_kernels,omitempty"` // its int8 GEMM kernel ("avx512-vnni", "avx-vnni", "avx2", …); native castgo only
	Quantization   string  `json:"quantization"`           // none or int8
	Batch          int     `json:"batch"`
	Runs           int     `json:"runs"`
	WarmUpSeconds  float64 `json:"warmup_seconds"` // first forward, compilation included
	SecondsPerView float64 `json:"seconds_per_view"`
	GMACPerView    float64 `json:"gmac_per_view"`
	GFLOPS         float64 `json:"gflops"`                // 2·MAC per second, in 10⁹
	PeakRSSMB      float64 `json:"peak_rss_mb,omitempty"` // this process's peak resident memory (native runs, Linux)
	Profile        string  `json:"profile,omitempty"`     // per-op time table (--profile)
}

// benchOptions are the flags of `cast bench`.
type benchOptions struct {
	streams
	backend                              string // the global --backend
	model, configSpec, quantize, wasmDir string
	cpuProfile                           string // --cpuprofile: pprof CPU profile of the timed runs
	runs, batch                          int
	seed                                 uint64
	asJSON, profile                      bool
}

// newBenchCmd builds `cast bench`.
func newBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench [--model MODEL | --config PRESET|JSON] [--quantize int8] [--runs N] [--batch B] [--backend go|simplego|wasm|xla]",
		Short: "Time the forward pass: seconds per view, GMAC per view and GFLOP/s on the chosen backend",
		Long: `Bench runs one warm-up forward pass (it includes graph compilation and weight packing) and then times --runs
forward passes of --batch clips each, on the backend of --backend. It prints the seconds per view (one clip), the
analytic compute per view (GMAC, as cast info reports it), the achieved GFLOP/s (2 FLOPs per multiply-accumulate)
and, natively, the peak resident memory of the process.

--backend wasm runs the same forward in the WebAssembly module under Node (one thread), timed inside the module.
The module is never built here: --wasm DIR names a directory holding cast.wasm and wasm_exec.js, else it is
looked for in $CASTGO_WASM_DIR, beside the executable (dist/cast finds dist/site) and in dist/site of the
checkout; ./build.sh wasm builds it there.

With --config, the weights are random (cast.InitWeights with --seed): the speed does not depend on their values,
so no checkpoint is needed to benchmark the full-size presets. --quantize int8 quantizes them as cast quantize does
(per-output-channel int8). Without --model or --config the embedded default model is timed. --profile prints where
the time goes, per step of the compiled plan (the castgo backend only); --cpuprofile FILE writes a pprof CPU
profile of the timed runs, by function (go tool pprof -top FILE), natively.`,
		Example: `  cast bench --runs 3
  cast bench --config demo --quantize int8 --runs 3 --profile
  cast bench --backend wasm --runs 2          # after ./build.sh wasm
  cast bench --config demo --batch 4 --runs 2 --json
  cast bench --config base-ssv2 --quantize int8 --runs 2 --cpuprofile cpu.pprof`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.streams, o.backend = streamsOf(cmd), backendFlag
			return runBench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "model file, or default (the embedded model; used when neither flag is given)")
	f.StringVar(&o.configSpec, "config", "", "time a preset or JSON config with random weights instead")
	f.StringVar(&o.quantize, "quantize", "", "int8: quantize the weights per output channel first (as cast quantize does)")
	f.IntVar(&o.runs, "runs", 5, "timed forward passes (after one warm-up)")
	f.IntVar(&o.batch, "batch", 1, "clips per forward pass")
	f.Uint64Var(&o.seed, "seed", 1, "weight seed for --config")
	f.BoolVar(&o.asJSON, "json", false, "print one JSON object")
	f.BoolVar(&o.profile, "profile", false, "print the time per plan step (op kind and shape), slowest first")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the timed runs to this file (native backends)")
	f.StringVar(&o.wasmDir, "wasm", "", "with --backend wasm: directory holding cast.wasm and wasm_exec.js (default: $CASTGO_WASM_DIR, beside the executable, dist/site of the checkout)")
	return cmd
}

// runBench times the model of o and prints the report.
func runBench(_ context.Context, o benchOptions) error {
	if o.runs < 1 || o.batch < 1 {
		return fmt.Errorf("--runs and --batch must be at least 1, got %d and %d", o.runs, o.batch)
	}
	if o.model != "" && o.configSpec != "" {
		return errors.New("give --model or --config, not both")
	}
	if o.quantize != "" && o.quantize != modelfile.QuantInt8 {
		return fmt.Errorf("--quantize %q: only int8 is supported", o.quantize)
	}
	var (
		cfg  cast.Config
		set  weights.Set
		name string
	)
	if o.configSpec != "" {
		var err error
		if cfg, err = resolveConfig(o.configSpec); err != nil {
			return err
		}
		name, set = configName(o.configSpec), cast.InitWeights(cfg, o.seed)
	} else {
		f, err := loadModelFile(o.model)
		if err != nil {
			return err
		}
		cfg, set, name = f.Meta.Config, f.Weights, f.Meta.Name
	}
	quant := modelfile.QuantNone
	if o.quantize == modelfile.QuantInt8 {
		q, err := cast.QuantizeInt8(set, nil)
		if err != nil {
			return fmt.Errorf("quantizing: %w", err)
		}
		set, quant = q, modelfile.QuantInt8
	} else {
		for _, t := range set {
			if t.DType == weights.I8 {
				quant = modelfile.QuantInt8
				break
			}
		}
	}
	stderr := o.stderr
	var (
		r   benchReport
		err error
	)
	if o.backend == "wasm" {
		if o.profile || o.cpuProfile != "" {
			return errors.New("--profile and --cpuprofile need a native backend (they are not collected in WASM)")
		}
		r, err = benchWASM(o, cfg, set, name, quant, stderr)
	} else {
		r, err = benchNative(o, cfg, set, name, stderr)
	}
	if err != nil {
		return err
	}
	r.Config, r.Quantization, r.Batch, r.Runs = name, quant, o.batch, o.runs
	macs := float64(cfg.MACs())
	r.GMACPerView, r.GFLOPS = macs/1e9, 2*macs/r.SecondsPerView/1e9
	return printBench(o.stdout, r, o.asJSON)
}

// benchNative times the forward pass in this process.
func benchNative(o benchOptions, cfg cast.Config, set weights.Set, name string, stderr io.Writer) (benchReport, error) {
	be, desc, err := infer.NewBackend(o.backend)
	if err != nil {
		return benchReport{}, err
	}
	m, err := infer.New(be, cfg, set)
	if err != nil {
		return benchReport{}, fmt.Errorf("loading the model: %w", err)
	}
	x := hashinit.Input(1, o.batch*m.ClipLen())
	fmt.Fprintf(stderr, "bench %s on %s: warm-up (compiles the graph, packs the weights)…\n", name, desc)
	t0 := time.Now()
	if _, err := m.Run(x, o.batch); err != nil {
		return benchReport{}, fmt.Errorf("warm-up run: %w", err)
	}
	warm := time.Since(t0)
	if o.profile {
		if _, ok := be.(*backend.Backend); !ok {
			return benchReport{}, fmt.Errorf("--profile: backend %s keeps no per-op profile (use --backend go)", desc)
		}
		backend.EnableProfile(true)
		defer backend.EnableProfile(false)
		backend.ResetProfile()
	}
	var prof *os.File
	if o.cpuProfile != "" {
		// written under a temporary name and renamed when complete: no half-written profile is left behind
		if prof, err = os.CreateTemp(filepath.Dir(o.cpuProfile), ".cpuprofile-*"); err != nil {
			return benchReport{}, fmt.Errorf("--cpuprofile: %w", err)
		}
		defer os.Remove(prof.Name())
		defer prof.Close()
		if err := pprof.StartCPUProfile(prof); err != nil {
			return benchReport{}, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	bar := newProgress(stderr, o.runs, "timing")
	t1 := time.Now()
	for i := 0; i < o.runs; i++ {
		if _, err := m.Run(x, o.batch); err != nil {
			bar.Finish()
			if prof != nil {
				pprof.StopCPUProfile()
			}
			return benchReport{}, fmt.Errorf("run %d: %w", i+1, err)
		}
		bar.Set(i + 1)
	}
	elapsed := time.Since(t1).Seconds()
	bar.Finish()
	if prof != nil {
		pprof.StopCPUProfile()
		if err := prof.Close(); err != nil {
			return benchReport{}, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := os.Rename(prof.Name(), o.cpuProfile); err != nil {
			return benchReport{}, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	r := benchReport{Backend: desc, WarmUpSeconds: warm.Seconds(), SecondsPerView: elapsed / float64(o.runs*o.batch),
		PeakRSSMB: peakRSSMB()}
	if _, ok := be.(*backend.Backend); ok {
		r.Kernels, r.Int8Kernels = kernels.Tier(), kernels.Int8Kernels()
	}
	if o.profile {
		r.Profile = backend.ProfileReport(40)
	}
	return r, nil
}

// benchWASMRunner loads the WASM module and a model under Node, runs castgo.logits to warm up (the first
// call's time is the reported warm-up) and then RUNS times, and writes {warm_ms, ms: [per run]} as JSON.
// Arguments: cast.wasm wasm_exec.js MODEL CLIPS.f32 BATCH RUNS OUT.json
const benchWASMRunner = wasmNodePrologue + `// V8 first runs WebAssembly on its baseline compiler (Liftoff) and tiers hot functions up in the background:
// warm up for at least 2 s (and 2 calls) so that the timed runs measure the optimised code, as a page does
// after its first few views.
const warm = await castgo.logits(handle, x, Number(batch));
for (let t0 = performance.now(), n = 1; n < 2 || performance.now() - t0 < 2000; n++) {
  await castgo.logits(handle, x, Number(batch));
}
const ms = [];
for (let i = 0; i < Number(runs); i++) {
  ms.push((await castgo.logits(handle, x, Number(batch))).ms);
  process.stderr.write("run " + (i + 1) + "/" + runs + ": " + ms[i].toFixed(1) + " ms\n");
}
fs.writeFileSync(out, JSON.stringify({ warm_ms: warm.ms, ms, kernels: castgo.kernels }));
process.exit(0);
`

// benchWASM times the forward pass in the WebAssembly module under Node.
func benchWASM(o benchOptions, cfg cast.Config, set weights.Set, name, quant string, stderr io.Writer) (benchReport, error) {
	tmp, err := os.MkdirTemp("", "cast-bench-wasm-")
	if err != nil {
		return benchReport{}, err
	}
	defer os.RemoveAll(tmp)
	heads := map[string][]string{}
	names, _ := labels.ForConfig(cfg)
	for i, h := range cfg.Heads() {
		if l := names[h]; len(l) == cfg.HeadClasses()[i] {
			heads[h] = l
		} else {
			heads[h] = labels.Generic(cfg.HeadClasses()[i])
		}
	}
	mf := &modelfile.File{Meta: modelfile.Metadata{Format: modelfile.Format, Name: name, Config: cfg, Labels: heads,
		Protocol: defaultProtocol(cfg), Quantization: quant}, Weights: set}
	modelPath := filepath.Join(tmp, "model.safetensors")
	if err := modelfile.Save(modelPath, mf); err != nil {
		return benchReport{}, fmt.Errorf("writing the model for Node: %w", err)
	}
	fmt.Fprintf(stderr, "bench %s in WASM under Node: warm-up…\n", name)
	x := hashinit.Input(1, o.batch*3*cfg.AllFrames*cfg.ImgSize*cfg.ImgSize)
	data, nodeVersion, err := wasmNodeRun(tmp, o.wasmDir, benchWASMRunner, modelPath, x, o.batch, o.runs, stderr)
	if err != nil {
		return benchReport{}, fmt.Errorf("--backend wasm: %w", err)
	}
	var res struct {
		WarmMS  float64   `json:"warm_ms"`
		MS      []float64 `json:"ms"`
		Kernels string    `json:"kernels"`
	}
	if err := json.Unmarshal(data, &res); err != nil || len(res.MS) != o.runs {
		return benchReport{}, fmt.Errorf("node result %q: %v", tail(string(data), 200), err)
	}
	var total float64
	for _, ms := range res.MS {
		total += ms
	}
	return benchReport{Backend: "wasm (Node " + nodeVersion + ", one thread)", Kernels: res.Kernels, WarmUpSeconds: res.WarmMS / 1e3,
		SecondsPerView: total / 1e3 / float64(o.runs*o.batch)}, nil
}

// printBench writes the report as a table, or as JSON.
func printBench(out io.Writer, r benchReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "config\tweights\tbackend\tkernels\tbatch\truns\ts/view\tGMAC/view\tGFLOP/s\twarm-up s\tpeak RSS MB\n")
	rss := "n/a"
	if r.PeakRSSMB > 0 {
		rss = fmt.Sprintf("%.0f", r.PeakRSSMB)
	}
	kern := r.Kernels
	if kern == "" {
		kern = "-"
	}
	if r.Quantization == "int8" && r.Int8Kernels != "" && r.Int8Kernels != r.Kernels {
		kern += " (int8: " + r.Int8Kernels + ")"
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%.4f\t%.3f\t%.2f\t%.2f\t%s\n", r.Config, r.Quantization, r.Backend, kern, r.Batch, r.Runs,
		r.SecondsPerView, r.GMACPerView, r.GFLOPS, r.WarmUpSeconds, rss)
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Profile != "" {
		fmt.Fprintf(out, "\nwhere the time goes (per plan step, all timed runs):\n%s", r.Profile)
	}
	return nil
}
