package edge

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/castvideo/castgo/cast/preprocess"
)

// FuzzParseRequest drives the worker's request parsing — the query string, readClip (multipart or raw
// body, Content-Type, X- headers) and options (top, views, view planning) — then decodes the frames the
// views would sample, as POST /v1/classify does before inference. Whatever the request, parsing must
// answer with an httpError of a 4xx status (never panic, never a 5xx), and an accepted clip must be
// consistent and within the limits.
func FuzzParseRequest(f *testing.F) {
	frames := rgbClip(2, 24, 16)
	ct, mp := fuzzMultipart(f, frames, 24, 16, map[string]string{"top": "3", "views": "1x1"})
	f.Add(ct, "", mp, "")
	f.Add(ct, "views=2x3&top=20", mp, "")
	f.Add("application/octet-stream", "width=24&height=16&frames=2", append(append([]byte{}, frames[0]...), frames[1]...), "")
	f.Add("application/octet-stream", "width=4&height=1&frames=1&format=rgba", make([]byte, 16), "1x1")
	f.Add("application/octet-stream", "", make([]byte, 12), "")
	f.Add("multipart/form-data; boundary=x", "", []byte("--x\r\nContent-Disposition: form-data; name=\"frame\"\r\n\r\n\x89PNG\r\n--x--\r\n"), "")
	f.Add("text/plain", "%zz", []byte("hello"), "9x9")
	f.Fuzz(func(t *testing.T, contentType, rawQuery string, body []byte, viewsHeader string) {
		s := server(t)
		lim := s.Limits
		r := httptest.NewRequest(http.MethodPost, "/v1/classify", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("X-Views", viewsHeader)
		check := func(err error) {
			t.Helper()
			var he *httpError
			if !errors.As(err, &he) {
				t.Fatalf("error %v is %T, not an httpError", err, err)
			}
			if he.status < 400 || he.status > 499 {
				t.Fatalf("status %d for a malformed request: %v", he.status, err)
			}
			if he.msg == "" {
				t.Fatal("empty error message")
			}
		}
		query, err := url.ParseQuery(rawQuery)
		if err != nil {
			return // the server answers 400 before parsing the body
		}
		cl, err := readClip(r, query, lim)
		if err != nil {
			check(err)
			return
		}
		n := cl.count()
		if n < 1 || n > lim.MaxFrames || cl.width < 1 || cl.height < 1 || cl.width > lim.MaxDim || cl.height > lim.MaxDim {
			t.Fatalf("accepted %d frames of %dx%d", n, cl.width, cl.height)
		}
		if cl.encoded == nil {
			bpp := 3
			if cl.rgba {
				bpp = 4
			}
			if len(cl.raw) != n*cl.width*cl.height*bpp {
				t.Fatalf("raw clip of %d bytes for %d×%dx%d×%d", len(cl.raw), n, cl.width, cl.height, bpp)
			}
		}
		if cl.bodyBytes > int64(len(body)) {
			t.Fatalf("read %d body bytes of %d", cl.bodyBytes, len(body))
		}
		opt, views, err := options(cl, query, r.Header, s.model, lim)
		if err != nil {
			check(err)
			return
		}
		if opt.Top < 1 || opt.Top > lim.MaxTop || len(views) < 1 || len(views) > lim.MaxViews {
			t.Fatalf("accepted top %d with %d views", opt.Top, len(views))
		}
		needed := preprocess.NeededFrames(views)
		if cl.encoded != nil && int64(len(needed))*int64(cl.width)*int64(cl.height)*3 > lim.MaxDecodedBytes {
			return // answered 400 by classify
		}
		got, err := cl.frames(needed)
		if err != nil {
			check(err)
			return
		}
		for _, i := range needed {
			if _, ok := got[i]; !ok {
				t.Fatalf("frame %d not decoded", i)
			}
		}
	})
}

// fuzzMultipart builds a multipart body of PNG frames (and one JPEG copy of the first) plus fields.
func fuzzMultipart(f *testing.F, frames [][]byte, w, h int, fields map[string]string) (string, []byte) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, rgb := range frames {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for i := 0; i < w*h; i++ {
			img.Set(i%w, i/w, color.NRGBA{rgb[3*i], rgb[3*i+1], rgb[3*i+2], 255})
		}
		part, err := mw.CreateFormFile("frame", "f.png")
		if err != nil {
			f.Fatal(err)
		}
		if k == 0 {
			if err := jpeg.Encode(part, img, nil); err != nil {
				f.Fatal(err)
			}
			continue
		}
		if err := png.Encode(part, img); err != nil {
			f.Fatal(err)
		}
	}
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			f.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		f.Fatal(err)
	}
	return mw.FormDataContentType(), b.Bytes()
}
