//go:build !js

package backend_test

import (
	"strings"
	"testing"

	"github.com/castvideo/castgo/backend"
)

// TestWebGPUOptionNeedsJS checks that the webgpu option is refused outside js/wasm with a clear error.
func TestWebGPUOptionNeedsJS(t *testing.T) {
	_, err := backend.New("webgpu")
	if err == nil || !strings.Contains(err.Error(), "webgpu option needs js/wasm") {
		t.Fatalf("New(webgpu) natively: %v", err)
	}
}
