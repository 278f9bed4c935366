package edge

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // register the JPEG decoder
	_ "image/png"  // register the PNG decoder
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/video"
)

// clip is a request's frames before decoding: either encoded images (multipart) or one raw pixel buffer.
type clip struct {
	width, height int
	format        string
	bodyBytes     int64
	fields        map[string]string // multipart form fields (top, views)

	encoded [][]byte // multipart: one PNG or JPEG per frame, in order
	raw     []byte   // octet-stream: frames × height × width × channels
	n       int      // octet-stream: frame count
	rgba    bool     // octet-stream: 4 bytes per pixel
}

func (c *clip) count() int {
	if c.encoded != nil {
		return len(c.encoded)
	}
	return c.n
}

// frames decodes the frames at indices (classify.Video.Frames). Only the frames the views sample are
// decoded; a frame that fails to decode is the client's error (400).
func (c *clip) frames(indices []int) (map[int]preprocess.Frame, error) {
	out := make(map[int]preprocess.Frame, len(indices))
	for _, i := range indices {
		if i < 0 || i >= c.count() {
			return nil, fmt.Errorf("frame index %d out of range [0, %d)", i, c.count())
		}
		if _, ok := out[i]; ok {
			continue
		}
		var (
			f   preprocess.Frame
			err error
		)
		switch {
		case c.encoded != nil:
			f, err = decodeFrame(i, c.encoded[i], c.width, c.height)
		case c.rgba:
			n := c.width * c.height * 4
			f, err = preprocess.FrameFromRGBA(c.width, c.height, c.raw[i*n:(i+1)*n])
		default:
			n := c.width * c.height * 3
			f = preprocess.Frame{Width: c.width, Height: c.height, Pix: c.raw[i*n : (i+1)*n : (i+1)*n]}
		}
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) {
				err = errorf(http.StatusBadRequest, "frame %d: %v", i, err)
			}
			return nil, err
		}
		out[i] = f
	}
	return out, nil
}

// decodeFrame decodes frame i (PNG or JPEG) and checks it has the size its header announced.
func decodeFrame(i int, data []byte, w, h int) (preprocess.Frame, error) {
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return preprocess.Frame{}, errorf(http.StatusBadRequest, "frame %d: cannot decode image: %v", i, err)
	}
	if format != "png" && format != "jpeg" {
		return preprocess.Frame{}, errorf(http.StatusBadRequest, "frame %d: %s images are not accepted: send PNG or JPEG", i, format)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		return preprocess.Frame{}, errorf(http.StatusBadRequest, "frame %d decoded as %dx%d, but its header and frame 0 say %dx%d", i, b.Dx(), b.Dy(), w, h)
	}
	return video.ImageToFrame(img), nil
}

// errTooLarge is returned by capReader past its limit.
var errTooLarge = errors.New("request body too large")

// capReader reads at most left bytes from r and fails with errTooLarge when the body has more.
type capReader struct {
	r    io.Reader
	left int64
	read int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One probe byte tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	c.read += int64(n)
	return n, err
}

// bodyError turns a body read error into the HTTP error it means.
func bodyError(what string, err error, lim Limits) error {
	if errors.Is(err, errTooLarge) {
		return errorf(http.StatusRequestEntityTooLarge, "body exceeds the limit of %d bytes (%d MiB)", lim.MaxBodyBytes, lim.MaxBodyBytes>>20)
	}
	return errorf(http.StatusBadRequest, "%s: %v", what, err)
}

// readClip reads the request's frames: multipart/form-data with "frame" parts (PNG or JPEG) or raw
// application/octet-stream pixels described by width, height, frames and format.
func readClip(r *http.Request, query url.Values, lim Limits) (*clip, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil, errorf(http.StatusUnsupportedMediaType, "missing Content-Type: send multipart/form-data with \"frame\" parts (PNG or JPEG) or application/octet-stream raw RGB/RGBA frames")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, errorf(http.StatusUnsupportedMediaType, "malformed Content-Type %q: %v", ct, err)
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	body := &capReader{r: r.Body, left: lim.MaxBodyBytes}
	var c *clip
	switch mt {
	case "multipart/form-data":
		if params["boundary"] == "" {
			return nil, errorf(http.StatusBadRequest, "multipart/form-data without a boundary parameter")
		}
		c, err = readMultipart(multipart.NewReader(body, params["boundary"]), lim)
	case "application/octet-stream":
		c, err = readRaw(body, r, query, lim)
	default:
		return nil, errorf(http.StatusUnsupportedMediaType, "unsupported Content-Type %q: send multipart/form-data with \"frame\" parts (PNG or JPEG) or application/octet-stream raw RGB/RGBA frames", mt)
	}
	if err != nil {
		return nil, err
	}
	c.bodyBytes = body.read
	return c, nil
}

// readMultipart reads "frame" parts in order (checking each image's header: format, size, same size as
// frame 0) and the optional "top" and "views" fields.
func readMultipart(mr *multipart.Reader, lim Limits) (*clip, error) {
	c := &clip{fields: map[string]string{}, encoded: [][]byte{}}
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			if parts == 0 {
				return nil, errorf(http.StatusBadRequest, "malformed multipart body: no part delimited by its boundary")
			}
			break
		}
		if err != nil {
			return nil, bodyError("malformed multipart body", err, lim)
		}
		name := p.FormName()
		switch name {
		case "frame":
			if len(c.encoded) == lim.MaxFrames {
				return nil, errorf(http.StatusBadRequest, "too many frames: the limit is %d", lim.MaxFrames)
			}
			data, err := io.ReadAll(p)
			if err != nil {
				return nil, bodyError(fmt.Sprintf("reading frame %d", len(c.encoded)), err, lim)
			}
			if err := c.addEncoded(data, lim); err != nil {
				return nil, err
			}
		case "top", "views":
			v, err := io.ReadAll(io.LimitReader(p, 65))
			if err != nil {
				return nil, bodyError("reading field "+name, err, lim)
			}
			if len(v) > 64 {
				return nil, errorf(http.StatusBadRequest, "field %s is too long", name)
			}
			c.fields[name] = strings.TrimSpace(string(v))
		default:
			return nil, errorf(http.StatusBadRequest, "unexpected multipart part %q: send the frames as parts named \"frame\" (plus optional \"top\" and \"views\" fields)", name)
		}
	}
	if len(c.encoded) == 0 {
		return nil, errorf(http.StatusBadRequest, "no frames: send at least one multipart part named \"frame\" holding a PNG or JPEG image")
	}
	return c, nil
}

// addEncoded checks an encoded frame's header and appends it.
func (c *clip) addEncoded(data []byte, lim Limits) error {
	i := len(c.encoded)
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return errorf(http.StatusBadRequest, "frame %d (%d bytes) is not a PNG or JPEG image: %v", i, len(data), err)
	}
	if format != "png" && format != "jpeg" {
		return errorf(http.StatusBadRequest, "frame %d: %s images are not accepted: send PNG or JPEG", i, format)
	}
	if err := checkDims(cfg.Width, cfg.Height, lim); err != nil {
		return errorf(http.StatusBadRequest, "frame %d: %v", i, err)
	}
	if i == 0 {
		c.width, c.height, c.format = cfg.Width, cfg.Height, format
	} else {
		if cfg.Width != c.width || cfg.Height != c.height {
			return errorf(http.StatusBadRequest, "frame %d is %dx%d but frame 0 is %dx%d: all frames must have one size", i, cfg.Width, cfg.Height, c.width, c.height)
		}
		if format != c.format {
			c.format = "mixed"
		}
	}
	c.encoded = append(c.encoded, data)
	return nil
}

func checkDims(w, h int, lim Limits) error {
	if w < 1 || h < 1 || w > lim.MaxDim || h > lim.MaxDim {
		return fmt.Errorf("size %dx%d is out of range: width and height must be 1..%d", w, h, lim.MaxDim)
	}
	return nil
}

// readRaw reads frames × height × width RGB or RGBA pixels described by the width, height, frames and
// format parameters (query, or X-Width, X-Height, X-Frames, X-Format headers).
func readRaw(body io.Reader, r *http.Request, query url.Values, lim Limits) (*clip, error) {
	get := func(name string) string {
		if v := query.Get(name); v != "" {
			return v
		}
		return r.Header.Get("X-" + name)
	}
	var dims [3]int
	for i, name := range []string{"width", "height", "frames"} {
		v := get(name)
		if v == "" {
			return nil, errorf(http.StatusBadRequest, "missing parameter %s: raw frames need width, height and frames (query or X-Width/X-Height/X-Frames headers)", name)
		}
		hi := lim.MaxDim
		if name == "frames" {
			hi = lim.MaxFrames
		}
		n, err := parseInt(name, v, 1, hi)
		if err != nil {
			return nil, err
		}
		dims[i] = n
	}
	c := &clip{width: dims[0], height: dims[1], n: dims[2], format: strings.ToLower(get("format"))}
	switch c.format {
	case "", "rgb":
		c.format = "rgb"
	case "rgba":
		c.rgba = true
	default:
		return nil, errorf(http.StatusBadRequest, "bad parameter format %q: use rgb or rgba", c.format)
	}
	bpp := int64(3)
	if c.rgba {
		bpp = 4
	}
	want := int64(c.n) * int64(c.width) * int64(c.height) * bpp
	if want > lim.MaxBodyBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, "%d %s frames of %dx%d need %d bytes, over the body limit of %d bytes", c.n, c.format, c.width, c.height, want, lim.MaxBodyBytes)
	}
	if r.ContentLength >= 0 && r.ContentLength != want {
		return nil, errorf(http.StatusBadRequest, "body has %d bytes but %d %s frames of %dx%d need frames×height×width×%d = %d", r.ContentLength, c.n, c.format, c.width, c.height, bpp, want)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, bodyError("reading the body", err, lim)
	}
	if int64(len(data)) != want {
		return nil, errorf(http.StatusBadRequest, "body has %d bytes but %d %s frames of %dx%d need frames×height×width×%d = %d", len(data), c.n, c.format, c.width, c.height, bpp, want)
	}
	c.raw = data
	return c, nil
}

// parseInt parses a decimal integer parameter in [lo, hi].
func parseInt(name, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "bad parameter %s %q: not an integer", name, v)
	}
	if n < lo || n > hi {
		return 0, errorf(http.StatusBadRequest, "bad parameter %s %d: must be %d..%d", name, n, lo, hi)
	}
	return n, nil
}
