//go:build !js

package infer

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

// newSimpleGo opens GoMLX's simplego backend. Its default configuration deadlocks on 2 cores (gomlx v0.26.0),
// so ops run sequentially; DotGeneral still uses every core.
func newSimpleGo() (backends.Backend, string, error) {
	b, err := simplego.New("ops_sequential")
	if err != nil {
		return nil, "", fmt.Errorf("simplego backend: %w", err)
	}
	return b, "pure Go (simplego)", nil
}
