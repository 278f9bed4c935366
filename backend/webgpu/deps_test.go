//go:build !js

package webgpu_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestWorkerLinksNoWebGPU checks, with `go list -deps` for js/wasm, that the WebGPU executor is linked into
// the wasm module of the page (which imports it to register the "webgpu" option) and not into the edge
// worker (no WebGPU there, and its script has a size budget).
func TestWorkerLinksNoWebGPU(t *testing.T) {
	const pkg = "github.com/castvideo/castgo/backend/webgpu"
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	deps := func(target string) []string {
		cmd := exec.Command(goTool, "list", "-deps", target)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(cmd.Environ(), "GOOS=js", "GOARCH=wasm")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", target, err, out)
		}
		return strings.Fields(string(out))
	}
	if d := deps("./worker/..."); slices.Contains(d, pkg) {
		t.Errorf("the worker links %s", pkg)
	} else if !slices.Contains(d, "github.com/castvideo/castgo/backend") {
		t.Errorf("the worker's dependencies (%d packages) miss the castgo backend: is the list right?", len(d))
	}
	if d := deps("./wasm"); !slices.Contains(d, pkg) {
		t.Errorf("the wasm module does not link %s: its webgpu option would be missing", pkg)
	}
}
