//go:build js

package infer

import (
	"errors"

	"github.com/gomlx/gomlx/backends"
)

// newSimpleGo refuses: the WebAssembly builds (page, worker) leave GoMLX's simplego out, which keeps
// cast.wasm and the worker script within their size budgets; they run on castgo.
func newSimpleGo() (backends.Backend, string, error) {
	return nil, "", errors.New("the simplego backend is not built into the WebAssembly module (castgo runs there: use go)")
}
