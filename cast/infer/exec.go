package infer

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// NewExec compiles another graph over the model's loaded weights, on the model's backend: fn reads them
// from ctx with cast.Param, as cast.Forward does (package explain builds its maps this way). The Exec must
// be finalized before the model is closed.
func (m *Model) NewExec(fn func(ctx *context.Context, x *graph.Node) []*graph.Node) (*context.Exec, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exec == nil {
		return nil, errClosed
	}
	exec, err := context.NewExec(m.backend, m.ctx.Reuse(), fn)
	if err != nil {
		return nil, fmt.Errorf("building a graph on the model's weights: %w", err)
	}
	return exec, nil
}
