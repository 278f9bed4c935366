// Command serve is a tiny static file server for the castgo web page (dist/site): correct MIME types for
// .wasm/.js/.mjs/.safetensors, Cache-Control: no-cache, the page's Content-Security-Policy as an HTTP header,
// one log line per request. It binds only to loopback addresses (a development server: nothing else), lists
// no directories (a directory without index.html is a 404), and has read, write, idle and header timeouts.
//
//	go run ./tools/serve --dir dist/site [--addr 127.0.0.1:8080]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CSP is the Content-Security-Policy of the page (the same as the meta tag in site/index.html).
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; " +
	"img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; style-src 'self'; " +
	"object-src 'none'; base-uri 'self'; form-action 'none'; frame-ancestors 'none'"

var types = map[string]string{
	".wasm":        "application/wasm",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".safetensors": "application/octet-stream",
	".html":        "text/html; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	dir := flag.String("dir", "dist/site", "directory to serve")
	addr := flag.String("addr", "127.0.0.1:"+port, "listen address (host:port; port 0 picks a free one)")
	flag.Parse()
	if err := run(*dir, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

// Timeouts of the server: a client gets 10 s to send its headers and 30 s for the whole request, 10 minutes
// to take a response (the largest model file is ~870 MB), and an idle keep-alive connection is closed
// after 60 s.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 10 * time.Minute
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 64 << 10
)

func run(dir, addr string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(dir)
	// The "serving" line carries the real address (port 0 resolved), so scripts and tests can read it.
	log.Printf("serving %s on http://%s/", abs, ln.Addr())
	return newServer(dir).Serve(ln)
}

// newServer is the HTTP server for dir, with its timeouts.
func newServer(dir string) *http.Server {
	for ext, t := range types {
		_ = mime.AddExtensionType(ext, t)
	}
	return &http.Server{
		Handler:           handler(dir),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// listen listens on addr, which must be a loopback address (127.0.0.0/8, ::1 or localhost); the address
// actually bound is checked again, so a name that resolves elsewhere is refused too.
func listen(addr string) (net.Listener, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("--addr %s bound %s, which is not a loopback address: serve only listens on loopback", addr, ln.Addr())
	}
	return ln, nil
}

// checkLoopback refuses a listen address whose host is not a loopback address.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil || !ip.IsLoopback() {
		return errors.New("--addr " + addr + " is not a loopback address: serve only listens on loopback (127.0.0.1, ::1, localhost)")
	}
	return nil
}

// noListing is a file system that hides directories without an index.html, so the file server answers
// 404 instead of listing them.
type noListing struct{ fs http.FileSystem }

func (n noListing) Open(name string) (http.File, error) {
	f, err := n.fs.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		index, err := n.fs.Open(strings.TrimSuffix(name, "/") + "/index.html")
		if err != nil {
			f.Close()
			return nil, fs.ErrNotExist
		}
		index.Close()
	}
	return f, nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(s int) { w.status = s; w.ResponseWriter.WriteHeader(s) }
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func handler(dir string) http.Handler {
	files := http.FileServer(noListing{http.Dir(dir)})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if t, ok := types[strings.ToLower(filepath.Ext(r.URL.Path))]; ok {
			h.Set("Content-Type", t)
		}
		sw := &statusWriter{ResponseWriter: w}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(sw, "method not allowed", http.StatusMethodNotAllowed)
		} else {
			files.ServeHTTP(sw, r)
		}
		log.Printf("%s %s %d %dB %s", r.Method, r.URL.RequestURI(), sw.status, sw.n, time.Since(start).Round(time.Microsecond))
	})
}
