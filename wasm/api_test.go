//go:build js && wasm

package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"strings"
	"syscall/js"
	"testing"

	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/models"
)

// Run with: GOOS=js GOARCH=wasm go test -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec" ./wasm/...

var api js.Value

func TestMain(m *testing.M) {
	api = install()
	os.Exit(m.Run())
}

// await blocks until promise settles (the test goroutine is not a JS callback, so blocking is allowed).
func await(promise js.Value) (js.Value, error) {
	type outcome struct {
		v   js.Value
		err error
	}
	ch := make(chan outcome, 1)
	ok := js.FuncOf(func(_ js.Value, a []js.Value) any { ch <- outcome{v: a[0]}; return nil })
	fail := js.FuncOf(func(_ js.Value, a []js.Value) any {
		ch <- outcome{err: js.Error{Value: a[0]}}
		return nil
	})
	defer ok.Release()
	defer fail.Release()
	promise.Call("then", ok, fail)
	o := <-ch
	return o.v, o.err
}

// try calls castgo.name(args...) and returns what it returned or threw.
func try(name string, args ...any) (ret js.Value, thrown js.Value) {
	wrap := js.Global().Get("Function").New("f", "args",
		`try { return {value: f(...args)}; } catch (e) { return {error: e}; }`)
	r := wrap.Invoke(api.Get(name), js.ValueOf(args))
	return r.Get("value"), r.Get("error")
}

func jsBytes(b []byte) js.Value {
	u := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(u, b)
	return u
}

func syntheticRGBA(t, w, h int) []byte {
	b := make([]byte, w*h*4)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			o := (y*w + x) * 4
			b[o], b[o+1], b[o+2], b[o+3] = byte(x*3+t*5), byte(y*4+t*3), byte((x+y)*2), 255
		}
	}
	return b
}

// syntheticVideo plans the views of an n-frame w×h video for the model handle and returns the plan with the
// synthetic frames it needs (aligned with its neededFrames), as classify and viewLogits take them.
func syntheticVideo(handle, n, w, h int) (plan js.Value, frames []any) {
	plan = api.Call("planViews", handle, map[string]any{"numFrames": n, "width": w, "height": h})
	needed := plan.Get("neededFrames")
	frames = make([]any, needed.Length())
	for i := range frames {
		frames[i] = jsBytes(syntheticRGBA(needed.Index(i).Int(), w, h))
	}
	return plan, frames
}

func loadDefault(t *testing.T) (int, js.Value) {
	t.Helper()
	res, err := await(api.Call("loadModel", jsBytes(models.DefaultInt8Bytes())))
	if err != nil {
		t.Fatalf("loadModel: %v", err)
	}
	return res.Get("handle").Int(), res.Get("info")
}

func TestClassifyMatchesInProcess(t *testing.T) {
	const n, w, h = 24, 64, 48
	handle, info := loadDefault(t)
	defer api.Call("dispose", handle)
	if got := info.Get("quantization").String(); got != modelfile.QuantInt8 {
		t.Errorf("quantization %q", got)
	}
	if got := info.Get("sizeBytes").Int(); got != len(models.DefaultInt8Bytes()) {
		t.Errorf("sizeBytes %d", got)
	}
	plan, frames := syntheticVideo(handle, n, w, h)
	var stages []string
	returned := false
	progress := js.FuncOf(func(_ js.Value, a []js.Value) any {
		if !returned {
			t.Errorf("progress %s arrived before classify returned its Promise", a[0].String())
		}
		stages = append(stages, a[0].String())
		return nil
	})
	defer progress.Release()
	p := api.Call("classify", handle, map[string]any{"numFrames": n, "width": w, "height": h, "frames": frames,
		"probs": true, "onProgress": progress})
	returned = true
	res, err := await(p)
	if err != nil {
		t.Fatalf("classify: %v", err)
	}
	var got struct {
		classify.Result
		Probs map[string][]float64 `json:"probs"`
	}
	if err := json.Unmarshal([]byte(js.Global().Get("JSON").Call("stringify", res).String()), &got); err != nil {
		t.Fatal(err)
	}
	if views := plan.Get("views").Length(); len(got.PerView) != views || strings.Count(strings.Join(stages, " "), "view") != views+1 {
		t.Errorf("per_view %d, progress stages %v; want %d views", len(got.PerView), stages, views)
	}

	// The same frames straight through the Go API.
	f, err := models.DefaultInt8()
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := infer.NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	clf, err := classify.New(b, f)
	if err != nil {
		t.Fatal(err)
	}
	want, err := clf.Classify(classify.Video{NumFrames: n, Width: w, Height: h,
		Frames: func(idx []int) (map[int]preprocess.Frame, error) {
			out := map[int]preprocess.Frame{}
			for _, i := range idx {
				fr, err := preprocess.FrameFromRGBA(w, h, syntheticRGBA(i, w, h))
				if err != nil {
					return nil, err
				}
				out[i] = fr
			}
			return out, nil
		}}, classify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, head := range want.Heads {
		wp, gp := want.Probs(head), got.Probs[head]
		if len(wp) != len(gp) {
			t.Fatalf("head %s: %d probs, want %d", head, len(gp), len(wp))
		}
		for i := range wp {
			if math.Abs(wp[i]-gp[i]) > 1e-12 {
				t.Fatalf("head %s class %d: prob %v via JS, %v via Go", head, i, gp[i], wp[i])
			}
		}
		if got.Top[head][0].Index != want.Top[head][0].Index || got.Top[head][0].Label != want.Top[head][0].Label {
			t.Errorf("top-1 %+v, want %+v", got.Top[head][0], want.Top[head][0])
		}
	}
}

func TestErrors(t *testing.T) {
	const n, w, h = 24, 64, 48
	handle, _ := loadDefault(t)
	plan := api.Call("planViews", handle, map[string]any{"numFrames": n, "width": w, "height": h})
	var frames []any
	for i := 0; i < plan.Get("neededFrames").Length(); i++ {
		frames = append(frames, jsBytes(make([]byte, w*h*4)))
	}
	short := append([]any{jsBytes(make([]byte, 10))}, frames[1:]...)
	video := func(extra map[string]any) map[string]any {
		m := map[string]any{"numFrames": n, "width": w, "height": h, "frames": frames}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name, fn string
		args     []any
		want     string
	}{
		{"garbage model", "loadModel", []any{jsBytes([]byte("definitely not a model file"))}, "castgo.loadModel: modelfile:"},
		{"no model bytes", "loadModel", []any{42}, "model bytes: want an ArrayBuffer"},
		{"wrong frame size", "classify", []any{handle, video(map[string]any{"frames": short})}, "needs 12288 bytes, has 10"},
		{"wrong frame count", "classify", []any{handle, video(map[string]any{"frames": frames[1:]})}, "aligned with neededFrames"},
		{"unknown handle", "classify", []any{999, video(nil)}, "castgo.classify: unknown model handle 999"},
		{"bad views", "classify", []any{handle, video(map[string]any{"views": "3x3"})}, `views "3x3"`},
		{"bad top", "classify", []any{handle, video(map[string]any{"top": 0.5})}, "top is 0.5"},
		{"logits size", "logits", []any{handle, js.Global().Get("Float32Array").New(7), 1}, "input has 7 values"},
		{"bad backend", "loadModel", []any{jsBytes(models.DefaultInt8Bytes()), map[string]any{"backend": "tpu"}}, `options.backend must be "cpu" or "webgpu", got "tpu"`},
		{"backend not a string", "loadModel", []any{jsBytes(models.DefaultInt8Bytes()), map[string]any{"backend": 3}}, "options.backend must be"},
		{"options not an object", "loadModel", []any{jsBytes(models.DefaultInt8Bytes()), "webgpu"}, "options must be an object"},
		// Node has no WebGPU: asking for it fails with the reason (the page then uses the CPU).
		{"webgpu absent", "loadModel", []any{jsBytes(models.DefaultInt8Bytes()), map[string]any{"backend": "webgpu"}}, "webgpu: not available here (navigator.gpu is missing)"},
		{"gpuInfo absent", "gpuInfo", nil, "castgo.gpuInfo: webgpu: not available here"},
		{"viewLogits unknown", "viewLogits", []any{999, video(nil)}, "unknown model handle 999"},
		{"viewLogits frames", "viewLogits", []any{handle, video(map[string]any{"frames": frames[1:]})}, "aligned with neededFrames"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := await(api.Call(tc.fn, tc.args...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, fn string
		args     []any
		want     string
	}{
		{"modelInfo unknown", "modelInfo", []any{999}, "castgo.modelInfo: unknown model handle 999"},
		{"planViews unknown", "planViews", []any{999, map[string]any{}}, "unknown model handle"},
		{"planViews bad views", "planViews", []any{handle, map[string]any{"numFrames": n, "width": w, "height": h, "views": "1x2"}}, `views "1x2"`},
		{"planViews no size", "planViews", []any{handle, map[string]any{"numFrames": n}}, "width is required"},
		{"dispose not a number", "dispose", []any{"1"}, "model handle must be a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, thrown := try(tc.fn, tc.args...)
			if thrown.IsUndefined() || !thrown.InstanceOf(js.Global().Get("Error")) ||
				!strings.Contains(thrown.Get("message").String(), tc.want) {
				t.Fatalf("threw %v, want an Error containing %q", thrown, tc.want)
			}
		})
	}
	if v, thrown := try("dispose", handle); !thrown.IsUndefined() || !v.Bool() {
		t.Fatalf("dispose: %v, threw %v", v, thrown)
	}
	if _, thrown := try("dispose", handle); thrown.IsUndefined() {
		t.Fatal("second dispose did not throw")
	}
}

// denseModel is the default model with the dense (K400-style) sampling protocol, which takes any number
// of clips.
func denseModel(t *testing.T) js.Value {
	t.Helper()
	f, err := models.DefaultInt8()
	if err != nil {
		t.Fatal(err)
	}
	f.Meta.Protocol = preprocess.K400
	var buf bytes.Buffer
	if err := modelfile.Write(&buf, f); err != nil {
		t.Fatal(err)
	}
	return jsBytes(buf.Bytes())
}

// TestLimits checks that every size the API accepts is bounded: requests beyond the bounds reject (or
// throw) with a message naming the limit, before anything is allocated for them, instead of aborting the
// instance when memory runs out.
func TestLimits(t *testing.T) {
	handle, _ := loadDefault(t)
	defer api.Call("dispose", handle)
	res, err := await(api.Call("loadModel", denseModel(t)))
	if err != nil {
		t.Fatalf("loadModel (dense): %v", err)
	}
	dense := res.Get("handle").Int()
	defer api.Call("dispose", dense)

	const w, h = 64, 48
	spec := func(extra map[string]any) map[string]any {
		m := map[string]any{"numFrames": 24, "width": w, "height": h}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	// A frame object whose byteLength is huge: a view over a large buffer that is never read.
	big := js.Global().Get("ArrayBuffer").New(MaxModelBytes + 1)
	bigView := js.Global().Get("Uint8Array").New(big)
	frames := func(n int) []any {
		var out []any
		for i := 0; i < n; i++ {
			out = append(out, jsBytes(make([]byte, w*h*4)))
		}
		return out
	}
	clipLen := js.Global().Get("Float32Array").New(1)

	// Limits on planViews and classify (same spec), sync and async.
	for _, tc := range []struct {
		name   string
		handle int
		spec   map[string]any
		want   string
	}{
		{"numFrames 2^31", handle, spec(map[string]any{"numFrames": 1 << 31}), "numFrames is 2147483648, more than the limit of 1048576"},
		{"numFrames 2^31-1 dense", dense, spec(map[string]any{"numFrames": 1<<31 - 1}), "more than the limit of 1048576"},
		{"numFrames too large", handle, spec(map[string]any{"numFrames": MaxNumFrames + 1}), "more than the limit"},
		{"width too large", handle, spec(map[string]any{"width": 1 << 20}), "at most 4096 pixels per side"},
		{"height too large", handle, spec(map[string]any{"height": MaxSide + 1}), "at most 4096 pixels per side"},
		{"numFrames not an integer", handle, spec(map[string]any{"numFrames": 1e300}), "want an integer"},
		{"too many clips", dense, spec(map[string]any{"views": "1000000000x1"}), "more than the limit of 30 views"},
		{"too many views", dense, spec(map[string]any{"views": "11x3"}), "11 clips × 3 crops is more than the limit of 30 views"},
	} {
		t.Run("planViews "+tc.name, func(t *testing.T) {
			_, thrown := try("planViews", tc.handle, tc.spec)
			if thrown.IsUndefined() || !strings.Contains(thrown.Get("message").String(), tc.want) {
				t.Fatalf("threw %v, want an Error containing %q", thrown, tc.want)
			}
		})
		t.Run("classify "+tc.name, func(t *testing.T) {
			s := map[string]any{"frames": frames(1)}
			for k, v := range tc.spec {
				s[k] = v
			}
			_, err := await(api.Call("classify", tc.handle, s))
			if err == nil || !strings.Contains(err.Error(), "castgo.classify: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// The largest accepted sizes still plan.
	if _, thrown := try("planViews", dense, spec(map[string]any{"numFrames": MaxNumFrames, "width": MaxSide, "height": MaxSide, "views": "10x3"})); !thrown.IsUndefined() {
		t.Fatalf("planViews at the limits threw %v", thrown)
	}

	for _, tc := range []struct {
		name, fn string
		args     []any
		want     string
	}{
		{"model bytes", "loadModel", []any{big}, "model bytes: 1073741825 bytes, more than the limit of 1024 MiB"},
		{"model bytes view", "loadModel", []any{bigView}, "more than the limit of 1024 MiB"},
		{"frame bytes total", "classify", []any{dense, spec(map[string]any{"width": MaxSide, "height": MaxSide, "views": "5x3", "numFrames": 1000, "frames": frames(1)})},
			"MiB of RGBA, more than the limit of 512 MiB"},
		{"oversized frame", "classify", []any{handle, spec(map[string]any{"frames": append([]any{bigView}, frames(7)...)})}, "needs 12288 bytes, has 1073741825"},
		{"frames as a huge sparse array", "classify", []any{handle, spec(map[string]any{"frames": js.Global().Get("Array").New(1 << 30)})}, "frames has 1073741824 entries"},
		{"top too large", "classify", []any{handle, spec(map[string]any{"frames": frames(8), "top": 1 << 30})}, "top is 1073741824, want 1 to 1000"},
		{"batch too large", "logits", []any{handle, clipLen, MaxBatch + 1}, "batch is 65, want 1 to 64"},
		{"batch 2^31", "logits", []any{handle, clipLen, 1 << 31}, "batch is 2147483648"},
		{"clip larger than the batch", "logits", []any{handle, js.Global().Get("Float32Array").New(big, 0, 1<<28), 1}, "input has 268435456 values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := await(api.Call(tc.fn, tc.args...))
			if err == nil || !strings.Contains(err.Error(), "castgo."+tc.fn+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestViewLogitsMatchClassify checks castgo.viewLogits (the page's backend comparison) against classify:
// the mean over views of the softmax of its logits is classify's probabilities.
func TestViewLogitsMatchClassify(t *testing.T) {
	const n, w, h = 24, 64, 48
	handle, info := loadDefault(t)
	defer api.Call("dispose", handle)
	if got := info.Get("backend").String(); got != "cpu" {
		t.Errorf("info.backend %q, want cpu", got)
	}
	plan, frames := syntheticVideo(handle, n, w, h)
	spec := map[string]any{"numFrames": n, "width": w, "height": h, "frames": frames}
	vl, err := await(api.Call("viewLogits", handle, spec))
	if err != nil {
		t.Fatalf("viewLogits: %v", err)
	}
	spec["probs"] = true
	res, err := await(api.Call("classify", handle, spec))
	if err != nil {
		t.Fatalf("classify: %v", err)
	}
	views := vl.Get("views")
	if views.Length() != plan.Get("views").Length() || vl.Get("ms").Length() != views.Length() {
		t.Fatalf("%d views, %d times; the plan has %d", views.Length(), vl.Get("ms").Length(), plan.Get("views").Length())
	}
	want := res.Get("probs").Get("logits")
	mean := make([]float64, want.Length())
	for v := 0; v < views.Length(); v++ {
		l := views.Index(v).Get("logits")
		logits := make([]float32, l.Length())
		for k := range logits {
			logits[k] = float32(l.Index(k).Float())
		}
		for k, p := range classify.Softmax(logits) {
			mean[k] += p / float64(views.Length())
		}
	}
	for k := range mean {
		if d := math.Abs(mean[k] - want.Index(k).Float()); d > 1e-9 {
			t.Fatalf("class %d: mean softmax of viewLogits %v, classify %v", k, mean[k], want.Index(k).Float())
		}
	}
}
