//go:build xla

package infer

import (
	"fmt"
	"os"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/xla"
)

func init() {
	// Never download PJRT plugins at run time: use what is installed (PJRT_PLUGIN_LIBRARY_PATH or the
	// standard locations) or fail plainly.
	_ = os.Setenv(xla.NoAutoInstallEnv, "1")
	xla.EnableAutoInstall(false)
}

// XLAAvailable reports whether a PJRT plugin is installed, and which ones (or why not).
func XLAAvailable() (bool, string) {
	plugins := xla.GetAvailablePlugins()
	if len(plugins) == 0 {
		return false, "no PJRT plugin found (set PJRT_PLUGIN_LIBRARY_PATH to the folder holding pjrt_c_api_*_plugin.so)"
	}
	return true, fmt.Sprintf("PJRT plugins: %v", plugins)
}

func newXLA(config string) (backends.Backend, string, error) {
	if ok, why := XLAAvailable(); !ok {
		return nil, "", fmt.Errorf("%w: %s", ErrXLAUnavailable, why)
	}
	b, err := xla.New(config)
	if err != nil {
		return nil, "", fmt.Errorf("xla backend: %w", err)
	}
	return b, "XLA/PJRT (" + b.Description() + ")", nil
}
