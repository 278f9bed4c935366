// Package infer runs a CAST model on a GoMLX backend: it picks the backend (castgo's own pure-Go backend by
// default, GoMLX's simplego on request, XLA/PJRT
// when built with -tags xla and a plugin is present), loads weights into a context once, and executes the
// graph of package cast, compiling it once per batch size.
package infer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/castvideo/castgo/backend"
	"github.com/gomlx/gomlx/backends"
)

// BackendEnv names the environment variable that selects the backend when no flag does ("castgo" or its
// alias "go", "simplego" or "xla").
const BackendEnv = "CAST_BACKEND"

// ErrXLAUnavailable wraps every reason the XLA backend cannot be used here (no -tags xla build, no plugin).
var ErrXLAUnavailable = errors.New("xla backend unavailable")

// NewBackend returns the backend called name: "castgo" or "castgo:CONFIG" (castgo's own fused pure-Go
// backend, package backend, the default when name is empty and CAST_BACKEND is unset; CONFIG is e.g.
// "profile" or "threads=2"; "go" and "go:CONFIG" are aliases kept for existing scripts, although GoMLX
// registers its simplego under "go"), "simplego" (GoMLX's reference pure-Go backend: training and cross-checks) or "xla" /
// "xla:PLUGIN" (XLA through PJRT; needs a build with -tags xla and an installed PJRT plugin, never
// downloaded). The second result describes the backend in words.
func NewBackend(name string) (backends.Backend, string, error) {
	if name == "" {
		name = os.Getenv(BackendEnv)
	}
	if name == "" {
		name = backend.Name
	}
	kind, config, _ := strings.Cut(name, ":")
	switch kind {
	case backend.Name, "go": // "go": the alias of earlier releases
		b, err := backend.New(config)
		if err != nil {
			return nil, "", fmt.Errorf("pure-Go backend: %w", err)
		}
		return b, "pure Go (" + b.Description() + ")", nil
	case "simplego":
		return newSimpleGo()
	case "xla":
		return newXLA(config)
	default:
		return nil, "", fmt.Errorf("unknown backend %q: use castgo[:config] (alias go), simplego or xla[:plugin]", name)
	}
}
