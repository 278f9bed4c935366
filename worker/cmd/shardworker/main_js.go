//go:build js && wasm

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall/js"
	"time"

	"github.com/castvideo/castgo/cast/shard"
	"github.com/castvideo/castgo/worker/chain"
	"github.com/castvideo/castgo/worker/edge"
	"github.com/castvideo/castgo/worker/stage"
	"github.com/syumai/workers"
	"github.com/syumai/workers/cloudflare"
	"github.com/syumai/workers/cloudflare/fetch"
	"github.com/syumai/workers/cloudflare/r2"
)

func main() {
	// Keep the Go heap under the isolate's budget: the GC works harder rather than grow past it.
	debug.SetMemoryLimit(edge.IsolateBytes - edge.HeadroomBytes - 16<<20)
	var h http.Handler
	switch role := cloudflare.Getenv("ROLE"); role {
	case "stage":
		debug.SetGCPercent(stage.GCPercent)
		srv, maxBody := stageServer()
		h = srv
		serveBytes(srv, maxBody) // the activations cross the JS↔Go boundary whole (bridge_js.go)
	case "coordinator":
		h = coordinator()
	default:
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, fmt.Sprintf(`{"error": "the ROLE variable is %q: set it to stage or coordinator"}`, role), http.StatusServiceUnavailable)
		})
	}
	workers.ServeNonBlock(h)
	workers.Ready()
	select {} // stay alive: entry.mjs sends every request of the isolate to this one instance
}

// wasmMemory reads the wasm linear memory's size from entry.mjs.
func wasmMemory() int64 {
	f := js.Global().Get("__castgoWasmMemoryBytes")
	if f.Type() != js.TypeFunction {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.Sys)
	}
	return int64(f.Invoke().Float())
}

// unloadedBodyBytes bounds a request body of a stage that failed to load (it answers 503 to every run).
const unloadedBodyBytes = 1 << 20

// stageServer loads stage STAGE_INDEX of the manifest and serves it; maxBody is the size of the stage's
// input message plus 1 MiB (a larger request body is refused before it is read).
func stageServer() (srv *stage.Server, maxBody int64) {
	idx, err := strconv.Atoi(cloudflare.Getenv("STAGE_INDEX"))
	name := "stage-" + cloudflare.Getenv("STAGE_INDEX")
	srv = stage.NewServer(name)
	srv.MemoryBytes = wasmMemory
	if err != nil {
		srv.SetStage(nil, fmt.Errorf("the STAGE_INDEX variable %q is not a number", cloudflare.Getenv("STAGE_INDEX")))
		return srv, unloadedBodyBytes
	}
	st, err := func() (*stage.Stage, error) {
		m, err := readManifest()
		if err != nil {
			return nil, err
		}
		if idx < 0 || idx >= len(m.Stages) {
			return nil, fmt.Errorf("STAGE_INDEX %d: the manifest has %d stages", idx, len(m.Stages))
		}
		e := m.Stages[idx]
		data, err := readObject(e.File, e.Size)
		if err != nil {
			return nil, fmt.Errorf("stage %q: %w", e.Name, err)
		}
		st, err := stage.Load(m, idx, data)
		data = nil //nolint:ineffassign // the file's bytes go before the first run packs the weights
		runtime.GC()
		debug.FreeOSMemory()
		return st, err
	}()
	if err != nil {
		js.Global().Get("console").Call("error", "castgo "+name+": "+err.Error())
	}
	srv.SetStage(st, err)
	if err != nil {
		return srv, unloadedBodyBytes
	}
	return srv, stage.InputBytes(st) + 1<<20 // a little over: the stage itself refuses a wrong size, by name
}

// coordinator reads the manifest and serves POST /v1/classify through the STAGE_0… bindings.
func coordinator() http.Handler {
	srv := edge.NewServer()
	m, err := readManifest()
	if err != nil {
		srv.SetModel(nil, err)
		return srv
	}
	clients := make([]chain.Doer, len(m.Stages))
	for i, e := range m.Stages {
		b := cloudflare.GetBinding(fmt.Sprintf("STAGE_%d", i))
		if b.IsUndefined() || b.IsNull() {
			srv.SetModel(nil, fmt.Errorf("no service binding STAGE_%d for stage %q", i, e.Name))
			return srv
		}
		clients[i] = binding{v: b, c: fetch.NewClient(fetch.WithBinding(b))}
	}
	c, err := chain.New(m, clients)
	if err != nil {
		srv.SetModel(nil, err)
		return srv
	}
	if v := cloudflare.Getenv("STAGE_TIMEOUT_MS"); v != "" {
		if ms, err := strconv.Atoi(v); err == nil && ms > 0 {
			c.Timeout = time.Duration(ms) * time.Millisecond
		}
	}
	parallel := 2
	if v, err := strconv.Atoi(cloudflare.Getenv("VIEW_PARALLELISM")); err == nil && v > 0 {
		parallel = v
	}
	if v, err := strconv.Atoi(cloudflare.Getenv("MAX_STAGE_REQUESTS")); err == nil && v > 0 {
		srv.Limits.MaxStageRequests = v
	}
	srv.SetModel(edge.NewChainModel(m, c, source(shard.ManifestName), parallel), nil)
	return srv
}

// prefix is the key prefix of the sharded model's objects (SHARD_PREFIX, e.g. "cast-ssv2/").
func prefix() string { return cloudflare.Getenv("SHARD_PREFIX") }

func source(key string) string {
	if hasBinding("MODEL_BUCKET") {
		return "r2:" + prefix() + key
	}
	return "shards:" + prefix() + key
}

func hasBinding(name string) bool {
	b := cloudflare.GetBinding(name)
	return !b.IsUndefined() && !b.IsNull()
}

func readManifest() (*shard.Manifest, error) {
	data, err := readObject(shard.ManifestName, -1)
	if err != nil {
		return nil, err
	}
	m, err := shard.ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source(shard.ManifestName), err)
	}
	return m, nil
}

// maxObjectBytes bounds an object read: a stage file must leave room for its weights and a view.
const maxObjectBytes = (edge.IsolateBytes - edge.HeadroomBytes - edge.RuntimeBytes) / 2

// readObject reads prefix+key from the MODEL_BUCKET R2 binding when it exists, else from the SHARDS
// service binding (workerd's disk service in ./build.sh edge-serve). size is the expected size (-1:
// unknown); the bytes are read into one buffer of that size.
func readObject(key string, size int64) ([]byte, error) {
	full := prefix() + key
	if size > maxObjectBytes {
		return nil, fmt.Errorf("object %q is %d bytes, over the %d MiB a stage worker can load: shard into more stages", full, size, maxObjectBytes>>20)
	}
	var body io.ReadCloser
	var n int64
	switch {
	case hasBinding("MODEL_BUCKET"):
		bucket, err := r2.NewBucket("MODEL_BUCKET")
		if err != nil {
			return nil, fmt.Errorf("R2 binding MODEL_BUCKET: %w", err)
		}
		obj, err := bucket.Get(full)
		if err != nil {
			return nil, fmt.Errorf("R2 get %q: %w", full, err)
		}
		if obj == nil || obj.Body == nil {
			return nil, fmt.Errorf("object %q not found in MODEL_BUCKET", full)
		}
		body, n = io.NopCloser(obj.Body), int64(obj.Size)
	case hasBinding("SHARDS"):
		client := binding{c: fetch.NewClient(fetch.WithBinding(cloudflare.GetBinding("SHARDS")))}
		req, err := http.NewRequest(http.MethodGet, "http://shards/"+strings.TrimLeft(full, "/"), nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetching %q from SHARDS: %w", full, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("object %q not found in SHARDS (status %d)", full, resp.StatusCode)
		}
		body, n = resp.Body, resp.ContentLength
	default:
		return nil, errors.New("neither the MODEL_BUCKET (R2) nor the SHARDS binding is set")
	}
	defer body.Close()
	if size >= 0 && n >= 0 && n != size {
		return nil, fmt.Errorf("object %q is %d bytes, the manifest says %d", full, n, size)
	}
	if n < 0 {
		n = size
	}
	if n > maxObjectBytes {
		return nil, fmt.Errorf("object %q is %d bytes, over the %d MiB a stage worker can load", full, n, maxObjectBytes>>20)
	}
	buf := make([]byte, 0, max(n, 0))
	lr := io.LimitReader(body, maxObjectBytes+1)
	chunk := make([]byte, 256<<10)
	for {
		k, err := lr.Read(chunk)
		buf = append(buf, chunk[:k]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %q: %w", full, err)
		}
	}
	if int64(len(buf)) > maxObjectBytes {
		return nil, fmt.Errorf("object %q is over the %d MiB a stage worker can load", full, maxObjectBytes>>20)
	}
	return buf, nil
}

// binding sends requests through a service binding's fetch (chain.Doer) without net/http's client.
type binding struct {
	v js.Value // the service binding
	c *fetch.Client
}

// Do sends req through the service binding. A request with a body (an activation message, ~10 MB for
// base) goes as one Uint8Array and its answer is read whole: syumai's bridge would move each in 16 KiB
// chunks, a JS↔Go round trip apiece.
func (b binding) Do(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return b.c.Do(&fetch.Request{Request: req}, nil)
	}
	ua, err := jsBody(req)
	if err != nil {
		return nil, err
	}
	init := js.Global().Get("Object").New()
	init.Set("method", req.Method)
	h := js.Global().Get("Headers").New()
	for k, vs := range req.Header {
		for _, v := range vs {
			h.Call("append", k, v)
		}
	}
	init.Set("headers", h)
	init.Set("body", ua)
	res, err := await(req.Context(), b.v.Call("fetch", req.URL.String(), init))
	if err != nil {
		return nil, err
	}
	hdr := http.Header{}
	each := js.FuncOf(func(_ js.Value, args []js.Value) any {
		hdr.Add(args[1].String(), args[0].String())
		return nil
	})
	res.Get("headers").Call("forEach", each)
	each.Release()
	ab, err := await(req.Context(), res.Call("arrayBuffer"))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	view := js.Global().Get("Uint8Array").New(ab)
	out := make([]byte, view.Length())
	js.CopyBytesToGo(out, view)
	status := res.Get("status").Int()
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, res.Get("statusText").String()), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: hdr,
		Body: io.NopCloser(bytes.NewReader(out)), ContentLength: int64(len(out)), Request: req,
	}, nil
}

// jsBody reads req's body into one Uint8Array: with a known ContentLength (the chain's messages), straight
// into an array of that size through a 1 MiB buffer, without a Go copy of the whole message.
func jsBody(req *http.Request) (js.Value, error) {
	defer req.Body.Close()
	if req.ContentLength < 0 {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return js.Value{}, fmt.Errorf("reading the request body: %w", err)
		}
		ua := js.Global().Get("Uint8Array").New(len(body))
		js.CopyBytesToJS(ua, body)
		return ua, nil
	}
	n := req.ContentLength
	ua := js.Global().Get("Uint8Array").New(n)
	buf := make([]byte, min(n, 1<<20))
	for off := int64(0); off < n; {
		k, err := io.ReadFull(req.Body, buf[:min(int64(len(buf)), n-off)])
		if err != nil {
			return js.Value{}, fmt.Errorf("reading the request body (%d of %d bytes): %w", off+int64(k), n, err)
		}
		js.CopyBytesToJS(ua.Call("subarray", off, off+int64(k)), buf[:k])
		off += int64(k)
	}
	return ua, nil
}

// await waits for a JS promise, or for ctx to end (the promise's callbacks then find buffered channels).
func await(ctx context.Context, p js.Value) (js.Value, error) {
	ok, fail := make(chan js.Value, 1), make(chan error, 1)
	var then, catch js.Func
	then = js.FuncOf(func(_ js.Value, args []js.Value) any {
		ok <- args[0]
		then.Release()
		catch.Release()
		return nil
	})
	catch = js.FuncOf(func(_ js.Value, args []js.Value) any {
		fail <- errors.New(args[0].Call("toString").String())
		then.Release()
		catch.Release()
		return nil
	})
	p.Call("then", then, catch)
	select {
	case v := <-ok:
		return v, nil
	case err := <-fail:
		return js.Value{}, err
	case <-ctx.Done():
		return js.Value{}, ctx.Err()
	}
}
