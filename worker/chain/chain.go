// Package chain is the coordinator's model: it runs the views of a clip through a chain of stage workers
// (package stage), one HTTP request per view and stage over service bindings, views in parallel, and
// reports each stage's time and memory. A Chain is a classify.Runner, so the coordinator serves the same
// POST /v1/classify as the single-isolate worker (package edge) with the same preprocessing and merging.
package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/castvideo/castgo/cast/shard"
	"github.com/castvideo/castgo/worker/stage"
)

// DefaultTimeout bounds one stage request (a base stage of two blocks takes seconds of CPU per view).
const DefaultTimeout = 120 * time.Second

// Doer sends one HTTP request: an *http.Client, or a service binding's fetch in the worker (which does not
// link net/http's client transport into the wasm module).
type Doer interface {
	Do(req *http.Request) (*http.Response, error)
}

// Chain runs a sharded model's stages in order through HTTP clients, one per stage (service bindings in
// the worker). It is safe for concurrent use.
type Chain struct {
	Manifest *shard.Manifest
	Clients  []Doer        // one per stage, in manifest order
	BaseURL  string        // the URL the stage requests go to (a service binding ignores the host), e.g. "http://stage"
	Timeout  time.Duration // per stage request (0: DefaultTimeout)

	mu        sync.Mutex
	requestID string
	stats     []StageStat
	// slots holds one token per stage (made by New): a view takes its stage's token for the request, so the views of
	// this chain go through the stages as a pipeline, never two at one stage (a stage runs one view at a
	// time and answers a second one busy).
	slots []chan struct{}
}

// StageStat is one stage's entry in the response's "stages": the largest memory it reported, the sum of
// its run times over the request's views (ms, measured in the stage) and the sum of the coordinator's
// wall times of those stage requests (wall_ms: sending the activations, the run, the answer), so that
// wall_ms − ms is the transport.
type StageStat struct {
	Name            string  `json:"name"`
	Blocks          [2]int  `json:"blocks"`
	WasmMemoryBytes int64   `json:"wasm_memory_bytes"`
	MS              float64 `json:"ms"`
	WallMS          float64 `json:"wall_ms"`
	Views           int     `json:"views"`
}

// Error is a failure of one stage: the HTTP status the coordinator answers with (502: the stage answered
// wrongly or is unreachable; 503: the stage is not loaded or did not answer in time) and the stage's name.
type Error struct {
	Stage  string
	Status int
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("stage %s: %s", e.Stage, e.Msg) }

// HTTPStatus is the status the coordinator answers with.
func (e *Error) HTTPStatus() int { return e.Status }

// New returns a chain over m's stages through clients (one per stage).
func New(m *shard.Manifest, clients []Doer) (*Chain, error) {
	if len(clients) != len(m.Stages) {
		return nil, fmt.Errorf("%d stage clients for %d stages", len(clients), len(m.Stages))
	}
	slots := make([]chan struct{}, len(m.Stages))
	for i := range slots {
		slots[i] = make(chan struct{}, 1)
	}
	return &Chain{Manifest: m, Clients: clients, BaseURL: "http://stage", slots: slots}, nil
}

// ClipLen is the number of float32 values of one clip [3, T, H, W].
func (c *Chain) ClipLen() int {
	cfg := c.Manifest.Config
	return cfg.InChans * cfg.AllFrames * cfg.ImgSize * cfg.ImgSize
}

// Close does nothing: the stages belong to their workers.
func (c *Chain) Close() {}

// Start begins a request: its id is passed to every stage, and Report afterwards gives its stage stats.
// The coordinator classifies one request at a time.
func (c *Chain) Start(requestID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requestID = requestID
	c.stats = make([]StageStat, len(c.Manifest.Stages))
	for i, e := range c.Manifest.Stages {
		c.stats[i] = StageStat{Name: e.Name, Blocks: e.Blocks}
	}
}

// Report returns the stage stats of the request since Start.
func (c *Chain) Report() []StageStat {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]StageStat(nil), c.stats...)
}

// Run sends each of the batch clips x [B, 3, T, H, W] through the chain, the clips in parallel, and returns
// the logits of each head, [B·classes]. The first failure is returned as an *Error naming the stage.
func (c *Chain) Run(x []float32, batch int) ([][]float32, error) {
	n := c.ClipLen()
	if batch < 1 || len(x) != batch*n {
		return nil, fmt.Errorf("input has %d values, want %d clips × %d", len(x), batch, n)
	}
	outs := make([][][]float32, batch)
	errs := make([]error, batch)
	var wg sync.WaitGroup
	for i := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = c.view(x[i*n : (i+1)*n])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, e := range errs {
			if e != nil {
				return nil, e
			}
		}
	}
	classes := c.Manifest.Config.HeadClasses()
	logits := make([][]float32, len(classes))
	for h, k := range classes {
		logits[h] = make([]float32, 0, batch*k)
		for i := range batch {
			logits[h] = append(logits[h], outs[i][h]...)
		}
	}
	return logits, nil
}

// view runs one clip through every stage. A stage's answer is already the next stage's message, so the
// coordinator forwards it as it is (checking its header and CRC, so that a corrupt answer is blamed on the
// stage that sent it) and decodes only the head stage's logits.
func (c *Chain) view(clip []float32) ([][]float32, error) {
	msg := stage.Encode(0, [][]float32{clip})
	last := len(c.Manifest.Stages) - 1
	for i, e := range c.Manifest.Stages {
		c.slots[i] <- struct{}{}
		t0 := time.Now()
		body, stat, err := c.post(i, msg)
		wall := float64(time.Since(t0).Microseconds()) / 1000
		<-c.slots[i]
		msg = nil
		if err != nil {
			return nil, err
		}
		if err := stage.Check(body, i+1); err != nil {
			return nil, &Error{Stage: e.Name, Status: http.StatusBadGateway, Msg: fmt.Sprintf("its answer: %v", err)}
		}
		c.mu.Lock()
		if c.stats != nil {
			s := &c.stats[i]
			s.MS += stat.MS
			s.WallMS += wall
			s.WasmMemoryBytes = max(s.WasmMemoryBytes, stat.WasmMemoryBytes)
			s.Views++
		}
		c.mu.Unlock()
		if i < last {
			msg = body
			continue
		}
		logits, err := stage.Decode(body, i+1, c.Manifest.Config.HeadClasses())
		if err != nil {
			return nil, &Error{Stage: e.Name, Status: http.StatusBadGateway, Msg: fmt.Sprintf("its answer: %v", err)}
		}
		return logits, nil
	}
	return nil, errors.New("no stages")
}

type result struct {
	body []byte
	stat StageStat
	err  error
	busy bool // the stage answered 503 with stage.HeaderBusy: running another view
}

// post sends one message to stage i and waits for its answer, at most Timeout.
func (c *Chain) post(i int, msg []byte) ([]byte, StageStat, error) {
	name := c.Manifest.Stages[i].Name
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c.mu.Lock()
	id := c.requestID
	c.mu.Unlock()
	done := make(chan result, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// A stage busy with another view (another request's) is asked again, less and less often.
		wait := 25 * time.Millisecond
		for {
			r := c.do(i, name, id, msg)
			if !r.busy {
				done <- r
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
		}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.body, r.stat, r.err
	case <-timer.C:
		return nil, StageStat{}, &Error{Stage: name, Status: http.StatusServiceUnavailable,
			Msg: fmt.Sprintf("no answer within %s", timeout)}
	}
}

func (c *Chain) do(i int, name, id string, msg []byte) result {
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/v1/stage", bytes.NewReader(msg))
	if err != nil {
		return result{err: err}
	}
	req.ContentLength = int64(len(msg))
	req.Header.Set("Content-Type", stage.ContentType)
	if id != "" {
		req.Header.Set(stage.HeaderRequestID, id)
	}
	resp, err := c.Clients[i].Do(req)
	if err != nil {
		return result{err: &Error{Stage: name, Status: http.StatusBadGateway, Msg: fmt.Sprintf("unreachable: %v", err)}}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{err: &Error{Stage: name, Status: http.StatusBadGateway, Msg: fmt.Sprintf("reading its answer: %v", err)}}
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		status := http.StatusBadGateway
		if resp.StatusCode == http.StatusServiceUnavailable {
			status = http.StatusServiceUnavailable
		}
		return result{err: &Error{Stage: name, Status: status, Msg: fmt.Sprintf("answered %d: %s", resp.StatusCode, msg)},
			busy: resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(stage.HeaderBusy) != ""}
	}
	stat := StageStat{Name: name}
	stat.MS, _ = strconv.ParseFloat(resp.Header.Get(stage.HeaderMS), 64)
	stat.WasmMemoryBytes, _ = strconv.ParseInt(resp.Header.Get(stage.HeaderMemory), 10, 64)
	return result{body: body, stat: stat}
}

// Health asks every stage's /healthz, in parallel; nil when all answer 200, else the first failure (in
// stage order) as an *Error.
func (c *Chain) Health(timeout time.Duration) error {
	errs := make([]error, len(c.Clients))
	var wg sync.WaitGroup
	for i := range c.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.health(i, timeout)
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (c *Chain) health(i int, timeout time.Duration) error {
	name := c.Manifest.Stages[i].Name
	done := make(chan error, 1)
	go func() {
		req, err := http.NewRequest(http.MethodGet, strings.TrimRight(c.BaseURL, "/")+"/healthz", nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := c.Clients[i].Do(req)
		if err != nil {
			done <- &Error{Stage: name, Status: http.StatusBadGateway, Msg: fmt.Sprintf("unreachable: %v", err)}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			var e struct{ Error string }
			msg := strings.TrimSpace(string(body))
			if json.Unmarshal(body, &e) == nil && e.Error != "" {
				msg = e.Error
			}
			done <- &Error{Stage: name, Status: http.StatusServiceUnavailable, Msg: fmt.Sprintf("not healthy (%d): %s", resp.StatusCode, msg)}
			return
		}
		done <- nil
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return &Error{Stage: name, Status: http.StatusServiceUnavailable, Msg: fmt.Sprintf("no health answer within %s", timeout)}
	}
}
