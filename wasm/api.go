//go:build js && wasm

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/castvideo/castgo/backend/kernels"
	"math"
	"sync"
	"syscall/js"
	"time"

	"github.com/castvideo/castgo/backend/webgpu"
	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/gomlx/gomlx/backends"
)

// Version is the version of the JavaScript API (castgo.version).
const Version = "1"

// Bounds on every size the JavaScript API accepts. A request beyond them is rejected (the Promise rejects,
// a sync function throws) before anything is allocated for it: a wasm32 instance has at most 4 GiB of
// memory, and running out of it aborts the whole instance instead of failing one call.
const (
	// MaxModelBytes bounds a model file (the largest preset, base fp32, is ~870 MB; loading keeps about
	// three copies of the weights).
	MaxModelBytes = 1 << 30
	// MaxNumFrames bounds numFrames (about 9.7 hours at 30 fps): dense sampling lists every
	// sampling-rate-th frame index.
	MaxNumFrames = 1 << 20
	// MaxSide bounds frame width and height in pixels (4K UHD is 3840×2160).
	MaxSide = 4096
	// MaxFrameBytes bounds the RGBA bytes of all the frames one classify call copies in (the needed
	// frames, width*height*4 each); they are held with their RGB copies while the views run.
	MaxFrameBytes = 512 << 20
	// MaxViews bounds clips × crops of one call (K400's protocol is 5×3 = 15).
	MaxViews = 30
	// MaxBatch bounds the clips of one castgo.logits call.
	MaxBatch = 64
	// MaxClipBytes bounds the Float32Array castgo.logits copies in.
	MaxClipBytes = 1 << 30
	// MaxTop bounds top (predictions per head).
	MaxTop = 1000
)

// loaded is one model behind a handle.
type loaded struct {
	clf  *classify.Classifier
	info modelInfo
}

// Backend kinds of loadModel's {backend} option.
const (
	BackendCPU    = "cpu"    // the castgo backend's CPU kernels (WASM SIMD128), one thread
	BackendWebGPU = "webgpu" // the castgo backend's plan run on the page's (or worker's) WebGPU device
)

// modelInfo is what castgo.loadModel and castgo.modelInfo return as info.
type modelInfo struct {
	Name         string              `json:"name"`
	Description  string              `json:"description"`
	Config       cast.Config         `json:"config"`
	Heads        []string            `json:"heads"`
	Labels       map[string][]string `json:"labels"`
	Protocol     preprocess.Protocol `json:"protocol"`
	Quantization string              `json:"quantization"`
	SizeBytes    int                 `json:"sizeBytes"`
	Params       paramCounts         `json:"params"`
	Frames       int                 `json:"frames"`
	ImgSize      int                 `json:"imgSize"`
	// ClipSeconds is the duration of the training clips (castgo.clip_seconds; 0 when the file does not say):
	// the page's live camera window.
	ClipSeconds float64 `json:"clipSeconds"`
	// Backend is where the model runs: "cpu" or "webgpu" (loadModel's option).
	Backend string `json:"backend"`
}

type paramCounts struct {
	Total     int `json:"total"`
	Trainable int `json:"trainable"`
}

// viewJSON is one planned view as castgo.planViews returns it.
type viewJSON struct {
	Clip   int   `json:"clip"`
	Crop   int   `json:"crop"`
	Frames []int `json:"frames"`
	X0     int   `json:"x0"`
	Y0     int   `json:"y0"`
}

// planJSON is the result of castgo.planViews.
type planJSON struct {
	Views        string     `json:"protocol"` // CLIPSxCROPS actually used
	ViewList     []viewJSON `json:"views"`
	NeededFrames []int      `json:"neededFrames"`
}

// resultJSON is the classify.Result JSON plus, on request, every class's probability per head.
type resultJSON struct {
	*classify.Result
	Probs map[string][]float64 `json:"probs,omitempty"`
}

var (
	mu           sync.Mutex
	registry     = map[int]*loaded{}
	nextHandle   = 1
	openBackends = map[string]backends.Backend{}
	backendMu    sync.Mutex
)

// getBackend opens the castgo backend of a kind once: BackendCPU (single-threaded in js/wasm) or
// BackendWebGPU (its "webgpu" option; it fails here when WebGPU yields no device).
func getBackend(kind string) (backends.Backend, error) {
	backendMu.Lock()
	defer backendMu.Unlock()
	if b := openBackends[kind]; b != nil {
		return b, nil
	}
	name := "castgo"
	switch kind {
	case BackendCPU:
	case BackendWebGPU:
		if _, err := webgpu.Device(); err != nil {
			return nil, err
		}
		name = "castgo:webgpu"
	default:
		return nil, fmt.Errorf("unknown backend %q: use %q or %q", kind, BackendCPU, BackendWebGPU)
	}
	b, _, err := infer.NewBackend(name)
	if err != nil {
		return nil, err
	}
	openBackends[kind] = b
	return b, nil
}

// gpuInfo implements castgo.gpuInfo() → Promise<{vendor, architecture, device, description, shaderF16,
// maxBufferMB, runs, cpuRuns, cpuReason?, lost?}>: the WebGPU adapter (opening the device on first use);
// it rejects when WebGPU is not available.
func gpuInfo(args []js.Value) (func(progressFunc) (any, error), error) {
	return func(progressFunc) (any, error) {
		info, err := webgpu.Device()
		if err != nil {
			return nil, err
		}
		return toJS(info)
	}, nil
}

// install builds the API object and publishes it as globalThis.castgo, then signals readiness.
func install() js.Value {
	api := js.Global().Get("Object").New()
	api.Set("version", Version)
	api.Set("kernels", kernels.Tier()) // the kernel tier this module runs ("wasm-simd128" or "portable")
	api.Set("loadModel", asyncFunc("loadModel", loadModel))
	api.Set("classify", asyncFunc("classify", classifyVideo))
	api.Set("logits", asyncFunc("logits", logits))
	api.Set("gpuInfo", asyncFunc("gpuInfo", gpuInfo))
	api.Set("viewLogits", asyncFunc("viewLogits", viewLogits))
	api.Set("explain", asyncFunc("explain", explainVideo))
	api.Set("destroyGPU", syncFunc("destroyGPU", func([]js.Value) (any, error) {
		webgpu.DestroyDevice()
		return true, nil
	}))
	api.Set("modelInfo", syncFunc("modelInfo", modelInfoFunc))
	api.Set("planViews", syncFunc("planViews", planViews))
	api.Set("dispose", syncFunc("dispose", dispose))
	js.Global().Set("castgo", api)
	ready := js.Global().Get("castgoReady")
	if ready.Type() != js.TypeObject || ready.Get("then").Type() != js.TypeFunction {
		js.Global().Set("castgoReady", js.Global().Get("Promise").Call("resolve", api))
	}
	if cb := js.Global().Get("onCastgoReady"); cb.Type() == js.TypeFunction {
		func() {
			defer func() {
				if r := recover(); r != nil {
					js.Global().Get("console").Call("error", fmt.Sprintf("castgo: onCastgoReady threw: %v", r))
				}
			}()
			cb.Invoke(api)
		}()
	}
	return api
}

// lookup returns the model behind a handle argument.
func lookup(v js.Value) (*loaded, int, error) {
	if v.Type() != js.TypeNumber {
		return nil, 0, fmt.Errorf("model handle must be a number, got %s", describe(v))
	}
	f := v.Float()
	h := int(f)
	if float64(h) != f {
		return nil, 0, fmt.Errorf("model handle %v is not an integer", f)
	}
	mu.Lock()
	m, ok := registry[h]
	mu.Unlock()
	if !ok {
		return nil, h, fmt.Errorf("unknown model handle %d (never loaded, or disposed)", h)
	}
	return m, h, nil
}

// loadModel implements castgo.loadModel(bytes, {backend: "cpu"|"webgpu"}?) → Promise<{handle, info}>. The
// default backend is "cpu"; "webgpu" rejects when WebGPU yields no device.
func loadModel(args []js.Value) (func(progressFunc) (any, error), error) {
	if len(args) < 1 {
		return nil, errors.New("missing the model file bytes (an ArrayBuffer or Uint8Array)")
	}
	data, err := bytesFromJSMax(args[0], MaxModelBytes)
	if err != nil {
		return nil, fmt.Errorf("model bytes: %w", err)
	}
	kind := BackendCPU
	if opts := arg(args, 1); opts.Type() == js.TypeObject {
		if v := opts.Get("backend"); v.Type() == js.TypeString {
			kind = v.String()
		} else if v.Type() != js.TypeUndefined {
			return nil, fmt.Errorf("options.backend must be %q or %q, got %s", BackendCPU, BackendWebGPU, describe(v))
		}
		if kind != BackendCPU && kind != BackendWebGPU {
			return nil, fmt.Errorf("options.backend must be %q or %q, got %q", BackendCPU, BackendWebGPU, kind)
		}
	} else if opts.Type() != js.TypeUndefined && opts.Type() != js.TypeNull {
		return nil, fmt.Errorf("options must be an object {backend}, got %s", describe(opts))
	}
	return func(progressFunc) (any, error) {
		f, err := modelfile.Parse(data)
		if err != nil {
			return nil, err
		}
		b, err := getBackend(kind)
		if err != nil {
			return nil, err
		}
		clf, err := classify.New(b, f)
		if err != nil {
			return nil, err
		}
		cfg := f.Meta.Config
		total, trainable := cfg.ParamCounts()
		m := &loaded{clf: clf, info: modelInfo{
			Name: f.Meta.Name, Description: f.Meta.Description, Config: cfg, Heads: cfg.Heads(),
			Labels: f.Meta.Labels, Protocol: f.Meta.Protocol, Quantization: f.Meta.Quantization,
			SizeBytes: len(data), Params: paramCounts{total, trainable}, Frames: cfg.AllFrames, ImgSize: cfg.ImgSize,
			ClipSeconds: f.Meta.ClipSeconds, Backend: kind,
		}}
		mu.Lock()
		h := nextHandle
		nextHandle++
		registry[h] = m
		mu.Unlock()
		info, err := toJS(m.info)
		if err != nil {
			return nil, err
		}
		out := js.Global().Get("Object").New()
		out.Set("handle", h)
		out.Set("info", info)
		return out, nil
	}, nil
}

// modelInfoFunc implements castgo.modelInfo(handle) → info.
func modelInfoFunc(args []js.Value) (any, error) {
	m, _, err := lookup(arg(args, 0))
	if err != nil {
		return nil, err
	}
	return toJS(m.info)
}

// dispose implements castgo.dispose(handle) → true.
func dispose(args []js.Value) (any, error) {
	m, h, err := lookup(arg(args, 0))
	if err != nil {
		return nil, err
	}
	mu.Lock()
	delete(registry, h)
	mu.Unlock()
	// The weights (on WebGPU: the device buffers) go now, not at garbage collection. Close waits for a run in
	// flight, which may itself wait on a JavaScript Promise (WebGPU): never block this synchronous call on it.
	go func() { closeExplainer(m); m.clf.Close() }()
	return true, nil
}

// videoSpec is the {numFrames, width, height, views} part of planViews and classify options.
type videoSpec struct {
	numFrames, width, height int
	views                    string
}

func readVideoSpec(opts js.Value) (videoSpec, error) {
	var s videoSpec
	if opts.Type() != js.TypeObject {
		return s, fmt.Errorf("options must be an object {numFrames, width, height, ...}, got %s", describe(opts))
	}
	var err error
	if s.numFrames, err = intField(opts, "numFrames", true, 0); err != nil {
		return s, err
	}
	if s.width, err = intField(opts, "width", true, 0); err != nil {
		return s, err
	}
	if s.height, err = intField(opts, "height", true, 0); err != nil {
		return s, err
	}
	if s.numFrames < 1 {
		return s, fmt.Errorf("numFrames is %d: the video needs at least one frame", s.numFrames)
	}
	if s.numFrames > MaxNumFrames {
		return s, fmt.Errorf("numFrames is %d, more than the limit of %d", s.numFrames, MaxNumFrames)
	}
	if s.width < 1 || s.height < 1 {
		return s, fmt.Errorf("frame size %dx%d is invalid", s.width, s.height)
	}
	if s.width > MaxSide || s.height > MaxSide {
		return s, fmt.Errorf("frame size %dx%d is too large: at most %d pixels per side (scale the frames down)", s.width, s.height, MaxSide)
	}
	if v := opts.Get("views"); !isNullish(v) {
		if v.Type() != js.TypeString {
			return s, fmt.Errorf("views must be a string CLIPSxCROPS such as \"1x1\", got %s", describe(v))
		}
		s.views = v.String()
	}
	return s, nil
}

// plan computes the views of a video for model m (the same plan classify.Classifier.Classify makes).
func plan(m *loaded, s videoSpec) (preprocess.Protocol, []preprocess.View, error) {
	p, err := classify.ParseViews(s.views, m.clf.Meta.Protocol)
	if err != nil {
		return p, nil, err
	}
	if p.Clips > MaxViews || p.Clips*p.Crops > MaxViews {
		return p, nil, fmt.Errorf("views %dx%d: %d clips × %d crops is more than the limit of %d views", p.Clips, p.Crops, p.Clips, p.Crops, MaxViews)
	}
	cfg := m.clf.Meta.Config
	views, err := preprocess.Plan(p, s.numFrames, s.width, s.height, cfg.ImgSize, cfg.AllFrames)
	if err != nil {
		return p, nil, err
	}
	return p, views, nil
}

// videoRequest reads the (handle, {numFrames, width, height, views?, …}) arguments of planViews, classify and
// viewLogits: the loaded model, the options object and the video it describes.
func videoRequest(args []js.Value) (*loaded, js.Value, videoSpec, error) {
	m, _, err := lookup(arg(args, 0))
	if err != nil {
		return nil, js.Value{}, videoSpec{}, err
	}
	opts := arg(args, 1)
	s, err := readVideoSpec(opts)
	if err != nil {
		return nil, js.Value{}, videoSpec{}, err
	}
	return m, opts, s, nil
}

// planViews implements castgo.planViews(handle, {numFrames, width, height, views?}).
func planViews(args []js.Value) (any, error) {
	m, _, s, err := videoRequest(args)
	if err != nil {
		return nil, err
	}
	p, views, err := plan(m, s)
	if err != nil {
		return nil, err
	}
	out := planJSON{Views: fmt.Sprintf("%dx%d", p.Clips, p.Crops), NeededFrames: preprocess.NeededFrames(views)}
	for _, v := range views {
		out.ViewList = append(out.ViewList, viewJSON{Clip: v.Clip, Crop: v.Crop, Frames: v.FrameIndices, X0: v.X0, Y0: v.Y0})
	}
	return toJS(out)
}

// planFrames plans the views of the video s for model m and reads the RGBA bytes of the frames they need
// from opts.frames, refusing more than MaxFrameBytes of them.
func planFrames(m *loaded, s videoSpec, opts js.Value) (views []preprocess.View, needed []int, raw map[int][]byte, err error) {
	if _, views, err = plan(m, s); err != nil {
		return nil, nil, nil, err
	}
	needed = preprocess.NeededFrames(views)
	if total := int64(len(needed)) * int64(s.width) * int64(s.height) * 4; total > MaxFrameBytes {
		return nil, nil, nil, fmt.Errorf("the %d needed frames of %dx%d pixels are %d MiB of RGBA, more than the limit of %d MiB: scale the frames down or take fewer views",
			len(needed), s.width, s.height, total>>20, MaxFrameBytes>>20)
	}
	if raw, err = readFrames(opts.Get("frames"), needed, s.numFrames, s.width*s.height*4); err != nil {
		return nil, nil, nil, err
	}
	return views, needed, raw, nil
}

// classifyVideo implements castgo.classify(handle, {numFrames, width, height, frames, views?, top?,
// probs?, onProgress?}) → Promise<Result>.
func classifyVideo(args []js.Value) (func(progressFunc) (any, error), error) {
	m, opts, s, err := videoRequest(args)
	if err != nil {
		return nil, err
	}
	top, err := intField(opts, "top", false, 5)
	if err != nil {
		return nil, err
	}
	if top < 1 || top > MaxTop {
		return nil, fmt.Errorf("top is %d, want 1 to %d", top, MaxTop)
	}
	wantProbs := opts.Get("probs").Truthy()
	onProgress := opts.Get("onProgress")
	if !isNullish(onProgress) && onProgress.Type() != js.TypeFunction {
		return nil, fmt.Errorf("onProgress must be a function, got %s", describe(onProgress))
	}
	_, _, raw, err := planFrames(m, s, opts)
	if err != nil {
		return nil, err
	}
	return func(yield progressFunc) (any, error) {
		video := classify.Video{NumFrames: s.numFrames, Width: s.width, Height: s.height,
			Frames: func(indices []int) (map[int]preprocess.Frame, error) {
				out := make(map[int]preprocess.Frame, len(indices))
				for _, idx := range indices {
					b, ok := raw[idx]
					if !ok {
						return nil, fmt.Errorf("frame %d is needed but was not given", idx)
					}
					f, err := preprocess.FrameFromRGBA(s.width, s.height, b)
					if err != nil {
						return nil, fmt.Errorf("frame %d: %w", idx, err)
					}
					out[idx] = f
				}
				return out, nil
			}}
		var cbErr error
		res, err := m.clf.Classify(video, classify.Options{Views: s.views, Top: top,
			Progress: func(stage string, done, total int) {
				if cbErr == nil && onProgress.Type() == js.TypeFunction {
					cbErr = callJS(onProgress, stage, done, total)
				}
				yield(stage, done, total)
			}})
		if err != nil {
			return nil, err
		}
		if cbErr != nil {
			return nil, fmt.Errorf("onProgress: %w", cbErr)
		}
		out := resultJSON{Result: res}
		if wantProbs {
			out.Probs = map[string][]float64{}
			for _, h := range res.Heads {
				out.Probs[h] = res.Probs(h)
			}
		}
		return toJS(out)
	}, nil
}

// readFrames copies the RGBA bytes of the needed frames out of frames: an array aligned with needed (or
// holding all numFrames frames), or an object / Map from frame index to data.
// Each frame must hold exactly frameBytes bytes; that is checked before anything is copied.
func readFrames(frames js.Value, needed []int, numFrames, frameBytes int) (map[int][]byte, error) {
	if isNullish(frames) {
		return nil, fmt.Errorf("frames is missing: give the RGBA bytes of neededFrames %v (see castgo.planViews)", needed)
	}
	out := make(map[int][]byte, len(needed))
	var get func(i, idx int) js.Value // the frame of source index idx, the i-th needed frame
	switch {
	case js.Global().Get("Array").Call("isArray", frames).Bool():
		n := frames.Length()
		switch n {
		case len(needed):
			get = func(i, _ int) js.Value { return frames.Index(i) }
		case numFrames:
			get = func(_, idx int) js.Value { return frames.Index(idx) }
		default:
			return nil, fmt.Errorf("frames has %d entries, want %d aligned with neededFrames %v (or all %d frames of the video)",
				n, len(needed), needed, numFrames)
		}
	case frames.InstanceOf(js.Global().Get("Map")):
		get = func(_, idx int) js.Value { return frames.Call("get", idx) }
	case frames.Type() == js.TypeObject:
		get = func(_, idx int) js.Value { return frames.Get(fmt.Sprint(idx)) }
	default:
		return nil, fmt.Errorf("frames must be an array or an object mapping frame index to RGBA bytes, got %s", describe(frames))
	}
	for i, idx := range needed {
		v := get(i, idx)
		if isNullish(v) {
			return nil, fmt.Errorf("frames: frame %d (needed frame #%d of %v) is missing", idx, i, needed)
		}
		if v.Type() == js.TypeObject && !isByteArray(v) && !isNullish(v.Get("data")) {
			v = v.Get("data") // an ImageData
		}
		n, err := byteLength(v)
		if err != nil {
			return nil, fmt.Errorf("frames: frame %d: %w", idx, err)
		}
		if n != frameBytes {
			return nil, fmt.Errorf("frames: frame %d: RGBA image needs %d bytes, has %d", idx, frameBytes, n)
		}
		b, err := bytesFromJS(v)
		if err != nil {
			return nil, fmt.Errorf("frames: frame %d: %w", idx, err)
		}
		out[idx] = b
	}
	return out, nil
}

// logits implements castgo.logits(handle, clip: Float32Array [B,3,T,S,S], batch) →
// Promise<{heads: {name: Float32Array}, classes: {name: n}, ms}>: the raw model output of an already
// normalised clip, for parity checks (cast compare).
func logits(args []js.Value) (func(progressFunc) (any, error), error) {
	m, _, err := lookup(arg(args, 0))
	if err != nil {
		return nil, err
	}
	clip := arg(args, 1)
	if !clip.InstanceOf(js.Global().Get("Float32Array")) {
		return nil, fmt.Errorf("clip must be a Float32Array, got %s", describe(clip))
	}
	batch, err := intValue(arg(args, 2), "batch", false, 1)
	if err != nil {
		return nil, err
	}
	if batch < 1 || batch > MaxBatch {
		return nil, fmt.Errorf("batch is %d, want 1 to %d", batch, MaxBatch)
	}
	nbytes := clip.Get("byteLength").Float()
	if want := float64(batch) * float64(m.clf.Model.ClipLen()) * 4; nbytes != want {
		return nil, fmt.Errorf("input has %.0f values, want %d clips × %d = %.0f", nbytes/4, batch, m.clf.Model.ClipLen(), want/4)
	}
	if nbytes > MaxClipBytes {
		return nil, fmt.Errorf("clip is %.0f bytes, more than the limit of %d", nbytes, MaxClipBytes)
	}
	raw := make([]byte, int(nbytes))
	js.CopyBytesToGo(raw, js.Global().Get("Uint8Array").New(clip.Get("buffer"), clip.Get("byteOffset"), clip.Get("byteLength")))
	x := make([]float32, len(raw)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return func(progressFunc) (any, error) {
		start := time.Now()
		outs, err := m.clf.Model.Run(x, batch)
		if err != nil {
			return nil, err
		}
		elapsed := time.Since(start)
		heads, classes := js.Global().Get("Object").New(), js.Global().Get("Object").New()
		for i, h := range m.clf.Meta.Config.Heads() {
			b := make([]byte, 4*len(outs[i]))
			for k, v := range outs[i] {
				binary.LittleEndian.PutUint32(b[4*k:], math.Float32bits(v))
			}
			u8 := js.Global().Get("Uint8Array").New(len(b))
			js.CopyBytesToJS(u8, b)
			heads.Set(h, js.Global().Get("Float32Array").New(u8.Get("buffer")))
			classes.Set(h, len(outs[i])/batch)
		}
		out := js.Global().Get("Object").New()
		out.Set("heads", heads)
		out.Set("classes", classes)
		out.Set("batch", batch)
		out.Set("ms", float64(elapsed.Microseconds())/1000)
		return out, nil
	}, nil
}
