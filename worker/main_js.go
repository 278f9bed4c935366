//go:build js && wasm

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"syscall/js"

	"github.com/castvideo/castgo/models"
	"github.com/castvideo/castgo/worker/edge"
	"github.com/syumai/workers"
	"github.com/syumai/workers/cloudflare"
	"github.com/syumai/workers/cloudflare/r2"
)

// Counters on the JavaScript global object: they live as long as the isolate, not one Go instance. The JS
// entry (entry.mjs) increments instancesKey each time it starts Go; main increments loadsKey per load.
const (
	loadsKey     = "__castgoModelLoads"
	instancesKey = "__castgoInstances"
)

func main() {
	// Keep the Go heap under the isolate's budget: the GC works harder rather than grow past it.
	debug.SetMemoryLimit(edge.IsolateBytes - edge.HeadroomBytes - 16<<20)
	srv := edge.NewServer()
	srv.ModelLoads = func() int64 { return jsCounter(loadsKey) }
	srv.Instances = func() int64 { return jsCounter(instancesKey) }
	m, err := loadModel()
	srv.SetModel(m, err)
	if err == nil {
		js.Global().Set(loadsKey, jsCounter(loadsKey)+1)
	} else {
		js.Global().Get("console").Call("error", "castgo worker: "+err.Error())
	}
	workers.ServeNonBlock(srv)
	workers.Ready()
	select {} // stay alive: entry.mjs sends every request of the isolate to this one instance
}

// jsCounter reads a numeric counter from the JavaScript global object (0 when unset).
func jsCounter(key string) int64 {
	v := js.Global().Get(key)
	if v.Type() != js.TypeNumber {
		return 0
	}
	return int64(v.Int())
}

// loadModel loads the model once per Go instance: the object named by the MODEL_KEY variable from the
// MODEL_BUCKET R2 binding when that binding exists, else the embedded default int8 model.
func loadModel() (m *edge.Model, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("loading the model: %v", r)
		}
	}()
	if b := cloudflare.GetBinding("MODEL_BUCKET"); !b.IsUndefined() && !b.IsNull() {
		return loadFromR2(cloudflare.Getenv("MODEL_KEY"))
	}
	return edge.LoadModel(models.DefaultInt8Bytes(), "embedded:"+models.DefaultName+"-int8")
}

// loadFromR2 reads the model file key from the MODEL_BUCKET binding.
func loadFromR2(key string) (*edge.Model, error) {
	if key == "" {
		return nil, errors.New("the MODEL_BUCKET binding is set but the MODEL_KEY variable (the object's key) is empty")
	}
	bucket, err := r2.NewBucket("MODEL_BUCKET")
	if err != nil {
		return nil, fmt.Errorf("R2 binding MODEL_BUCKET: %w", err)
	}
	obj, err := bucket.Get(key)
	if err != nil {
		return nil, fmt.Errorf("R2 get %q: %w", key, err)
	}
	if obj == nil || obj.Body == nil {
		return nil, fmt.Errorf("R2 object %q not found in MODEL_BUCKET", key)
	}
	// The isolate holds the file about three times over while loading it (see edge.Fit): refuse an object
	// that cannot fit before reading it, instead of running out of memory (which would kill the instance
	// at every request: a crash loop).
	if obj.Size > maxR2ModelBytes {
		return nil, fmt.Errorf("R2 object %q is %d bytes (%.1f MiB): a model file over %d MiB cannot fit a %d MiB isolate (check a model with worker/cmd/fitcheck)",
			key, obj.Size, float64(obj.Size)/(1<<20), maxR2ModelBytes>>20, edge.IsolateBytes>>20)
	}
	var buf bytes.Buffer
	buf.Grow(obj.Size)
	n, err := io.Copy(&buf, io.LimitReader(obj.Body, maxR2ModelBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading R2 object %q: %w", key, err)
	}
	if n > maxR2ModelBytes || n != int64(obj.Size) {
		return nil, fmt.Errorf("reading R2 object %q: got %d bytes, its size is %d", key, n, obj.Size)
	}
	return edge.LoadModel(buf.Bytes(), "r2:"+key)
}

// maxR2ModelBytes bounds a model file read from R2: three copies of it (bytes, parsed tensors, backend
// copies) and the Go runtime must stay under the isolate's budget.
const maxR2ModelBytes = (edge.IsolateBytes - edge.HeadroomBytes - edge.RuntimeBytes) / 3
