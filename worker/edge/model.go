// Package edge is the HTTP API of the CAST edge worker: a plain net/http Handler that classifies clips
// sent as frames with the shared classification core (package classify), the same model file format and
// the same preprocessing as the CLI and the WebAssembly module. It holds no platform code: the worker's
// main (GOOS=js GOARCH=wasm) serves it through github.com/syumai/workers in Cloudflare's workerd, a native
// build serves it with net/http, and the tests drive it with net/http/httptest.
package edge

import (
	"fmt"
	"time"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/shard"
	"github.com/castvideo/castgo/worker/chain"
)

// Model is a loaded model file with the description GET /v1/model returns.
type Model struct {
	Classifier *classify.Classifier
	Info       ModelInfo
	// Chain is set on a sharded model's coordinator: the classifier runs the views through the chain of
	// stage workers (Classifier.Model is Chain), and responses carry the stages' stats.
	Chain *chain.Chain
}

// ModelInfo is the JSON body of GET /v1/model.
type ModelInfo struct {
	Name         string              `json:"name"`
	Description  string              `json:"description"`
	Source       string              `json:"source"` // "embedded:default-int8", or "r2:KEY"
	Config       cast.Config         `json:"config"`
	Heads        []string            `json:"heads"`
	Classes      map[string][]string `json:"classes"` // labels per head, in class-index order
	Protocol     preprocess.Protocol `json:"protocol"`
	Quantization string              `json:"quantization"`
	SizeBytes    int                 `json:"size_bytes"` // model file size
	Params       int                 `json:"params"`
	Memory       MemoryInfo          `json:"memory"`
	Limits       Limits              `json:"limits"`
	LoadMS       float64             `json:"load_ms"` // parse + load + graph build, once per isolate
}

// MemoryInfo is the memory estimate of one view (cast.Config.Memory with batch 1) plus the request working
// set the limits allow; see FitReport for how the worker's budget is checked.
type MemoryInfo struct {
	WeightsBytes      int64 `json:"weights_bytes"`
	ActivationsBytes  int64 `json:"activations_bytes"`
	PeakModelBytes    int64 `json:"peak_model_bytes"`    // weights + activations of one view
	RequestBytes      int64 `json:"request_bytes"`       // body ×2 + decoded frames + one decode's scratch, at the limits
	PeakEstimateBytes int64 `json:"peak_estimate_bytes"` // model file ×3 + peak model + request + runtime (no wasm code)
}

// LoadModel parses a model file and loads it on the pure-Go backend (sequential in js/wasm). source names
// where the bytes came from, for GET /v1/model.
func LoadModel(data []byte, source string) (*Model, error) {
	start := time.Now()
	f, err := modelfile.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("parsing model file from %s: %w", source, err)
	}
	b, _, err := infer.NewBackend("go")
	if err != nil {
		return nil, fmt.Errorf("opening the pure-Go backend: %w", err)
	}
	clf, err := classify.New(b, f)
	if err != nil {
		return nil, fmt.Errorf("loading model from %s: %w", source, err)
	}
	cfg := f.Meta.Config
	params, _ := cfg.ParamCounts()
	fit := Fit(cfg, int64(len(data)), 0)
	m := &Model{Classifier: clf, Info: ModelInfo{
		Name: f.Meta.Name, Description: f.Meta.Description, Source: source, Config: cfg, Heads: cfg.Heads(),
		Classes: f.Meta.Labels, Protocol: f.Meta.Protocol, Quantization: f.Meta.Quantization,
		SizeBytes: len(data), Params: params, Limits: DefaultLimits,
		Memory: MemoryInfo{
			WeightsBytes: fit.Model.Weights, ActivationsBytes: fit.Model.Activations, PeakModelBytes: fit.Model.Total,
			RequestBytes: fit.Request, PeakEstimateBytes: fit.Total - fit.Wasm,
		},
	}}
	m.Info.LoadMS = float64(time.Since(start).Microseconds()) / 1000
	return m, nil
}

// NewChainModel is the model of a sharded model's coordinator: the manifest's metadata, run through c,
// parallel views at a time (each in flight holds its clip and two activation messages: 29 MB for base).
// source names where the manifest came from.
func NewChainModel(m *shard.Manifest, c *chain.Chain, source string, parallel int) *Model {
	parallel = max(parallel, 1)
	meta := m.Metadata()
	clf := &classify.Classifier{Meta: meta, Model: c, Batch: parallel} // views in flight at once
	params, _ := m.Config.ParamCounts()
	var size int
	for _, e := range m.Stages {
		size += int(e.Size)
	}
	return &Model{Classifier: clf, Chain: c, Info: ModelInfo{
		Name: m.Name, Description: m.Description, Source: source, Config: m.Config, Heads: m.Config.Heads(),
		Classes: m.Labels, Protocol: m.Protocol, Quantization: m.Quantization, SizeBytes: size, Params: params,
		Limits: DefaultLimits,
	}}
}
