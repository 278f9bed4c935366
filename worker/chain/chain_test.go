package chain_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/shard"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/castvideo/castgo/internal/golden"
	"github.com/castvideo/castgo/worker/chain"
	"github.com/castvideo/castgo/worker/stage"
)

// to sends every request to one test server, whatever its URL (as a service binding does).
type to struct{ base *url.URL }

func (t to) Do(req *http.Request) (*http.Response, error) {
	req.URL.Scheme, req.URL.Host = t.base.Scheme, t.base.Host
	return http.DefaultClient.Do(req)
}

func client(t *testing.T, h http.Handler) (chain.Doer, *httptest.Server) {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return to{u}, srv
}

// tinyShards writes the tiny golden (int8, hash-recipe weights) sharded into 2 stages and returns the
// manifest, the directory and the unsplit model's logits on the golden input.
func tinyShards(t *testing.T) (*shard.Manifest, string, []float32, []float32) {
	cfg := golden.Config(t, "tiny")
	set := weights.Set{}
	for _, s := range cfg.StateDict() {
		set[s.Name] = weights.NewF32(s.Shape, hashinit.Tensor(1, s.Name, s.Shape))
	}
	set, err := cast.QuantizeInt8(set, nil)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string][]string{}
	for k := range cfg.NumClasses {
		labels["logits"] = append(labels["logits"], fmt.Sprint(k))
	}
	f := &modelfile.File{Meta: modelfile.Metadata{Name: "tiny", Config: cfg, Labels: labels,
		Protocol: preprocess.Protocol{Sampling: preprocess.Segment, Clips: 1, Crops: 1}}, Weights: set}
	stages, err := cast.SplitStages(cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, err := shard.Write(dir, f, stages)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := infer.NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	full, err := infer.New(b, cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	x := make([]float32, full.ClipLen())
	for i := range x {
		x[i] = float32(math.Sin(float64(i) * 0.001))
	}
	want, err := full.Run(x, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m, dir, x, want[0]
}

func stageServer(t *testing.T, m *shard.Manifest, dir string, i int) *stage.Server {
	data, err := os.ReadFile(filepath.Join(dir, m.Stages[i].File))
	if err != nil {
		t.Fatal(err)
	}
	srv := stage.NewServer(m.Stages[i].Name)
	srv.SetStage(stage.Load(m, i, data))
	return srv
}

// TestChainMatchesModel runs two views through two stage servers and checks the logits' bits against the
// unsplit model, the stage stats and the request id; then each fault gives an *chain.Error naming the stage.
func TestChainMatchesModel(t *testing.T) {
	m, dir, x, want := tinyShards(t)
	s0, s1 := stageServer(t, m, dir, 0), stageServer(t, m, dir, 1)
	var ids []string
	spy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids = append(ids, r.Header.Get(stage.HeaderRequestID))
		s1.ServeHTTP(w, r)
	})
	c0, _ := client(t, s0)
	c1, _ := client(t, spy)
	c, err := chain.New(m, []chain.Doer{c0, c1})
	if err != nil {
		t.Fatal(err)
	}
	c.Start("req-1")
	got, err := c.Run(append(append([]float32{}, x...), x...), 2)
	if err != nil {
		t.Fatal(err)
	}
	k := len(want)
	for v := range 2 {
		for i := range want {
			if math.Float32bits(got[0][v*k+i]) != math.Float32bits(want[i]) {
				t.Fatalf("view %d logit %d: %v, unsplit %v", v, i, got[0][v*k+i], want[i])
			}
		}
	}
	rep := c.Report()
	if len(rep) != 2 || rep[0].Name != "stage-0" || rep[1].Blocks != m.Stages[1].Blocks || rep[0].Views != 2 || rep[1].MS <= 0 || rep[1].WasmMemoryBytes <= 0 {
		t.Errorf("report %+v", rep)
	}
	for _, s := range rep {
		// The coordinator's wall time of a stage request includes the stage's run (as the stage measured
		// it, to the microsecond it reports).
		if s.WallMS < s.MS-0.01 {
			t.Errorf("%s: wall %.3f ms < run %.3f ms", s.Name, s.WallMS, s.MS)
		}
	}
	if len(ids) != 2 || ids[0] != "req-1" {
		t.Errorf("stage 1 saw request ids %v", ids)
	}
	if err := c.Health(5 * time.Second); err != nil {
		t.Errorf("health: %v", err)
	}

	// Faults.
	down, downSrv := client(t, s1)
	downSrv.Close()
	notLoaded := stage.NewServer("stage-1")
	notLoaded.SetStage(nil, errors.New(`object "stage-1.safetensors" not found`))
	missing, _ := client(t, notLoaded)
	slow, _ := client(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(2 * time.Second) }))
	corrupt, _ := client(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		s0.ServeHTTP(rec, r)
		b := rec.Body.Bytes()
		b[len(b)-1] ^= 1
		w.WriteHeader(rec.Code)
		io.Copy(w, bytes.NewReader(b))
	}))
	for name, tc := range map[string]struct {
		clients []chain.Doer
		status  int
		stage   string
		msg     string
	}{
		"down":    {[]chain.Doer{c0, down}, http.StatusBadGateway, "stage-1", "unreachable"},
		"missing": {[]chain.Doer{c0, missing}, http.StatusServiceUnavailable, "stage-1", "not found"},
		"timeout": {[]chain.Doer{c0, slow}, http.StatusServiceUnavailable, "stage-1", "no answer within"},
		"corrupt": {[]chain.Doer{corrupt, c1}, http.StatusBadGateway, "stage-0", "corrupt activation"},
	} {
		fc, err := chain.New(m, tc.clients)
		if err != nil {
			t.Fatal(err)
		}
		fc.Timeout = 500 * time.Millisecond
		start := time.Now()
		_, err = fc.Run(x, 1)
		var ce *chain.Error
		if !errors.As(err, &ce) || ce.Status != tc.status || ce.Stage != tc.stage || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want a %d naming %s with %q", name, err, tc.status, tc.stage, tc.msg)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: took %s", name, d)
		}
	}
}

// TestStageOneViewAtATime sends four different views to one stage server at once: each answer is either,
// byte for byte, the one the view gets alone, or a 503 marked busy (the stage runs one view at a time, so
// that its memory holds one view's activations); then a chain whose stage 1 answers busy twice retries it
// and still gives the unsplit model's logits.
func TestStageOneViewAtATime(t *testing.T) {
	m, dir, x, want := tinyShards(t)
	s0, s1 := stageServer(t, m, dir, 0), stageServer(t, m, dir, 1)
	_, srv := client(t, s0)
	post := func(msg []byte) ([]byte, bool, error) {
		resp, err := http.Post(srv.URL+"/v1/stage", stage.ContentType, bytes.NewReader(msg))
		if err != nil {
			return nil, false, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(stage.HeaderBusy) != "" {
			return nil, true, err
		}
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		return b, false, err
	}
	const views = 4
	msgs := make([][]byte, views)
	alone := make([][]byte, views)
	for v := range views {
		clip := make([]float32, len(x))
		for i := range clip {
			clip[i] = x[i] * float32(v+1) / views
		}
		msgs[v] = stage.Encode(0, [][]float32{clip})
		var err error
		if alone[v], _, err = post(msgs[v]); err != nil || alone[v] == nil {
			t.Fatalf("view %d alone: %v", v, err)
		}
	}
	if bytes.Equal(alone[0], alone[1]) {
		t.Fatal("two different views gave the same answer")
	}
	got := make([][]byte, views)
	errs := make(chan error, views)
	for v := range views {
		go func() {
			var err error
			got[v], _, err = post(msgs[v])
			errs <- err
		}()
	}
	for range views {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	answered := 0
	for v := range views {
		if got[v] == nil {
			continue // busy
		}
		answered++
		if !bytes.Equal(got[v], alone[v]) {
			t.Errorf("view %d: the concurrent answer differs from the answer alone", v)
		}
	}
	if answered == 0 {
		t.Error("no concurrent view was answered")
	}

	busyLeft := 2
	flaky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if busyLeft > 0 {
			busyLeft--
			w.Header().Set(stage.HeaderBusy, "1")
			http.Error(w, `{"error": "stage stage-1: busy with another view"}`, http.StatusServiceUnavailable)
			return
		}
		s1.ServeHTTP(w, r)
	})
	c0, _ := client(t, s0)
	c1, _ := client(t, flaky)
	c, err := chain.New(m, []chain.Doer{c0, c1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Run(x, 1)
	if err != nil {
		t.Fatalf("a busy stage is not retried: %v", err)
	}
	if busyLeft != 0 {
		t.Errorf("stage 1 was asked %d times too few", busyLeft)
	}
	for i := range want {
		if math.Float32bits(out[0][i]) != math.Float32bits(want[i]) {
			t.Fatalf("logit %d: %v, unsplit %v", i, out[0][i], want[i])
		}
	}
}
