package modelfile_test

import (
	"encoding/binary"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/models"
)

// withHeader rewrites a model file's JSON header with fn, keeping its data section.
func withHeader(t *testing.T, data []byte, fn func(h map[string]any, md map[string]any)) []byte {
	t.Helper()
	n := binary.LittleEndian.Uint64(data)
	var h map[string]any
	if err := json.Unmarshal(data[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	fn(h, h["__metadata__"].(map[string]any))
	hb, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hb)))
	return append(append(out, hb...), data[8+n:]...)
}

// withConfig replaces one "key":value of the castgo.config JSON.
func withConfig(t *testing.T, data []byte, old, new string) []byte {
	return withHeader(t, data, func(h, md map[string]any) {
		cfg := md[modelfile.KeyConfig].(string)
		if !strings.Contains(cfg, old) {
			t.Fatalf("config %s has no %s", cfg, old)
		}
		md[modelfile.KeyConfig] = strings.Replace(cfg, old, new, 1)
	})
}

// TestHostileModelFiles: the shipped 370 KB default model with an absurd or inconsistent config (or
// header) is refused before any tensor is decoded, with an error naming the problem, in bounded memory.
func TestHostileModelFiles(t *testing.T) {
	def := models.DefaultBytes()
	if _, err := modelfile.Parse(def); err != nil {
		t.Fatalf("the default model does not parse: %v", err)
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"depth 2^30", withConfig(t, def, `"depth":2`, `"depth":1073741824`), "depth 1073741824 is out of range"},
		{"depth 64, tensors for 2", withConfig(t, def, `"depth":2`, `"depth":64`), "missing: blocks.10."},
		{"embed dim 8192", withConfig(t, def, `"embed_dim":32`, `"embed_dim":8192`), "want [8192]"},
		{"embed dim 2^31", withConfig(t, def, `"embed_dim":32`, `"embed_dim":2147483648`), "embed_dim 2147483648 is out of range"},
		{"zero heads", withConfig(t, def, `"num_heads":4`, `"num_heads":0`), "num_heads (0) must be positive"},
		{"frames 2^30", withConfig(t, def, `"all_frames":4`, `"all_frames":1073741824`), "all_frames 1073741824 is out of range"},
		{"frames 128, tensors for 4", withConfig(t, def, `"all_frames":4`, `"all_frames":128`), "blocks.0.t2s_cross.clip_time_pos is F32[2 16], want [64 16]"},
		{"classes 2^30", withConfig(t, def, `"num_classes":16`, `"num_classes":1073741824`), "class counts"},
		{"mlp ratio 1e9", withConfig(t, def, `"mlp_ratio":4`, `"mlp_ratio":1e9`), "mlp_ratio"},
		{"image size 2^20", withConfig(t, def, `"img_size":56`, `"img_size":1048576`), "out of range"},
		{"missing tensor", withHeader(t, def, func(h, md map[string]any) { h["x"] = h["head.bias"]; delete(h, "head.bias") }), "1 missing: head.bias; 1 unexpected: x"},
		{"huge shape", withHeader(t, def, func(h, md map[string]any) {
			h["head.bias"].(map[string]any)["shape"] = []any{1 << 40, 1 << 40}
		}), "invalid safetensors file"},
		{"offsets past the data", withHeader(t, def, func(h, md map[string]any) {
			h["head.bias"].(map[string]any)["data_offsets"] = []any{1 << 50, 1<<50 + 64}
		}), "invalid safetensors file"},
		{"header length 2^63", append(binary.LittleEndian.AppendUint64(nil, 1<<63), def[8:]...), "runs past the end"},
		{"header length = file", append(binary.LittleEndian.AppendUint64(nil, uint64(len(def))), def[8:]...), "runs past the end"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			f, err := modelfile.Parse(c.data)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("accepted: %d tensors, config %+v", len(f.Weights), f.Meta.Config)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
			// Refused before decoding: the header's JSON costs a few times its size, nothing like the
			// tensors (let alone what the config claims).
			if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
				t.Fatalf("a %d-byte file made Parse allocate %d bytes", len(c.data), d)
			}
		})
	}
	// The int8 default model is checked the same way.
	q := models.DefaultInt8Bytes()
	if _, err := modelfile.Parse(withConfig(t, q, `"depth":2`, `"depth":3`)); err == nil || !strings.Contains(err.Error(), "missing: blocks.2.") {
		t.Fatalf("int8 model with depth 3: %v", err)
	}
}
