package cast

import (
	"strings"

	"github.com/castvideo/castgo/cast/weights"
)

// Quantizable reports whether the int8 scheme stores the named parameter as int8 with per-output-channel
// scales: every Linear and patch-embedding weight (rank ≥ 2: attention, MLP, adapter, B-CAST and head
// matrices, and both patch-embedding kernels). Norms, biases and the positional/class/time/space
// embeddings stay float32.
func Quantizable(name string, shape []int) bool {
	return len(shape) >= 2 && (strings.HasSuffix(name, "weight") || strings.HasSuffix(name, "in_proj_weight"))
}

// QuantizeInt8 returns a copy of set whose quantizable weights (see Quantizable) are symmetric
// per-output-channel int8, except those for which keepFloat returns true (nil keeps none).
func QuantizeInt8(set weights.Set, keepFloat func(name string) bool) (weights.Set, error) {
	out := weights.Set{}
	for name, t := range set {
		if t.DType != weights.F32 || !Quantizable(name, t.Shape) || (keepFloat != nil && keepFloat(name)) {
			out[name] = t
			continue
		}
		q, err := weights.QuantizeInt8(t)
		if err != nil {
			return nil, err
		}
		out[name] = q
	}
	return out, nil
}
