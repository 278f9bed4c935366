//go:build !js || castgo_nowebgpu

package backend

import (
	"github.com/gomlx/gomlx/backends"
	"github.com/pkg/errors"
)

const webgpuAvailable = false

// Outside js/wasm, and in js/wasm builds with the castgo_nowebgpu tag (the edge worker: no WebGPU there, and
// its script has a size budget), the backend has no WebGPU executor and New refuses the webgpu option.

// gpuExecute is only reachable with the webgpu option, which New refuses here.
func (e *Executable) gpuExecute([]backends.Buffer) ([]backends.Buffer, bool, error) {
	return nil, true, errors.New("castgo backend: webgpu needs js/wasm")
}

// releaseGPU has nothing to release without the WebGPU executor.
func (e *Executable) releaseGPU() {}
