package shard

import (
	"fmt"
	"io"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/weights"
)

// Memory budget of a stage worker's isolate. Workers give an isolate 128 MB, counting its JavaScript heap
// (with ArrayBuffers) and its wasm linear memory; the estimate (Fit) must stay HeadroomBytes under it.
const (
	IsolateBytes = 128 << 20 // the platform's limit per isolate ("128 MB"), taken as 128 MiB
	// HeadroomBytes is what a stage must leave free (6 %): the Go GC's slack beyond the live heap, which
	// debug.SetMemoryLimit keeps small, and the estimate's error.
	HeadroomBytes = 8 << 20
	// RuntimeBytes is the Go runtime's baseline in linear memory: its own structures, the module's data,
	// goroutine stacks and the manifest (a stage worker's linear memory before it loads its stage).
	RuntimeBytes = 8 << 20
	// WasmBytes is the stage worker's wasm module when its size is not given (the compiled code, counted
	// against the isolate at the module's size): dist/shard-worker/app.wasm is about 13 MiB.
	WasmBytes = 14 << 20
)

// CPU budget of a stage request. Workers allow 30 s of CPU per request by default (up to 5 min on paid
// plans, [limits] cpu_ms); a stage is sized to half of that, MaxStageCPUMS, leaving a factor of 2 for
// edge CPUs slower than the estimate's and for the decoding and encoding of the activations.
const (
	// WasmMACsPerSecond is castgo's backend in WASM on one thread (SIMD128): the small golden's int8 view,
	// 35.0 GMAC, in 4.45 s in Node (README.md, "Speed"), 7.9 GMAC/s. One base block, 32.3 GMAC, is about
	// 4.1 s; docs/edge-bench.sh measured 2.8 to 5.1 s per one-block stage in workerd (worker/README.md).
	WasmMACsPerSecond = 7.9e9
	// WorkersCPUMS is the Workers default CPU limit of one request.
	WorkersCPUMS = 30_000
	// MaxStageCPUMS is the estimated CPU one stage request may take: half of WorkersCPUMS.
	MaxStageCPUMS = WorkersCPUMS / 2
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

// FitReport is a stage worker's peak memory estimate for one view of one stage, part by part. The wasm
// linear memory never shrinks, so its parts add up: what a request frees is reused, not returned.
type FitReport struct {
	Stage   cast.Stage
	Weights int64 // the stage's weights once, as the backend packs them (int8 stays int8, with its float32 scales)
	Load    int64 // while loading: the stage file's bytes and the packed weights (the bytes go before the first view)
	InOut   int64 // one view's input and output tensors (float32; they are the block's residual streams)
	Wire    int64 // the activation messages in Go: the request body and the answer (binary float32, package stage)
	Arena   int64 // the peak of live intermediates of one view: the largest sub-layer's working set
	Runtime int64 // RuntimeBytes
	Linear  int64 // the wasm linear memory: Weights + max(Load − Weights, InOut + Wire + Arena) + Runtime
	JS      int64 // the activation message on the JS side (one at a time: the request's array is released once read)
	Module  int64 // the wasm module's compiled code, counted at the module's size
	Total   int64 // Linear + JS + Module: the isolate
	Budget  int64 // IsolateBytes − HeadroomBytes
	CPUMS   int64 // estimated CPU of one view: StageMACs / WasmMACsPerSecond
	OK      bool  // Total ≤ Budget and CPUMS ≤ MaxStageCPUMS
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
// The activations of one view are counted from the shapes: in and out, the spatial [Ts·(N+1), D] and
// temporal [Tt·N, D] streams (the embedding stage takes the clip [3, T, H, W]; the head stage answers the
// logits, counted as nothing); the wire buffers are the same sizes again. The arena is the largest working
// set of one sub-layer of a block for castgo's backend (fused attention that never holds all scores, GEMM
// epilogues that apply the activation in place): an MLP's hidden layer with its normalised input and
// output, or an attention's fused qkv, output and normalised input and one tile of scores per head; the
// embedding stage's clip with its two patch-rearranged copies.
func Fit(cfg cast.Config, st cast.Stage, tensorBytes, wasmBytes int64) FitReport {
	if wasmBytes == 0 {
		wasmBytes = WasmBytes
	}
	const f32 = 4
	d := int64(cfg.EmbedDim)
	var streams, arena int64
	tok := []struct{ n, hidden int64 }{}
	if cfg.UsesSpatial() {
		tok = append(tok, struct{ n, hidden int64 }{int64(cfg.SpatialFrames()) * (cast.PatchesPerFrame + 1), int64(cfg.CLIPMLPHidden())})
	}
	if cfg.UsesTemporal() {
		tok = append(tok, struct{ n, hidden int64 }{int64(cfg.TemporalSlots()) * cast.PatchesPerFrame, int64(cfg.VMAEMLPHidden())})
	}
	for _, s := range tok {
		streams += s.n * d * f32
		arena = max(arena, (s.n*s.hidden+2*s.n*d)*f32)               // MLP: hidden, normalised input, output
		arena = max(arena, (5*s.n*d+int64(cfg.NumHeads)*64*s.n)*f32) // attention: qkv, out, normed; score tiles
	}
	in, out := streams, streams
	if st.Embed {
		clip := int64(cfg.InChans) * int64(cfg.AllFrames) * int64(cfg.ImgSize) * int64(cfg.ImgSize) * f32
		in = clip
		arena = max(arena, 3*clip)
	}
	if st.Head {
		out = 0
	}
	if st.From == st.To && !st.Embed {
		arena = 0 // the head alone: a layer norm and a linear of the class tokens
	}
	r := FitReport{Stage: st, Weights: tensorBytes, Load: 2 * tensorBytes, InOut: in + out, Wire: in + out,
		Arena: arena, Runtime: RuntimeBytes, JS: max(in, out), Module: wasmBytes, Budget: IsolateBytes - HeadroomBytes}
	r.Linear = r.Weights + max(r.Load-r.Weights, r.InOut+r.Wire+r.Arena) + r.Runtime
	r.Total = r.Linear + r.JS + r.Module
	r.CPUMS = int64(float64(StageMACs(cfg, st)) / WasmMACsPerSecond * 1000)
	r.OK = r.Total <= r.Budget && r.CPUMS <= MaxStageCPUMS
	return r
}

// Print writes the report as one row in MiB.
func (r FitReport) Print(w io.Writer, name string) {
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	verdict := "fits"
	switch {
	case r.Total > r.Budget:
		verdict = "DOES NOT FIT"
	case !r.OK:
		verdict = "TOO MUCH CPU"
	}
	fmt.Fprintf(w, "  %-8s %-22s weights %6.2f  in/out %5.2f  wire %5.2f  arena %5.2f  runtime %4.2f = linear %6.2f; +JS %5.2f +module %5.2f = %6.2f MiB of %d (budget %d: %.1f spare); CPU ≈ %.1f s of %d (Workers %d): %s\n",
		name, r.Stage, mib(r.Weights), mib(r.InOut), mib(r.Wire), mib(r.Arena), mib(r.Runtime), mib(r.Linear), mib(r.JS), mib(r.Module),
		mib(r.Total), IsolateBytes>>20, r.Budget>>20, mib(r.Budget-r.Total), float64(r.CPUMS)/1000, MaxStageCPUMS/1000, WorkersCPUMS/1000, verdict)
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
	return ChooseStages(f.Meta.Config, func(st cast.Stage) int64 { return TensorBytes(f.Weights, st) }, wasmBytes)
}

// ChooseStages is FewestStages for a model of config cfg whose stages' tensors take tensorBytes(st).
func ChooseStages(cfg cast.Config, tensorBytes func(cast.Stage) int64, wasmBytes int64) ([]cast.Stage, []FitReport, error) {
	var last []FitReport
	if cfg.Depth < 1 {
		return nil, nil, fmt.Errorf("a model of %d blocks cannot be split into stages", cfg.Depth)
	}
	for n := 1; n <= cfg.Depth; n++ {
		stages, err := cast.SplitStages(cfg, n)
		if err != nil {
			return nil, nil, err
		}
		reps := make([]FitReport, len(stages))
		ok := true
		for i, st := range stages {
			reps[i] = Fit(cfg, st, tensorBytes(st), wasmBytes)
			ok = ok && reps[i].OK
		}
		if ok {
			return stages, reps, nil
		}
		last = reps
	}
	worst := last[0]
	for _, r := range last {
		if r.Total > worst.Total || (r.Total == worst.Total && r.CPUMS > worst.CPUMS) {
			worst = r
		}
	}
	return nil, last, fmt.Errorf("even one block per stage does not fit an isolate: stage %s needs an estimated %.1f MiB (budget %d MiB: 128 MiB less %d MiB of headroom) and %.1f s of CPU per view (budget %d s, half the Workers default of %d s)",
		worst.Stage, float64(worst.Total)/(1<<20), worst.Budget>>20, HeadroomBytes>>20, float64(worst.CPUMS)/1000, MaxStageCPUMS/1000, WorkersCPUMS/1000)
}
