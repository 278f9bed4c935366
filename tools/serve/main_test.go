package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// site makes dir/site with a page, a script, a stylesheet, a module and a models/ folder without
// index.html, next to a secret dir/go.mod that must never be served.
func site(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":                      "module secret\n",
		"site/index.html":             "<!doctype html><title>castgo</title>",
		"site/app.js":                 "console.log(1)",
		"site/worker.mjs":             "export {}",
		"site/style.css":              "body{}",
		"site/cast.wasm":              "\x00asm\x01\x00\x00\x00",
		"site/models/m.safetensors":   "x",
		"site/docs/index.html":        "<p>docs</p>",
		"site/docs/empty/placeholder": "",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "site")
}

// rawGet sends "GET target" as written (no client-side path cleaning) and returns the response.
func rawGet(t *testing.T, addr, target string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "10.1.2.3:8080", "example.com:0", "[2001:db8::1]:0", "nonsense"} {
		ln, err := listen(addr)
		if err == nil {
			ln.Close()
			t.Errorf("listen(%q) succeeded, want a refusal", addr)
		} else if addr != "nonsense" && !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("listen(%q): %v", addr, err)
		}
	}
	if err := run(site(t), "0.0.0.0:0"); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("run on 0.0.0.0: %v", err)
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := listen(addr)
		if err != nil {
			t.Errorf("listen(%q): %v", addr, err)
			continue
		}
		if !ln.Addr().(*net.TCPAddr).IP.IsLoopback() {
			t.Errorf("listen(%q) bound %s", addr, ln.Addr())
		}
		ln.Close()
	}
}

func TestTimeouts(t *testing.T) {
	s := newServer(t.TempDir())
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 {
		t.Errorf("server timeouts: header %v, read %v, write %v, idle %v, max header %d bytes",
			s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout, s.MaxHeaderBytes)
	}
}

func TestServe(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = newServer(site(t))
	srv.Start()
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	for _, tc := range []struct{ path, ctype, body string }{
		{"/", "text/html; charset=utf-8", "<title>castgo</title>"},
		{"/app.js", "text/javascript; charset=utf-8", "console.log"},
		{"/worker.mjs", "text/javascript; charset=utf-8", "export"},
		{"/style.css", "text/css; charset=utf-8", "body"},
		{"/cast.wasm", "application/wasm", "asm"},
		{"/models/m.safetensors", "application/octet-stream", "x"},
		{"/docs/", "text/html; charset=utf-8", "docs"},
	} {
		resp, body := rawGet(t, addr, tc.path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tc.ctype || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s: %d, Content-Type %q, body %q; want 200, %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.ctype)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); csp != CSP || !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tc.path)
		}
	}

	for _, target := range []string{
		"/../go.mod", "/..%2fgo.mod", "/%2e%2e/go.mod", "/%2e%2e%2fgo.mod", "/..%5cgo.mod", "/models/../../go.mod",
		"/models/%2e%2e/%2e%2e/go.mod", "/%2E%2E/go.mod", "/./../go.mod", "//../go.mod", "/..\\go.mod",
	} {
		resp, body := rawGet(t, addr, target)
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 404", target, resp.StatusCode)
		}
		if strings.Contains(body, "module secret") {
			t.Errorf("GET %s served the file outside the directory: %q", target, body)
		}
	}

	// Directories without index.html are not listed.
	for _, target := range []string{"/models/", "/models", "/docs/empty/", "/docs/empty"} {
		resp, body := rawGet(t, addr, target)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "m.safetensors") || strings.Contains(body, "placeholder") {
			t.Errorf("GET %s: %d %q, want a 404 without a listing", target, resp.StatusCode, body)
		}
	}
	if resp, _ := rawGet(t, addr, "/missing.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /missing.js: %d", resp.StatusCode)
	}
	// Only GET and HEAD.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/app.js", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}
