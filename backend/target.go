package backend

import (
	"sync"

	"github.com/castvideo/castgo/backend/cpu"
	"github.com/castvideo/castgo/backend/plan"
)

// Buffer is a tensor's storage: a flat Go slice of the shape's dtype (the CPU executor's buffer).
type Buffer = cpu.Buffer

// A Target runs compiled plans on a device other than the CPU. Its package registers it with RegisterTarget
// when imported (package backend/webgpu does in js/wasm); the config option of the same name selects it.
type Target interface {
	// Description names the device in words (for Backend.Description).
	Description() string
	// Run executes p on the device with inputs (one per parameter, shapes checked). handled is false when
	// p has no form on the device: it then runs on the CPU.
	Run(p *plan.Plan, inputs []*Buffer) (outs []*Buffer, handled bool, err error)
	// Release frees what the device holds for p (its executable was finalized); p may not run afterwards.
	Release(p *plan.Plan)
}

var (
	targetsMu sync.Mutex
	targets   = map[string]Target{}
)

// RegisterTarget makes t available under the config option name.
func RegisterTarget(name string, t Target) {
	targetsMu.Lock()
	defer targetsMu.Unlock()
	targets[name] = t
}

func registeredTarget(name string) Target {
	targetsMu.Lock()
	defer targetsMu.Unlock()
	return targets[name]
}
