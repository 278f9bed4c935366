//go:build !js

package backend

import (
	"github.com/gomlx/gomlx/backends"
	"github.com/pkg/errors"
)

const webgpuAvailable = false

// gpuExecute is only reachable with the webgpu option, which New refuses outside js/wasm.
func (e *Executable) gpuExecute([]backends.Buffer) ([]backends.Buffer, bool, error) {
	return nil, true, errors.New("castgo backend: webgpu needs js/wasm")
}
