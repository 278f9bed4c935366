package edge

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/worker/chain"
)

// Protocol is the version of the HTTP API, reported by GET /v1/model.
const Protocol = "castgo-edge/1"

// loads counts LoadModel successes in this Go instance (the default Server.ModelLoads).
var loads atomic.Int64

// Server is the worker's http.Handler: GET /healthz, GET /v1/model and POST /v1/classify. It holds one
// loaded model and is safe for concurrent use: classifications queue on a mutex (the model runs one view
// at a time anyway), everything else runs freely. Every client mistake gets a 4xx JSON {"error": "..."};
// a panic in a handler is recovered into a 500 and never takes the process down.
type Server struct {
	Limits Limits
	// ModelLoads reports how many times the model was loaded in this isolate (GET /healthz model_loads).
	// nil counts this Go instance's LoadModel calls; the wasm worker counts on the JavaScript global object,
	// which outlives any one Go instance, so a worker that re-instantiated Go per request would show it.
	ModelLoads func() int64
	// Instances, when set, reports how many Go instances the isolate has started (GET /healthz go_instances).
	Instances func() int64

	start    time.Time
	model    *Model
	loadErr  error
	mu       sync.Mutex // serialises classifications
	requests atomic.Int64
}

// NewServer returns a Server with DefaultLimits and no model yet (see SetModel).
func NewServer() *Server { return &Server{Limits: DefaultLimits, start: time.Now()} }

// SetModel installs the model, or the error that prevented loading it (then /v1 answers 503 with it).
func (s *Server) SetModel(m *Model, err error) {
	if err == nil && m == nil {
		err = errors.New("no model")
	}
	s.model, s.loadErr = m, err
	if err == nil {
		loads.Add(1)
	}
}

// httpError is an error with the HTTP status it answers with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// ServeHTTP routes a request; see the package documentation and README.md for the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	defer func() {
		if p := recover(); p != nil {
			writeError(w, errorf(http.StatusInternalServerError, "internal error: %v", p))
		}
	}()
	var err error
	switch r.URL.Path {
	case "/healthz":
		err = s.only(w, r, s.healthz, http.MethodGet, http.MethodHead)
	case "/v1/model":
		err = s.only(w, r, s.modelInfo, http.MethodGet, http.MethodHead)
	case "/v1/classify":
		err = s.only(w, r, s.classify, http.MethodPost)
	default:
		err = errorf(http.StatusNotFound, "no route %s %s: the API is GET /healthz, GET /v1/model and POST /v1/classify", r.Method, r.URL.Path)
	}
	if err != nil {
		drain(r, 2*s.Limits.MaxBodyBytes)
		writeError(w, err)
	}
}

// drain reads and discards what is left of a rejected request's body, up to limit bytes, so that the
// client, still sending, receives the error instead of a reset connection (workerd closes a connection
// whose request body was not consumed). Bodies announced larger than limit are not drained.
func drain(r *http.Request, limit int64) {
	if r.Body == nil || r.ContentLength > limit {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, limit))
}

// only runs h when the request's method is one of methods, else answers 405 with an Allow header.
func (s *Server) only(w http.ResponseWriter, r *http.Request, h func(http.ResponseWriter, *http.Request) error, methods ...string) error {
	for _, m := range methods {
		if r.Method == m {
			return h(w, r)
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	return errorf(http.StatusMethodNotAllowed, "method %s not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(methods, " or "))
}

// health is the body of GET /healthz.
type health struct {
	OK          bool    `json:"ok"`
	ModelLoads  int64   `json:"model_loads"`
	UptimeS     float64 `json:"uptime_s"` // since this Go instance started
	Requests    int64   `json:"requests"` // served by this Go instance, this one included
	GoInstances int64   `json:"go_instances,omitempty"`
	Model       string  `json:"model,omitempty"`
	Error       string  `json:"error,omitempty"` // why the model did not load
	HeapBytes   uint64  `json:"heap_bytes"`      // Go heap in use
	SysBytes    uint64  `json:"sys_bytes"`       // memory the Go runtime holds (wasm: about the linear memory)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := health{OK: s.loadErr == nil, UptimeS: time.Since(s.start).Seconds(), Requests: s.requests.Load(),
		HeapBytes: ms.HeapAlloc, SysBytes: ms.Sys}
	if s.ModelLoads != nil {
		h.ModelLoads = s.ModelLoads()
	} else {
		h.ModelLoads = loads.Load()
	}
	if s.Instances != nil {
		h.GoInstances = s.Instances()
	}
	status := http.StatusOK
	if s.loadErr != nil {
		// Not healthy: a load balancer or monitor must see the failure, with the reason in the body.
		status = http.StatusServiceUnavailable
		h.Error = "model not loaded: " + s.loadErr.Error()
	} else {
		h.Model = s.model.Info.Name
		if c := s.model.Chain; c != nil {
			// A coordinator is healthy once every stage answers. The first answer of a stage includes loading
			// it, so the wait is long: abandoning it would cancel the stage's start-up.
			if err := c.Health(150 * time.Second); err != nil {
				status, h.OK, h.Error = http.StatusServiceUnavailable, false, err.Error()
			}
		}
	}
	writeJSON(w, status, h)
	return nil
}

// modelResponse is the body of GET /v1/model.
type modelResponse struct {
	ModelInfo
	Protocol string `json:"api_protocol"`
}

func (s *Server) modelInfo(w http.ResponseWriter, _ *http.Request) error {
	if s.loadErr != nil {
		return errorf(http.StatusServiceUnavailable, "model not loaded: %v", s.loadErr)
	}
	writeJSON(w, http.StatusOK, modelResponse{ModelInfo: s.model.Info, Protocol: Protocol})
	return nil
}

// classifyResponse is the body of a successful POST /v1/classify: the classify.Result (model, views, top-k
// per head, per-view tops, timings of decode / preprocess / inference / total in ms) plus the input and the
// server-side timings.
type classifyResponse struct {
	*classify.Result
	Input     inputInfo         `json:"input"`
	Server    serverTimings     `json:"server_timings"`
	RequestID string            `json:"request_id,omitempty"` // a coordinator's: passed to every stage
	Stages    []chain.StageStat `json:"stages,omitempty"`     // a coordinator's: one entry per stage
}

type inputInfo struct {
	Frames int    `json:"frames"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Format string `json:"format"` // "png", "jpeg", "rgb" or "rgba" (multipart frames may mix PNG and JPEG)
	Bytes  int64  `json:"bytes"`  // request body bytes read
}

type serverTimings struct {
	ReadMS     float64 `json:"read_ms"`     // reading and parsing the body (headers of every frame)
	QueueMS    float64 `json:"queue_ms"`    // waiting for the model
	ClassifyMS float64 `json:"classify_ms"` // classify.Classify: decode, preprocess, inference
	TotalMS    float64 `json:"total_ms"`
}

func (s *Server) classify(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	if s.loadErr != nil {
		return errorf(http.StatusServiceUnavailable, "model not loaded: %v", s.loadErr)
	}
	lim := s.Limits
	if r.ContentLength > lim.MaxBodyBytes {
		return errorf(http.StatusRequestEntityTooLarge, "body of %d bytes exceeds the limit of %d bytes (%d MiB)", r.ContentLength, lim.MaxBodyBytes, lim.MaxBodyBytes>>20)
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errorf(http.StatusBadRequest, "malformed query string: %v", err)
	}
	cl, err := readClip(r, query, lim)
	if err != nil {
		return err
	}
	read := time.Now()

	m := s.model
	opt, views, err := options(cl, query, r.Header, m, lim)
	if err != nil {
		return err
	}
	needed := preprocess.NeededFrames(views)
	if cl.encoded != nil {
		if b := int64(len(needed)) * int64(cl.width) * int64(cl.height) * 3; b > lim.MaxDecodedBytes {
			return errorf(http.StatusBadRequest, "the %d frames the %s views sample would decode to %.1f MiB of RGB, over the limit of %d MiB: send smaller frames or fewer views",
				len(needed), opt.Views, float64(b)/(1<<20), lim.MaxDecodedBytes>>20)
		}
	}

	var requestID string
	var stages []chain.StageStat
	if m.Chain != nil {
		requestID = requestIDOf(r)
		w.Header().Set("X-Request-Id", requestID)
	}
	s.mu.Lock()
	locked := time.Now()
	res, err := func() (*classify.Result, error) {
		defer s.mu.Unlock()
		if m.Chain != nil {
			m.Chain.Start(requestID)
			defer func() { stages = m.Chain.Report() }()
		}
		return m.Classifier.Classify(classify.Video{NumFrames: cl.count(), Width: cl.width, Height: cl.height, Frames: cl.frames}, opt)
	}()
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			return err
		}
		var ce *chain.Error
		if errors.As(err, &ce) {
			// The stages that answered still report their figures.
			writeJSON(w, ce.HTTPStatus(), map[string]any{"error": fmt.Sprintf("request %s: %v", requestID, ce), "request_id": requestID, "stages": stages})
			return nil
		}
		return errorf(http.StatusInternalServerError, "classifying: %v", err)
	}
	done := time.Now()
	writeJSON(w, http.StatusOK, classifyResponse{
		Result:    res,
		Input:     inputInfo{Frames: cl.count(), Width: cl.width, Height: cl.height, Format: cl.format, Bytes: cl.bodyBytes},
		Server:    serverTimings{ReadMS: ms(read.Sub(start)), QueueMS: ms(locked.Sub(read)), ClassifyMS: ms(done.Sub(locked)), TotalMS: ms(done.Sub(start))},
		RequestID: requestID, Stages: stages,
	})
	return nil
}

// options reads top and views (query, then multipart fields, then X-Top / X-Views headers) and plans the
// views, so that every problem with them is a 400 before any work.
func options(cl *clip, query url.Values, h http.Header, m *Model, lim Limits) (classify.Options, []preprocess.View, error) {
	get := func(name string) string {
		if v := query.Get(name); v != "" {
			return v
		}
		if v := cl.fields[name]; v != "" {
			return v
		}
		return h.Get("X-" + name)
	}
	opt := classify.Options{Top: 5}
	if v := get("top"); v != "" {
		top, err := parseInt("top", v, 1, lim.MaxTop)
		if err != nil {
			return opt, nil, err
		}
		opt.Top = top
	}
	meta := m.Classifier.Meta
	p, err := classify.ParseViews(get("views"), meta.Protocol)
	if err != nil {
		return opt, nil, errorf(http.StatusBadRequest, "bad parameter views: %v", err)
	}
	if p.Clips*p.Crops > lim.MaxViews {
		return opt, nil, errorf(http.StatusBadRequest, "bad parameter views: %dx%d is %d views, over the limit of %d", p.Clips, p.Crops, p.Clips*p.Crops, lim.MaxViews)
	}
	opt.Views = fmt.Sprintf("%dx%d", p.Clips, p.Crops)
	if m.Chain != nil {
		limit := lim.MaxStageRequests
		if limit <= 0 {
			limit = DefaultMaxStageRequests
		}
		if n := len(m.Chain.Manifest.Stages); p.Clips*p.Crops*n > limit {
			return opt, nil, errorf(http.StatusBadRequest, "bad parameter views: %dx%d views through %d stages is %d stage requests, over the limit of %d",
				p.Clips, p.Crops, n, p.Clips*p.Crops*n, limit)
		}
	}
	cfg := meta.Config
	views, err := preprocess.Plan(p, cl.count(), cl.width, cl.height, cfg.ImgSize, cfg.AllFrames)
	if err != nil {
		return opt, nil, errorf(http.StatusBadRequest, "cannot sample %s views from %d frames of %dx%d: %v", opt.Views, cl.count(), cl.width, cl.height, err)
	}
	return opt, views, nil
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(map[string]string{"error": "encoding the response: " + err.Error()})
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError answers with {"error": "..."} and the error's status (500 for errors without one).
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// requestIDOf returns the request's X-Request-Id (or Cf-Ray) when it is a short printable token, else a
// fresh random one.
func requestIDOf(r *http.Request) string {
	for _, h := range []string{"X-Request-Id", "Cf-Ray"} {
		if v := r.Header.Get(h); v != "" && len(v) <= 64 && strings.IndexFunc(v, func(c rune) bool { return c <= ' ' || c > '~' }) < 0 {
			return v
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
