// Package infer runs a CAST model on a GoMLX backend: it picks the backend (castgo's own pure-Go backend by
// default, GoMLX's simplego on request, XLA/PJRT
// when built with -tags xla and a plugin is present), loads weights into a context once, and executes the
// graph of package cast, compiling it once per batch size.
package infer

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/castvideo/castgo/backend"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

// BackendEnv names the environment variable that selects the backend when no flag does ("go", "simplego"
// or "xla").
const BackendEnv = "CAST_BACKEND"

// goConfig is the simplego backend configuration. The default simplego config deadlocks on 2 cores and
// always in js/wasm (gomlx v0.26.0), so ops run sequentially; natively DotGeneral still uses every core.
func goConfig() string {
	if runtime.GOOS == "js" {
		return "ops_sequential,parallelism=1"
	}
	return "ops_sequential"
}

// ErrXLAUnavailable wraps every reason the XLA backend cannot be used here (no -tags xla build, no plugin).
var ErrXLAUnavailable = errors.New("xla backend unavailable")

// NewBackend returns the backend called name: "go" or "go:CONFIG" (castgo's own fused pure-Go backend,
// package backend, the default when name is empty and CAST_BACKEND is unset; CONFIG is e.g. "profile" or
// "threads=2"), "simplego" (GoMLX's reference pure-Go backend: training and cross-checks) or "xla" /
// "xla:PLUGIN" (XLA through PJRT; needs a build with -tags xla and an installed PJRT plugin, never
// downloaded). The second result describes the backend in words.
func NewBackend(name string) (backends.Backend, string, error) {
	if name == "" {
		name = os.Getenv(BackendEnv)
	}
	if name == "" {
		name = "go"
	}
	kind, config, _ := strings.Cut(name, ":")
	switch kind {
	case "go", backend.Name:
		b, err := backend.New(config)
		if err != nil {
			return nil, "", fmt.Errorf("pure-Go backend: %w", err)
		}
		return b, "pure Go (" + b.Description() + ")", nil
	case "simplego":
		b, err := simplego.New(goConfig())
		if err != nil {
			return nil, "", fmt.Errorf("simplego backend: %w", err)
		}
		return b, "pure Go (simplego)", nil
	case "xla":
		return newXLA(config)
	default:
		return nil, "", fmt.Errorf("unknown backend %q: use go[:config], simplego or xla[:plugin]", name)
	}
}
