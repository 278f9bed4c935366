package shard

import (
	"fmt"
	"io"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/weights"
)

// Memory budget of a Cloudflare Workers isolate (the same figures as worker/edge).
const (
	IsolateBytes  = 128 << 20 // the platform's limit per isolate ("128 MB"), taken as 128 MiB
	HeadroomBytes = 16 << 20  // what a stage must leave free: the estimate is an estimate, the GC needs slack
	RuntimeBytes  = 8 << 20   // the Go runtime's own baseline
	// WasmBytes is the stage worker's wasm module (code and data) when its size is not given: app.wasm of
	// worker/build.sh is about 13.5 MiB.
	WasmBytes = 14 << 20
)

// CPU budget of a stage request. Workers allow 30 s of CPU per request by default (up to 5 min on paid
// plans, [limits] cpu_ms); a stage is sized to stay under half the default, for slower edge CPUs.
const (
	// WasmMACsPerSecond is castgo's backend in WASM on one thread (SIMD128): the small golden's int8 view,
	// 35.0 GMAC, in 4.45 s in Node (README.md, "Speed"), 7.9 GMAC/s.
	WasmMACsPerSecond = 7.9e9
	// MaxStageCPUMS is the estimated CPU one stage request may take.
	MaxStageCPUMS = 15_000
)

// StageMACs is the multiply-accumulate count of one view through the stage (fvcore convention, as
// cast.Config.MACs): the embedding's share when it embeds, plus its blocks' share.
func StageMACs(cfg cast.Config, st cast.Stage) int64 {
	c0 := cfg
	c0.Depth = 0
	embed := c0.MACs()
	perBlock := (cfg.MACs() - embed) / int64(max(cfg.Depth, 1))
	m := int64(st.To-st.From) * perBlock
	if st.Embed {
		m += embed
	}
	return m
}

// FitReport is a stage worker's peak memory estimate for one view of one stage.
type FitReport struct {
	Stage       cast.Stage
	Weights     int64 // the stage's tensors as stored (int8 stays int8) ×2: the loaded variables and the backend's packed copies
	Load        int64 // the stage file's bytes while they are parsed (released before the weights are packed)
	Activations int64 // the streams in and out and the largest sub-layer's working set of one view
	Transport   int64 // the request's and the response's activations (binary float32)
	Runtime     int64
	Wasm        int64
	Total       int64 // Weights + max(Load, Activations + Transport) + Runtime + Wasm
	Budget      int64 // IsolateBytes − HeadroomBytes
	CPUMS       int64 // estimated CPU of one view: StageMACs / WasmMACsPerSecond
	OK          bool  // Total ≤ Budget and CPUMS ≤ MaxStageCPUMS
}

// TensorBytes is what the stage's tensors of set take in memory as stored: 4 bytes per float32 value, 1
// per int8 value plus its float32 scales.
func TensorBytes(set weights.Set, st cast.Stage) int64 {
	var n int64
	for name, t := range set {
		if !st.Owns(name) {
			continue
		}
		if t.DType == weights.I8 {
			n += int64(len(t.I8)) + 4*int64(len(t.Scale))
		} else {
			n += 4 * int64(len(t.F32))
		}
	}
	return n
}

// Fit estimates the peak memory of a stage worker serving one view of stage st of a model of config cfg
// whose stage tensors take tensorBytes (TensorBytes), in a wasm module of wasmBytes (0: WasmBytes).
//
// Activations of one view are counted from the shapes, for castgo's backend (fused attention that never
// holds all scores, GEMM epilogues that apply the activation in place): the streams in and out, plus the
// largest sub-layer working set: an MLP's hidden layer with its normalised input and output, or an
// attention's fused qkv, output and one tile of scores per head; the embedding stage adds the clip and its
// two patch-rearranged copies.
func Fit(cfg cast.Config, st cast.Stage, tensorBytes, wasmBytes int64) FitReport {
	if wasmBytes == 0 {
		wasmBytes = WasmBytes
	}
	const f32 = 4
	d := int64(cfg.EmbedDim)
	var streams, transient int64
	tok := []struct{ n, hidden int64 }{}
	if cfg.UsesSpatial() {
		tok = append(tok, struct{ n, hidden int64 }{int64(cfg.SpatialFrames()) * (cast.PatchesPerFrame + 1), int64(cfg.CLIPMLPHidden())})
	}
	if cfg.UsesTemporal() {
		tok = append(tok, struct{ n, hidden int64 }{int64(cfg.TemporalSlots()) * cast.PatchesPerFrame, int64(cfg.VMAEMLPHidden())})
	}
	for _, s := range tok {
		streams += s.n * d * f32
		transient = max(transient, (s.n*s.hidden+2*s.n*d)*f32)               // MLP: hidden, normalised input, output
		transient = max(transient, (5*s.n*d+int64(cfg.NumHeads)*64*s.n)*f32) // attention: qkv, out, normed; score tiles
	}
	r := FitReport{Stage: st, Weights: 2 * tensorBytes, Load: 2 * tensorBytes, Runtime: RuntimeBytes, Wasm: wasmBytes,
		Budget: IsolateBytes - HeadroomBytes}
	in := streams
	if st.Embed {
		clip := int64(cfg.InChans) * int64(cfg.AllFrames) * int64(cfg.ImgSize) * int64(cfg.ImgSize) * f32
		in = clip
		transient = max(transient, 3*clip)
	}
	out := streams
	if st.Head {
		out = 0
	}
	r.Activations = 2*streams + transient
	r.Transport = in + out
	r.Total = r.Weights + max(r.Load, r.Activations+r.Transport) + r.Runtime + r.Wasm
	r.CPUMS = int64(float64(StageMACs(cfg, st)) / WasmMACsPerSecond * 1000)
	r.OK = r.Total <= r.Budget && r.CPUMS <= MaxStageCPUMS
	return r
}

// Print writes the report as one table row group in MiB.
func (r FitReport) Print(w io.Writer, name string) {
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	verdict := "fits"
	switch {
	case r.Total > r.Budget:
		verdict = "DOES NOT FIT"
	case !r.OK:
		verdict = "TOO MUCH CPU"
	}
	fmt.Fprintf(w, "  %-8s %-22s weights×2 %6.2f  activations %6.2f  transport %6.2f  runtime+wasm %5.2f  total %7.2f MiB of %d (budget %d), CPU ≈ %.1f s: %s\n",
		name, r.Stage, mib(r.Weights), mib(r.Activations), mib(r.Transport), mib(r.Runtime+r.Wasm), mib(r.Total),
		IsolateBytes>>20, r.Budget>>20, float64(r.CPUMS)/1000, verdict)
}

// FitAll estimates every stage of a split of f into stages.
func FitAll(f *modelfile.File, stages []cast.Stage, wasmBytes int64) []FitReport {
	out := make([]FitReport, len(stages))
	for i, st := range stages {
		out[i] = Fit(f.Meta.Config, st, TensorBytes(f.Weights, st), wasmBytes)
	}
	return out
}

// FewestStages returns the smallest even split (cast.SplitStages) of f whose every stage fits an isolate
// (Fit: memory, and the CPU of one view under MaxStageCPUMS), with its reports; an error when even one
// block per stage does not fit.
func FewestStages(f *modelfile.File, wasmBytes int64) ([]cast.Stage, []FitReport, error) {
	cfg := f.Meta.Config
	var last []FitReport
	for n := 1; n <= cfg.Depth; n++ {
		stages, err := cast.SplitStages(cfg, n)
		if err != nil {
			return nil, nil, err
		}
		reps := FitAll(f, stages, wasmBytes)
		ok := true
		for _, r := range reps {
			ok = ok && r.OK
		}
		if ok {
			return stages, reps, nil
		}
		last = reps
	}
	worst := last[0]
	for _, r := range last {
		if r.Total > worst.Total {
			worst = r
		}
	}
	return nil, last, fmt.Errorf("even one block per stage does not fit an isolate: stage %s needs an estimated %.1f MiB (budget %d MiB) and %.1f s of CPU per view (budget %.0f s)",
		worst.Stage, float64(worst.Total)/(1<<20), worst.Budget>>20, float64(worst.CPUMS)/1000, float64(MaxStageCPUMS)/1000)
}
