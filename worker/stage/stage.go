// Package stage is the HTTP API of a stage worker: one edge isolate that holds one stage of a sharded
// model (package shard: a stage file and its manifest entry) and runs it on the activations of one view
// at a time, for the coordinator (package chain). It holds no platform code: the shard worker's main
// (worker/cmd/shardworker, GOOS=js GOARCH=wasm) serves it in workerd, the tests with net/http/httptest.
//
//	GET  /healthz    200 {"ok": true, "stage": NAME, …} once the stage is loaded, else 503 with the reason
//	POST /v1/stage   an activation message (wire.go) for this stage → the message for the next stage (or
//	                 the logits, from the head stage); headers X-Castgo-Stage, X-Castgo-Blocks,
//	                 X-Castgo-Ms (CPU of the run), X-Castgo-Wasm-Memory (linear memory after it)
//
// Errors are JSON {"error": "stage NAME: …"}: 400 for a corrupt activation, 503 when the stage is not
// loaded (its object missing, altered, swapped or too large), 500 when the run fails.
package stage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/shard"
)

// Header names of the stage protocol.
const (
	HeaderRequestID = "X-Request-Id"
	HeaderStage     = "X-Castgo-Stage"
	HeaderBlocks    = "X-Castgo-Blocks"
	HeaderMS        = "X-Castgo-Ms"
	HeaderMemory    = "X-Castgo-Wasm-Memory"
	// HeaderBusy marks a 503 answered because the stage is running another view: try again shortly.
	HeaderBusy = "X-Castgo-Busy"
)

// GCPercent is the garbage collector's target (debug.SetGCPercent) for a stage worker: a run's garbage
// (its outputs, the request's body) is collected before it adds to the heap a quarter of what stays live,
// instead of as much again (Go's default, 100), so that the WASM linear memory, which never shrinks,
// stays near the live heap (docs/stagemem: base-ssv2's embedding stage 115 → 93 MiB).
const GCPercent = 25

// Stage is a loaded stage: its manifest entry and its model.
type Stage struct {
	Manifest *shard.Manifest
	Index    int
	Entry    shard.Entry
	Model    *infer.StageModel
	LoadMS   float64
}

// Load checks data against entry index of the manifest (size, sha256, that it is that stage of that
// model: shard.Manifest.CheckStage) and loads it on the pure-Go backend. The caller should drop data
// afterwards: the stage keeps only the loaded weights.
func Load(m *shard.Manifest, index int, data []byte) (*Stage, error) {
	start := time.Now()
	f, err := m.CheckStage(index, data)
	if err != nil {
		return nil, err
	}
	// releasepacked: the stage only runs inference, so each weight's packed form is its only copy.
	b, _, err := infer.NewBackend("go:releasepacked")
	if err != nil {
		return nil, fmt.Errorf("opening the pure-Go backend: %w", err)
	}
	e := m.Stages[index]
	sm, err := infer.NewStage(b, m.Config, e.Stage(), f.Weights)
	if err != nil {
		return nil, fmt.Errorf("stage %q: %w", e.Name, err)
	}
	return &Stage{Manifest: m, Index: index, Entry: e, Model: sm, LoadMS: msSince(start)}, nil
}

// Server is a stage worker's http.Handler.
type Server struct {
	// MemoryBytes reports the isolate's memory for X-Castgo-Wasm-Memory and /healthz: the wasm linear
	// memory in the worker; nil reports the Go runtime's Sys.
	MemoryBytes func() int64
	// Name names the stage in errors before it is loaded (e.g. "stage-1").
	Name string

	stage    *Stage
	loadErr  error
	requests atomic.Int64
	start    time.Time

	// One view at a time: busy is held from before a request's body is read into Go until its answer has
	// been handed over, and a request that finds it held is answered 503 with HeaderBusy at once (the
	// coordinator retries it), so the linear memory holds one view's activations however many requests
	// arrive together. Waiting inside the isolate instead would leave the second request with no I/O of its
	// own pending, which workerd cancels as hung.
	busy sync.Mutex
}

// NewServer returns a server for the stage called name, not loaded yet (see SetStage).
func NewServer(name string) *Server { return &Server{Name: name, start: time.Now()} }

// SetStage installs the loaded stage, or the error that prevented loading it (then every route answers
// 503 with it).
func (s *Server) SetStage(st *Stage, err error) {
	if err == nil && st == nil {
		err = errors.New("no stage")
	}
	s.stage, s.loadErr = st, err
	if st != nil {
		s.Name = st.Entry.Name
	}
}

func (s *Server) memory() int64 {
	if s.MemoryBytes != nil {
		return s.MemoryBytes()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys)
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if id := r.Header.Get(HeaderRequestID); id != "" {
		w.Header().Set(HeaderRequestID, id)
	}
	defer func() {
		if p := recover(); p != nil {
			s.fail(w, http.StatusInternalServerError, fmt.Errorf("internal error: %v", p))
		}
	}()
	switch {
	case r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.healthz(w)
	case r.URL.Path == "/v1/stage" && r.Method == http.MethodPost:
		s.run(w, r)
	default:
		s.fail(w, http.StatusNotFound, fmt.Errorf("no route %s %s: a stage worker answers GET /healthz and POST /v1/stage", r.Method, r.URL.Path))
	}
}

type health struct {
	OK          bool    `json:"ok"`
	Stage       string  `json:"stage"`
	Index       int     `json:"index"`
	Blocks      [2]int  `json:"blocks"`
	Range       string  `json:"range,omitempty"` // e.g. "embed+blocks[0,4)"
	Model       string  `json:"model,omitempty"`
	LoadMS      float64 `json:"load_ms"`
	MemoryBytes int64   `json:"wasm_memory_bytes"`
	HeapBytes   uint64  `json:"heap_bytes"`
	Requests    int64   `json:"requests"`
	UptimeS     float64 `json:"uptime_s"`
	Error       string  `json:"error,omitempty"`
}

func (s *Server) healthz(w http.ResponseWriter) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := health{OK: s.loadErr == nil, Stage: s.Name, MemoryBytes: s.memory(), HeapBytes: ms.HeapAlloc,
		Requests: s.requests.Load(), UptimeS: time.Since(s.start).Seconds()}
	status := http.StatusOK
	if s.loadErr != nil {
		status = http.StatusServiceUnavailable
		h.Error = fmt.Sprintf("stage %s not loaded: %v", s.Name, s.loadErr)
	} else {
		st := s.stage
		h.Index, h.Blocks, h.Range, h.Model, h.LoadMS = st.Index, st.Entry.Blocks, st.Entry.Stage().String(), st.Manifest.Name, st.LoadMS
	}
	writeJSON(w, status, h)
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	if s.loadErr != nil {
		drain(r)
		s.fail(w, http.StatusServiceUnavailable, fmt.Errorf("not loaded: %w", s.loadErr))
		return
	}
	st := s.stage
	cfg := st.Manifest.Config
	shapes := st.Entry.Stage().Inputs(cfg, 1)
	want := make([]int, len(shapes))
	size := int64(headerBytes + 4*len(shapes))
	for i, dims := range shapes {
		want[i] = numel(dims)
		size += 4 * int64(want[i])
	}
	if r.ContentLength > size {
		drain(r)
		s.fail(w, http.StatusBadRequest, fmt.Errorf("%w: body of %d bytes, a message for this stage has %d", ErrCorrupt, r.ContentLength, size))
		return
	}
	if !s.busy.TryLock() {
		drain(r)
		w.Header().Set(HeaderBusy, "1")
		w.Header().Set("Retry-After", "1")
		s.fail(w, http.StatusServiceUnavailable, errors.New("busy with another view"))
		return
	}
	defer s.busy.Unlock()
	// One extra byte detects a body longer than a message.
	body := make([]byte, 0, size+1)
	lr := io.LimitReader(r.Body, size+1)
	for {
		n, err := lr.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			s.fail(w, http.StatusBadRequest, fmt.Errorf("reading the activations: %w", err))
			return
		}
	}
	if err := CheckSizes(body, st.Index, want); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	t0 := time.Now()
	// The values go straight from the body into the input tensors; the body is released before the run.
	fillIn := Values(body, want)
	out, err := st.Model.RunFill(1, func(i int, dst []float32) error {
		err := fillIn(i, dst)
		if i == len(want)-1 {
			body, fillIn = nil, nil
		}
		return err
	})
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	runMS := msSince(t0)
	msg := Encode(st.Index+1, out)
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	h.Set(HeaderStage, st.Entry.Name)
	h.Set(HeaderBlocks, fmt.Sprintf("%d,%d", st.Entry.Blocks[0], st.Entry.Blocks[1]))
	h.Set(HeaderMS, strconv.FormatFloat(runMS, 'f', 3, 64))
	h.Set(HeaderMemory, strconv.FormatInt(s.memory(), 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(msg)
	// Collect the run's garbage now (the castgo outputs handed over, tens of MiB for base), so that the next
	// request starts from a heap without it: linear memory never shrinks, and fewer big free spans of odd
	// sizes keep it from growing.
	msg, out = nil, nil //nolint:ineffassign
	runtime.GC()
}

// fail answers {"error": "stage NAME: …"}.
func (s *Server) fail(w http.ResponseWriter, status int, err error) {
	w.Header().Set(HeaderStage, s.Name)
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf("stage %s: %v", s.Name, err)})
}

func drain(r *http.Request) {
	if r.Body != nil && r.ContentLength < 64<<20 {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"encoding the response"}`)
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func numel(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
