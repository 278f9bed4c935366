//go:build !xla

package infer

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
)

// ErrNoXLA is returned for the xla backend by binaries built without -tags xla.
var ErrNoXLA = fmt.Errorf("%w: this binary was built without XLA support: rebuild with `go build -tags xla` (cgo) and install a PJRT plugin", ErrXLAUnavailable)

// XLAAvailable reports whether this binary can use the XLA backend (built with -tags xla and a plugin found).
func XLAAvailable() (bool, string) { return false, ErrNoXLA.Error() }

func newXLA(string) (backends.Backend, string, error) { return nil, "", ErrNoXLA }
