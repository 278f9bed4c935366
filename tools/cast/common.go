package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/gomlx/gomlx/backends"
)

// backendFlag is the global --backend flag ("go" or "xla"; default from $CAST_BACKEND, else go).
var backendFlag string

func init() {
	rootCmd.PersistentFlags().StringVar(&backendFlag, "backend", "", "compute backend: go (pure Go, default) or xla[:plugin] (needs -tags xla and a PJRT plugin); default $"+infer.BackendEnv)
}

// newBackend opens the backend chosen by --backend / $CAST_BACKEND and says which one on stderr.
func newBackend() (backends.Backend, error) {
	b, desc, err := infer.NewBackend(backendFlag)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "backend: %s\n", desc)
	return b, nil
}

// resolveConfig reads --config: a preset name (base-ssv2, base-k400, base-epic, demo) or a JSON file
// (a bare model object, or a goldens config.json with a "model" key).
func resolveConfig(spec string) (cast.Config, error) {
	if c, ok := cast.Presets[spec]; ok {
		return c, nil
	}
	if spec == "" {
		return cast.Config{}, fmt.Errorf("--config is required: a preset (%s) or a JSON file", strings.Join(cast.PresetNames(), ", "))
	}
	data, err := os.ReadFile(spec)
	if err != nil {
		return cast.Config{}, fmt.Errorf("--config %q is neither a preset (%s) nor a readable file: %w", spec, strings.Join(cast.PresetNames(), ", "), err)
	}
	c, err := cast.ParseConfig(data)
	if err != nil {
		return cast.Config{}, fmt.Errorf("--config %s: %w", spec, err)
	}
	return c, nil
}
