package edge

import (
	"fmt"
	"io"

	"github.com/castvideo/castgo/cast"
)

// Limits bound what one request may ask of the worker, so that a request's working set stays inside the
// isolate's memory budget (see Fit) and its CPU time stays reasonable.
type Limits struct {
	MaxBodyBytes    int64 `json:"max_body_bytes"`    // request body (Content-Length checked first, reads capped)
	MaxFrames       int   `json:"max_frames"`        // frames per clip
	MaxDim          int   `json:"max_dim"`           // frame width and height
	MaxDecodedBytes int64 `json:"max_decoded_bytes"` // RGB bytes of the frames the sampler picks (JPEG/PNG only)
	MaxViews        int   `json:"max_views"`         // clips × crops
	MaxTop          int   `json:"max_top"`           // predictions per head
	// MaxStageRequests bounds views × stages of one request to a sharded model's coordinator (0:
	// DefaultMaxStageRequests); the single-isolate worker has no stages.
	MaxStageRequests int `json:"max_stage_requests,omitempty"`
}

// DefaultMaxStageRequests bounds views × stages per request on a coordinator: 2×3 views through 16 stages.
const DefaultMaxStageRequests = 96

// DefaultLimits are the worker's limits: 16 MiB bodies, 256 frames of at most 1920×1920, 24 MiB of decoded
// frames (four 1080p frames: views=1x1 at 1080p, the default two clips at 720p), 15 views (the K400
// protocol's 5×3) and top-20.
var DefaultLimits = Limits{
	MaxBodyBytes:    16 << 20,
	MaxFrames:       256,
	MaxDim:          1920,
	MaxDecodedBytes: 24 << 20,
	MaxViews:        15,
	MaxTop:          20,
}

// Memory budget of a Cloudflare Workers isolate.
const (
	// IsolateBytes is the platform's memory limit per isolate ("128 MB"), taken as 128 MiB.
	IsolateBytes = 128 << 20
	// HeadroomBytes is what a model must leave free under IsolateBytes to be packaged: the estimate is an
	// estimate, and the garbage collector needs slack.
	HeadroomBytes = 16 << 20
	// RuntimeBytes is the Go runtime's own baseline (stacks, runtime structures, the JS glue's buffers).
	RuntimeBytes = 8 << 20
)

// FitReport is the worker's peak memory estimate for one model against the isolate budget.
type FitReport struct {
	Model     cast.MemoryEstimate // one view: float32 weights + activations (cast.Config.Memory(1))
	ModelFile int64               // the model file 3×: the bytes (embedded or fetched), the parsed tensors, the backend's copies
	Request   int64               // body ×2 (buffers grow by doubling) + decoded frames + one image decode's scratch
	Runtime   int64               // RuntimeBytes
	Wasm      int64               // the compiled module (code and data); 0 when unknown
	Total     int64               // the sum of the above
	Budget    int64               // IsolateBytes − HeadroomBytes
	OK        bool                // Total ≤ Budget
}

// Fit estimates the worker's peak memory for a model of config cfg whose file has fileBytes bytes, served
// by a wasm module of wasmBytes bytes, with DefaultLimits.
func Fit(cfg cast.Config, fileBytes, wasmBytes int64) FitReport {
	l := DefaultLimits
	r := FitReport{
		Model:     cfg.Memory(1),
		ModelFile: 3 * fileBytes,
		Request:   2*l.MaxBodyBytes + l.MaxDecodedBytes + int64(l.MaxDim)*int64(l.MaxDim)*4,
		Runtime:   RuntimeBytes,
		Wasm:      wasmBytes,
		Budget:    IsolateBytes - HeadroomBytes,
	}
	r.Total = r.Model.Total + r.ModelFile + r.Request + r.Runtime + r.Wasm
	r.OK = r.Total <= r.Budget
	return r
}

// Print writes the report as a small table in MiB.
func (r FitReport) Print(w io.Writer) {
	mib := func(b int64) string { return fmt.Sprintf("%8.2f MiB", float64(b)/(1<<20)) }
	fmt.Fprintf(w, "  weights (float32)          %s\n", mib(r.Model.Weights))
	fmt.Fprintf(w, "  activations (one view)     %s  (input %.2f, streams %.2f, largest sub-layer %.2f)\n",
		mib(r.Model.Activations), float64(r.Model.Input)/(1<<20), float64(r.Model.Streams)/(1<<20), float64(r.Model.Transient)/(1<<20))
	fmt.Fprintf(w, "  model file ×3              %s\n", mib(r.ModelFile))
	fmt.Fprintf(w, "  request at the limits      %s  (body 2×%d MiB + decoded frames %d MiB + decode scratch)\n",
		mib(r.Request), DefaultLimits.MaxBodyBytes>>20, DefaultLimits.MaxDecodedBytes>>20)
	fmt.Fprintf(w, "  Go runtime                 %s\n", mib(r.Runtime))
	fmt.Fprintf(w, "  wasm module                %s\n", mib(r.Wasm))
	verdict := "fits"
	if !r.OK {
		verdict = "DOES NOT FIT"
	}
	fmt.Fprintf(w, "  total                      %s  of %d MiB (budget %d MiB after %d MiB headroom): %s, %.1f MiB to spare under 128 MiB\n",
		mib(r.Total), IsolateBytes>>20, r.Budget>>20, HeadroomBytes>>20, verdict, float64(IsolateBytes-r.Total)/(1<<20))
}
