// Command serve is a tiny static file server for the castgo web page (dist/site): correct MIME types for
// .wasm/.js/.mjs/.safetensors, Cache-Control: no-cache, the page's Content-Security-Policy as an HTTP header,
// one log line per request. It binds only to loopback addresses unless --public is given.
//
//	go run ./tools/serve --dir dist/site [--addr 127.0.0.1:8080] [--public]
package main

import (
	"errors"
	"flag"
	"fmt"
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
	public := flag.Bool("public", false, "allow listening on a non-loopback address")
	flag.Parse()
	if err := run(*dir, *addr, *public); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

func run(dir, addr string, public bool) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := checkLoopback(addr, public); err != nil {
		return err
	}
	for ext, t := range types {
		_ = mime.AddExtensionType(ext, t)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(dir)
	// The "serving" line carries the real address (port 0 resolved), so scripts and tests can read it.
	log.Printf("serving %s on http://%s/", abs, ln.Addr())
	srv := &http.Server{Handler: handler(dir), ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

// checkLoopback refuses a listen address whose host is not a loopback address unless public is set.
func checkLoopback(addr string, public bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", addr, err)
	}
	if public {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil || !ip.IsLoopback() {
		return errors.New("--addr " + addr + " is not a loopback address: pass --public to serve it to the network")
	}
	return nil
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
	files := http.FileServer(http.Dir(dir))
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
