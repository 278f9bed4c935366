//go:build js && wasm

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"syscall/js"
	"time"
)

// resumeWait bounds how long a handler that has answered early waits for JS's resume call.
const resumeWait = 100 * time.Millisecond

// serveBytes registers binding.handleBytes for entry.mjs: the whole-body path of a stage worker, whose
// request and answer are a view's activations (9.7 MB for base). syumai/workers' handleRequest moves a
// body through a ReadableStream in 16 KiB chunks, each an await and a JS↔Go round trip, which made one
// hop of a base activation take tens of seconds; here entry.mjs reads the request with one
// `await request.arrayBuffer()` and the answer goes back as one Uint8Array:
//
//	binding.handleBytes(method, url, headers [[name, value]…], body Uint8Array|null)
//	  → Promise<{status, headers [[name, value]…], body Uint8Array, resume?: function}>
//	  (resume: call it once the answer is sent on; see handleBytes)
//	binding.maxBodyBytes: entry.mjs answers 413 itself to a larger body, without reading it
//
// The request body is read by the handler straight from the JS array (js.CopyBytesToGo into the
// handler's own buffer, no second Go copy), and an answer that declares its Content-Length (the stage's
// activations do) is written straight into the JS array of that size (js.CopyBytesToJS).
func serveBytes(h http.Handler, maxBody int64) {
	b := js.Global().Get("context").Get("binding")
	b.Set("maxBodyBytes", float64(maxBody))
	b.Set("handleBytes", js.FuncOf(func(_ js.Value, args []js.Value) any {
		var run js.Func
		run = js.FuncOf(func(_ js.Value, p []js.Value) any {
			run.Release()
			resolve, reject := p[0], p[1]
			go func() {
				res, err := handleBytes(h, maxBody, args)
				if err != nil {
					reject.Invoke(js.Global().Get("Error").New(err.Error()))
					return
				}
				resolve.Invoke(res)
			}()
			return nil
		})
		return js.Global().Get("Promise").New(run)
	}))
}

// handleBytes serves one request of serveBytes. It returns the answer as soon as the handler has written
// the whole of a declared Content-Length (the stage's activations), with a resume function for JS to call
// once it has sent the answer on: the handler waits in its last Write until then, so that what it does after
// answering (the stage's runtime.GC) does not delay the answer. Else it returns when the handler does.
func handleBytes(h http.Handler, maxBody int64, args []js.Value) (js.Value, error) {
	if len(args) != 4 {
		return js.Value{}, fmt.Errorf("handleBytes takes (method, url, headers, body), got %d arguments", len(args))
	}
	u, err := url.Parse(args[1].String())
	if err != nil {
		return js.Value{}, fmt.Errorf("the request URL: %w", err)
	}
	hdr := http.Header{}
	pairs := args[2]
	for i := range pairs.Length() {
		kv := pairs.Index(i)
		hdr.Add(kv.Index(0).String(), kv.Index(1).String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	req := (&http.Request{Method: args[0].String(), URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: hdr, Host: hdr.Get("Host"), RemoteAddr: hdr.Get("Cf-Connecting-Ip"), Body: http.NoBody}).WithContext(ctx)
	if body := args[3]; !body.IsNull() && !body.IsUndefined() {
		n := int64(body.Length())
		if n > maxBody {
			cancel()
			return js.Value{}, fmt.Errorf("a body of %d bytes is over the %d this worker takes", n, maxBody)
		}
		req.Body, req.ContentLength = &jsReader{a: body, n: n}, n
		args[3] = js.Undefined()
	}
	w := &bytesWriter{header: http.Header{}, complete: make(chan struct{}), resume: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				err := fmt.Errorf("internal error: %v", p)
				if w.early {
					js.Global().Get("console").Call("error", "castgo: after answering: "+err.Error())
				}
				done <- err
			}
		}()
		h.ServeHTTP(w, req)
		w.WriteHeader(http.StatusOK) // a handler that wrote nothing answers 200 with an empty body
		done <- nil
	}()
	select {
	case err := <-done:
		if err == nil {
			err = w.err
		}
		if err != nil {
			return js.Value{}, err
		}
		return w.response(), nil
	case <-w.complete:
		res := w.response()
		var f js.Func
		f = js.FuncOf(func(js.Value, []js.Value) any {
			f.Release()
			close(w.resume)
			return nil
		})
		res.Set("resume", f)
		return res, nil
	}
}

// response is the answer for JS: {status, headers, body}.
func (w *bytesWriter) response() js.Value {
	out := js.Global().Get("Object").New()
	out.Set("status", w.status)
	hs := js.Global().Get("Array").New()
	for k, vs := range w.header {
		if k == "Content-Length" {
			continue // the Response takes its length from the body
		}
		for _, v := range vs {
			hs.Call("push", js.ValueOf([]any{k, v}))
		}
	}
	out.Set("headers", hs)
	out.Set("body", w.jsBody())
	return out
}

// jsReader reads a JS Uint8Array: each Read is one js.CopyBytesToGo into the caller's buffer.
type jsReader struct {
	a      js.Value // Uint8Array
	off, n int64
}

func (r *jsReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		r.a = js.Undefined() // the JS array can go as soon as Go's GC drops the reference
		return 0, io.EOF
	}
	end := min(r.n, r.off+int64(len(p)))
	k := js.CopyBytesToGo(p, r.a.Call("subarray", r.off, end))
	r.off += int64(k)
	return k, nil
}

func (r *jsReader) Close() error { return nil }

// bytesWriter collects an answer. With a Content-Length header set before WriteHeader, the body is
// written straight into a JS Uint8Array of that size; else it is collected in Go and copied once at the end.
type bytesWriter struct {
	header http.Header
	status int // 0 until WriteHeader
	js     js.Value
	size   int64 // the declared length (-1: none)
	off    int64
	buf    []byte
	err    error

	complete chan struct{} // closed once the declared length is written: the answer goes out
	resume   chan struct{} // closed by JS once it has sent the answer on: the handler goes on
	early    bool          // complete was closed
}

// errContentLength is what a handler gets for writing past its declared Content-Length.
var errContentLength = errors.New("shardworker: wrote more than the declared Content-Length")

func (w *bytesWriter) Header() http.Header { return w.header }

func (w *bytesWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status, w.size = status, -1
	if n, err := strconv.ParseInt(w.header.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		w.size = n
		w.js = js.Global().Get("Uint8Array").New(n)
	}
}

func (w *bytesWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.size < 0 {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if w.off+int64(len(p)) > w.size {
		w.err = fmt.Errorf("%w (%d)", errContentLength, w.size)
		return 0, w.err
	}
	js.CopyBytesToJS(w.js.Call("subarray", w.off, w.off+int64(len(p))), p)
	w.off += int64(len(p))
	if w.off == w.size && !w.early {
		w.early = true
		close(w.complete)
		// JS resumes the handler once the answer is on its way; should that never come (the request's
		// context ended first), go on after a while anyway: the stage must not stay busy with this view.
		select {
		case <-w.resume:
		case <-time.After(resumeWait):
		}
	}
	return len(p), nil
}

// jsBody is the answer's body as one Uint8Array.
func (w *bytesWriter) jsBody() js.Value {
	if w.size >= 0 {
		if w.off < w.size {
			return w.js.Call("subarray", 0, w.off)
		}
		return w.js
	}
	a := js.Global().Get("Uint8Array").New(len(w.buf))
	js.CopyBytesToJS(a, w.buf)
	return a
}
