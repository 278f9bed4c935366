// Package capturetest wraps the castgo backend for tests that inspect the executables GoMLX compiles on it
// (their plans, their arenas).
package capturetest

import (
	"github.com/castvideo/castgo/backend"
	"github.com/gomlx/gomlx/backends"
)

// Backend is the castgo backend that keeps every executable it compiles, in order.
type Backend struct {
	*backend.Backend
	Execs []backends.Executable
}

// Last returns the executable compiled last (nil before any).
func (c *Backend) Last() backends.Executable {
	if len(c.Execs) == 0 {
		return nil
	}
	return c.Execs[len(c.Execs)-1]
}

type builder struct {
	backends.Builder
	c *Backend
}

// Builder returns a builder whose Compile records the executable.
func (c *Backend) Builder(name string) backends.Builder {
	return &builder{Builder: c.Backend.Builder(name), c: c}
}

func (b *builder) Compile(outputs []backends.Op, s []*backends.ShardingSpec) (backends.Executable, error) {
	e, err := b.Builder.Compile(outputs, s)
	b.c.Execs = append(b.c.Execs, e)
	return e, err
}
