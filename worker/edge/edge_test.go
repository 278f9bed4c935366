package edge

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"mime/multipart"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/models"
)

var (
	srvOnce sync.Once
	srv     *Server
)

// server returns one Server with the embedded default int8 model, shared by the tests.
func server(t *testing.T) *Server {
	t.Helper()
	srvOnce.Do(func() {
		srv = NewServer()
		srv.SetModel(LoadModel(models.DefaultInt8Bytes(), "embedded:default-int8"))
	})
	if srv.loadErr != nil {
		t.Fatal(srv.loadErr)
	}
	return srv
}

// rgbClip draws n w×h RGB frames (a bright square moving right over a gradient).
func rgbClip(n, w, h int) [][]byte {
	frames := make([][]byte, n)
	for t := range frames {
		pix := make([]byte, w*h*3)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				i := (y*w + x) * 3
				pix[i], pix[i+1], pix[i+2] = byte(x*4), byte(y*4), 90
				if x >= 4+3*t && x < 14+3*t && y >= h/2-5 && y < h/2+5 {
					pix[i], pix[i+1], pix[i+2] = 240, 20, 20
				}
			}
		}
		frames[t] = pix
	}
	return frames
}

func pngOf(t *testing.T, w, h int, rgb []byte) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		img.Set(i%w, i/w, color.NRGBA{rgb[3*i], rgb[3*i+1], rgb[3*i+2], 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// multipartBody builds a multipart/form-data body of frame parts and fields.
func multipartBody(t *testing.T, frames [][]byte, fields map[string]string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, f := range frames {
		w, err := mw.CreateFormFile("frame", "f.png")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(f)
	}
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	_ = mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

func do(t *testing.T, s *Server, method, target, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: response is not JSON: %q", method, target, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, target, ct)
	}
	return rec.Code, out
}

func TestHealthAndModel(t *testing.T) {
	s := server(t)
	code, h := do(t, s, "GET", "/healthz", "", nil)
	if code != 200 || h["ok"] != true || h["model_loads"].(float64) < 1 {
		t.Fatalf("healthz: %d %v", code, h)
	}
	code, m := do(t, s, "GET", "/v1/model", "", nil)
	if code != 200 || m["api_protocol"] != Protocol || m["quantization"] != "int8" {
		t.Fatalf("model: %d %v", code, m)
	}
	if m["size_bytes"].(float64) != float64(len(models.DefaultInt8Bytes())) {
		t.Errorf("size_bytes %v", m["size_bytes"])
	}
}

// TestClassifyFormats checks that PNG frames, raw RGB and raw RGBA of the same pixels classify identically.
func TestClassifyFormats(t *testing.T) {
	s := server(t)
	const n, w, h = 6, 40, 30
	frames := rgbClip(n, w, h)
	var pngs [][]byte
	var rgb, rgba []byte
	for _, f := range frames {
		pngs = append(pngs, pngOf(t, w, h, f))
		rgb = append(rgb, f...)
		for i := 0; i < len(f); i += 3 {
			rgba = append(rgba, f[i], f[i+1], f[i+2], 255)
		}
	}
	ct, body := multipartBody(t, pngs, map[string]string{"views": "1x1", "top": "16"})
	results := map[string]map[string]any{}
	var code int
	code, results["png"] = do(t, s, "POST", "/v1/classify", ct, body)
	if code != 200 {
		t.Fatalf("png: %d %v", code, results["png"])
	}
	code, results["rgb"] = do(t, s, "POST", "/v1/classify?width=40&height=30&frames=6&views=1x1&top=16", "application/octet-stream", rgb)
	if code != 200 {
		t.Fatalf("rgb: %d %v", code, results["rgb"])
	}
	code, results["rgba"] = do(t, s, "POST", "/v1/classify?width=40&height=30&frames=6&format=rgba&views=1x1&top=16", "application/octet-stream", rgba)
	if code != 200 {
		t.Fatalf("rgba: %d %v", code, results["rgba"])
	}
	top := func(r map[string]any) []any { return r["top"].(map[string]any)["logits"].([]any) }
	want := top(results["png"])
	if len(want) != 16 {
		t.Fatalf("top=16 gave %d predictions", len(want))
	}
	for _, kind := range []string{"rgb", "rgba"} {
		got := top(results[kind])
		for i := range want {
			g, w := got[i].(map[string]any), want[i].(map[string]any)
			if g["index"] != w["index"] || math.Abs(g["prob"].(float64)-w["prob"].(float64)) > 1e-12 {
				t.Fatalf("%s rank %d: %v, png gave %v", kind, i, g, w)
			}
		}
		if f := results[kind]["input"].(map[string]any)["format"]; f != kind {
			t.Errorf("input.format %v, want %s", f, kind)
		}
	}
}

func TestMalformed(t *testing.T) {
	s := server(t)
	one := pngOf(t, 8, 8, rgbClip(1, 8, 8)[0])
	other := pngOf(t, 4, 4, rgbClip(1, 4, 4)[0])
	mp := func(frames [][]byte, fields map[string]string) (string, []byte) {
		return multipartBody(t, frames, fields)
	}
	ctGood, bodyGood := mp([][]byte{one}, nil)
	ctBadFrame, bodyBadFrame := mp([][]byte{[]byte("not an image")}, nil)
	ctTrunc, bodyTrunc := mp([][]byte{one[:40]}, nil)
	ctSizes, bodySizes := mp([][]byte{one, other}, nil)
	ctNone, bodyNone := mp(nil, map[string]string{"top": "3"})
	ctTop, bodyTop := mp([][]byte{one}, map[string]string{"top": "0"})
	raw := "application/octet-stream"
	cases := []struct {
		name, method, target, ct string
		body                     []byte
		status                   int
	}{
		{"405", "GET", "/v1/classify", "", nil, 405},
		{"405 healthz", "POST", "/healthz", raw, []byte("x"), 405},
		{"404", "GET", "/nope", "", nil, 404},
		{"415 missing", "POST", "/v1/classify", "", []byte("x"), 415},
		{"415 json", "POST", "/v1/classify", "application/json", []byte("{}"), 415},
		{"413 streamed", "POST", "/v1/classify?width=1920&height=1920&frames=2", raw, make([]byte, 17<<20), 413},
		{"413 dims", "POST", "/v1/classify?width=1920&height=1920&frames=256", raw, nil, 413},
		{"no width", "POST", "/v1/classify?height=2&frames=1", raw, make([]byte, 12), 400},
		{"bad width", "POST", "/v1/classify?width=x&height=2&frames=1", raw, make([]byte, 12), 400},
		{"huge height", "POST", "/v1/classify?width=2&height=2000&frames=1", raw, make([]byte, 12), 400},
		{"frames 0", "POST", "/v1/classify?width=2&height=2&frames=0", raw, make([]byte, 12), 400},
		{"format", "POST", "/v1/classify?width=2&height=2&frames=1&format=yuv", raw, make([]byte, 12), 400},
		{"short body", "POST", "/v1/classify?width=2&height=2&frames=1", raw, make([]byte, 11), 400},
		{"top", "POST", "/v1/classify?width=2&height=2&frames=1&top=50", raw, make([]byte, 12), 400},
		{"views", "POST", "/v1/classify?width=2&height=2&frames=1&views=9x9", raw, make([]byte, 12), 400},
		{"query", "POST", "/v1/classify?width=%", raw, make([]byte, 12), 400},
		{"no boundary", "POST", "/v1/classify", "multipart/form-data", bodyGood, 400},
		{"wrong boundary", "POST", "/v1/classify", "multipart/form-data; boundary=zz", bodyGood, 400},
		{"not an image", "POST", "/v1/classify", ctBadFrame, bodyBadFrame, 400},
		{"truncated png", "POST", "/v1/classify", ctTrunc, bodyTrunc, 400},
		{"sizes differ", "POST", "/v1/classify", ctSizes, bodySizes, 400},
		{"no frames", "POST", "/v1/classify", ctNone, bodyNone, 400},
		{"field top 0", "POST", "/v1/classify", ctTop, bodyTop, 400},
	}
	for _, tc := range cases {
		code, out := do(t, s, tc.method, tc.target, tc.ct, tc.body)
		msg, _ := out["error"].(string)
		if code != tc.status || len(msg) < 10 {
			t.Errorf("%s: got %d %v, want %d with an error message", tc.name, code, out, tc.status)
		}
	}
	if code, out := do(t, s, "POST", "/v1/classify?views=1x1", ctGood, bodyGood); code != 200 {
		t.Errorf("a valid one-frame clip: %d %v", code, out)
	}
}

func TestFit(t *testing.T) {
	f, err := models.DefaultInt8()
	if err != nil {
		t.Fatal(err)
	}
	r := Fit(f.Meta.Config, int64(len(models.DefaultInt8Bytes())), 14<<20)
	if !r.OK || IsolateBytes-r.Total < 24<<20 {
		t.Errorf("the default model should fit with room to spare: %+v", r)
	}
	if base := Fit(cast.DefaultBase(), 90<<20, 14<<20); base.OK {
		t.Errorf("ViT-B/16 CAST cannot fit a 128 MiB isolate, but Fit says it does: %+v", base)
	}
}
