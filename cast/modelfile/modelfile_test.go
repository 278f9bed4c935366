package modelfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/weights"
)

// tinyConfig is the smallest CAST the config allows (D=8, one block, 2 frames, 14×14 patches of 1 pixel):
// a complete state dict of about 8K floats.
func tinyConfig() cast.Config {
	return cast.Config{ImgSize: 14, PatchSize: 1, InChans: 3, EmbedDim: 8, Depth: 1, NumHeads: 2, MLPRatio: 4,
		DownRatio: 2, AdapterRatio: 0.25, AllFrames: 2, TubeletSize: 2, NumClasses: 3}
}

// int8Names are the tensors sample stores as int8.
var int8Names = []string{"head.weight", "blocks.0.clip_attn.in_proj_weight"}

// sample is a small valid file: the full state dict of tinyConfig, two of its weights int8, and special
// float values (infinity, a subnormal, negative zero) in head.bias.
func sample(t testing.TB) *File {
	t.Helper()
	cfg := tinyConfig()
	set := cast.InitWeights(cfg, 7)
	set["head.bias"] = weights.NewF32([]int{3}, []float32{float32(math.Inf(1)), 1e-40, float32(math.Copysign(0, -1))})
	q, err := cast.QuantizeInt8(set, func(name string) bool { return !slices.Contains(int8Names, name) })
	if err != nil {
		t.Fatal(err)
	}
	return &File{
		Meta: Metadata{
			Name: "tiny-test", Description: "a test model — with unicode",
			Config:      cfg,
			Labels:      map[string][]string{"logits": {"Pushing something from left to right", "b", "  spaced  "}},
			Protocol:    preprocess.SSv2,
			ClipSeconds: 2.5,
		},
		Weights: q,
	}
}

func encode(t testing.TB, f *File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	f := sample(t)
	data := encode(t, f)
	g, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	want := f.Meta
	want.Format, want.Quantization = Format, QuantInt8
	if !reflect.DeepEqual(g.Meta, want) {
		t.Fatalf("metadata:\n got %+v\nwant %+v", g.Meta, want)
	}
	if len(g.Weights) != len(f.Weights) {
		t.Fatalf("names %v, want %v", g.Weights.Names(), f.Weights.Names())
	}
	for name, wt := range f.Weights {
		gt := g.Weights[name]
		if gt == nil {
			t.Fatalf("missing %q", name)
		}
		if len(gt.Shape) != len(wt.Shape) || (len(wt.Shape) > 0 && !reflect.DeepEqual(gt.Shape, wt.Shape)) || gt.DType != wt.DType {
			t.Fatalf("%s: got %v %v, want %v %v", name, gt.DType, gt.Shape, wt.DType, wt.Shape)
		}
		if wt.DType == weights.I8 {
			if !reflect.DeepEqual(gt.I8, wt.I8) || !reflect.DeepEqual(gt.Scale, wt.Scale) {
				t.Fatalf("%s: int8 data or scales differ", name)
			}
			continue
		}
		for i := range wt.F32 {
			if math.Float32bits(gt.F32[i]) != math.Float32bits(wt.F32[i]) {
				t.Fatalf("%s[%d] = %v, want %v", name, i, gt.F32[i], wt.F32[i])
			}
		}
	}
	// Deterministic, and stable through a parse/write cycle.
	if !bytes.Equal(encode(t, f), data) {
		t.Fatal("two writes of the same file differ")
	}
	if !bytes.Equal(encode(t, g), data) {
		t.Fatal("re-writing a parsed file changes its bytes")
	}
}

// TestClipSecondsOptional: a file without castgo.clip_seconds (every file written before the key existed)
// parses with ClipSeconds 0, and writing ClipSeconds 0 leaves the key out.
func TestClipSecondsOptional(t *testing.T) {
	f := sample(t)
	f.Meta.ClipSeconds = 0
	data := encode(t, f)
	h, _ := split(t, data)
	if v, ok := h["__metadata__"].(map[string]any)[KeyClipSeconds]; ok {
		t.Fatalf("ClipSeconds 0 wrote %s = %v", KeyClipSeconds, v)
	}
	g, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if g.Meta.ClipSeconds != 0 {
		t.Fatalf("ClipSeconds = %v, want 0", g.Meta.ClipSeconds)
	}
	f.Meta.ClipSeconds = 2
	h, _ = split(t, encode(t, f))
	if v := h["__metadata__"].(map[string]any)[KeyClipSeconds]; v != "2" {
		t.Fatalf("%s = %v, want \"2\"", KeyClipSeconds, v)
	}
}

func TestLayout(t *testing.T) {
	data := encode(t, sample(t))
	n := binary.LittleEndian.Uint64(data)
	if n%8 != 0 {
		t.Fatalf("header length %d is not a multiple of 8", n)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	var md map[string]string
	if err := json.Unmarshal(header["__metadata__"], &md); err != nil {
		t.Fatal(err)
	}
	if md[KeyFormat] != Format || md[KeyQuantization] != QuantInt8 || md[KeyName] != "tiny-test" {
		t.Fatalf("metadata %v", md)
	}
	for name, raw := range header {
		if name == "__metadata__" {
			continue
		}
		var info struct {
			DType string `json:"dtype"`
			Shape []int  `json:"shape"`
			Off   [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &info); err != nil {
			t.Fatal(err)
		}
		if info.DType == "F32" && (8+int(n)+info.Off[0])%4 != 0 {
			t.Errorf("F32 tensor %s starts at unaligned file offset %d", name, 8+int(n)+info.Off[0])
		}
		switch name {
		case "head.weight":
			if info.DType != "I8" || !reflect.DeepEqual(info.Shape, []int{3, 8}) {
				t.Errorf("%s: %+v", name, info)
			}
		case "head.weight" + ScaleSuffix:
			if info.DType != "F32" || !reflect.DeepEqual(info.Shape, []int{3}) {
				t.Errorf("%s: %+v", name, info)
			}
		}
	}
	if _, ok := header["blocks.0.clip_attn.in_proj_weight"+ScaleSuffix]; !ok {
		t.Error("no scale tensor for blocks.0.clip_attn.in_proj_weight")
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.castgo")
	f := sample(t)
	if err := Save(path, f); err != nil {
		t.Fatal(err)
	}
	g, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Weights["blocks.0.norm1.weight"].F32, f.Weights["blocks.0.norm1.weight"].F32) {
		t.Fatal("values differ after Save/Load")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	// A failed write leaves neither the target nor a temporary file.
	bad := sample(t)
	bad.Meta.Labels = nil
	if err := Save(filepath.Join(dir, "bad.castgo"), bad); err == nil {
		t.Fatal("saved a file without labels")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("failed save left files: %v", entries)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("loaded a missing file")
	}
}

// repoLabels is a labels file of the repository's own labels/ directory (the lists package labels embeds).
func repoLabels(file string) string { return filepath.Join("..", "..", "labels", file) }

func TestEPICLabels(t *testing.T) {
	nouns, err := LabelsFromFile(repoLabels("epic100_nouns.txt"))
	if err != nil {
		t.Fatal(err)
	}
	verbs, err := LabelsFromFile(repoLabels("epic100_verbs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	cfg.NumClasses, cfg.Composition, cfg.NounClasses, cfg.VerbClasses = 0, true, 300, 97
	f := &File{Meta: Metadata{Config: cfg, Labels: map[string][]string{"noun": nouns, "verb": verbs}, Protocol: preprocess.SSv2},
		Weights: cast.InitWeights(cfg, 1)}
	g, err := Parse(encode(t, f))
	if err != nil {
		t.Fatal(err)
	}
	if !g.Meta.Config.Composition || len(g.Meta.Labels["noun"]) != 300 || len(g.Meta.Labels["verb"]) != 97 || g.Meta.Quantization != QuantNone {
		t.Fatalf("got %+v", g.Meta)
	}
}

func TestLabelsFromFile(t *testing.T) {
	for file, n := range map[string]int{"ssv2.txt": 174, "k400.txt": 400, "epic100_nouns.txt": 300, "epic100_verbs.txt": 97} {
		l, err := LabelsFromFile(repoLabels(file))
		if err != nil {
			t.Fatal(err)
		}
		if len(l) != n {
			t.Errorf("%s: %d labels, want %d", file, len(l), n)
		}
		for i, s := range l {
			if s == "" || strings.ContainsAny(s, "\r\n") {
				t.Errorf("%s: label %d = %q", file, i, s)
			}
		}
	}
	l, err := LabelsFromFile(repoLabels("ssv2.txt"))
	if err != nil || l[0] != "Approaching something with your camera" {
		t.Errorf("ssv2 label 0 = %q", l[0])
	}
	cases := []struct {
		text string
		want []string
		err  string
	}{
		{"a\nb c\n", []string{"a", "b c"}, ""},
		{"a\r\nb\r\n", []string{"a", "b"}, ""},
		{"\ufeffa\n b \n", []string{"a", " b "}, ""},
		{"single", []string{"single"}, ""},
		{"", nil, "no labels"},
		{"\n", nil, "no labels"},
		{"a\n\nb\n", nil, "line 2 is empty"},
		{"a\nb\n\n", nil, "line 3 is empty"},
	}
	for _, c := range cases {
		got, err := ParseLabels(c.text)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseLabels(%q): error %v, want %q", c.text, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseLabels(%q) = %q, %v; want %q", c.text, got, err, c.want)
		}
	}
}

// rebuild re-assembles a file from a (modified) header and the original data section.
func rebuild(header map[string]any, body []byte) []byte {
	h, _ := json.Marshal(header)
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	return append(append(out, h...), body...)
}

// split returns a file's header (generic JSON) and data section.
func split(t testing.TB, data []byte) (map[string]any, []byte) {
	n := binary.LittleEndian.Uint64(data)
	var h map[string]any
	if err := json.Unmarshal(data[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	return h, data[8+n:]
}

func TestParseErrors(t *testing.T) {
	good := encode(t, sample(t))
	// edit returns good with its header changed by fn (on a fresh copy).
	edit := func(fn func(h map[string]any, md map[string]any) []byte) []byte {
		h, body := split(t, good)
		md := h["__metadata__"].(map[string]any)
		if b := fn(h, md); b != nil {
			return b
		}
		return rebuild(h, body)
	}
	tensor := func(h map[string]any, name string) map[string]any { return h[name].(map[string]any) }
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"header past end", good[:200], "runs past the end"},
		{"truncated data", good[:len(good)-3], "invalid safetensors file"},
		{"trailing bytes", append(append([]byte{}, good...), 0), "invalid safetensors file"},
		{"bad json", append(binary.LittleEndian.AppendUint64(nil, 8), []byte("{not json")[:8]...), "invalid safetensors file"},
		{"no metadata", edit(func(h, md map[string]any) []byte { delete(h, "__metadata__"); return nil }), "no __metadata__"},
		{"no format", edit(func(h, md map[string]any) []byte { delete(md, KeyFormat); return nil }), "no castgo.format"},
		{"wrong format", edit(func(h, md map[string]any) []byte { md[KeyFormat] = "castgo/9"; return nil }), `"castgo/9"`},
		{"no config", edit(func(h, md map[string]any) []byte { delete(md, KeyConfig); return nil }), "no castgo.config"},
		{"config not json", edit(func(h, md map[string]any) []byte { md[KeyConfig] = "{"; return nil }), "castgo.config"},
		{"invalid config", edit(func(h, md map[string]any) []byte {
			md[KeyConfig] = strings.Replace(md[KeyConfig].(string), `"patch_size":1`, `"patch_size":2`, 1)
			return nil
		}), "14×14"},
		{"labels count", edit(func(h, md map[string]any) []byte { md[KeyLabels] = `{"logits":["a","b"]}`; return nil }), "has 2 labels but the config gives it 3"},
		{"labels head missing", edit(func(h, md map[string]any) []byte { md[KeyLabels] = `{"noun":["a","b","c"]}`; return nil }), `no labels for head "logits"`},
		{"labels extra head", edit(func(h, md map[string]any) []byte {
			md[KeyLabels] = `{"logits":["a","b","c"],"verb":["x"]}`
			return nil
		}), "[verb] are not outputs"},
		{"labels not json", edit(func(h, md map[string]any) []byte { md[KeyLabels] = `["a"]`; return nil }), "castgo.labels"},
		{"bad protocol", edit(func(h, md map[string]any) []byte {
			md[KeyProtocol] = `{"sampling":"random","clips":1,"crops":1}`
			return nil
		}), "sampling"},
		{"zero clips", edit(func(h, md map[string]any) []byte {
			md[KeyProtocol] = `{"sampling":"segment","clips":0,"crops":1}`
			return nil
		}), "clips"},
		{"clip seconds not a number", edit(func(h, md map[string]any) []byte { md[KeyClipSeconds] = "two"; return nil }), `castgo.clip_seconds: "two" is not a positive number`},
		{"clip seconds zero", edit(func(h, md map[string]any) []byte { md[KeyClipSeconds] = "0"; return nil }), `castgo.clip_seconds: "0"`},
		{"clip seconds negative", edit(func(h, md map[string]any) []byte { md[KeyClipSeconds] = "-2"; return nil }), "clip seconds -2"},
		{"clip seconds NaN", edit(func(h, md map[string]any) []byte { md[KeyClipSeconds] = "NaN"; return nil }), "clip seconds NaN"},
		{"clip seconds too long", edit(func(h, md map[string]any) []byte { md[KeyClipSeconds] = "1e9"; return nil }), "clip seconds 1e+09"},
		{"bad quantization", edit(func(h, md map[string]any) []byte { md[KeyQuantization] = "int4"; return nil }), "int4"},
		{"quantization none with int8", edit(func(h, md map[string]any) []byte { md[KeyQuantization] = QuantNone; return nil }), `head.weight is I8 but the quantization is "none"`},
		{"metadata not strings", edit(func(h, md map[string]any) []byte { md["x"] = 1; return nil }), "invalid safetensors file"},
		{"unknown dtype", edit(func(h, md map[string]any) []byte { tensor(h, "head.bias")["dtype"] = "F13"; return nil }), "F13"},
		{"unsupported dtype", edit(func(h, md map[string]any) []byte {
			tb := tensor(h, "head.bias")
			tb["dtype"], tb["shape"] = "I32", []any{3}
			return nil
		}), "only F32 and I8"},
		{"shape mismatch", edit(func(h, md map[string]any) []byte { tensor(h, "head.bias")["shape"] = []any{4}; return nil }), "invalid safetensors file"},
		{"offsets out of range", edit(func(h, md map[string]any) []byte {
			tensor(h, "head.bias")["data_offsets"] = []any{1 << 40, 1<<40 + 12}
			return nil
		}), "invalid"},
		{"overlapping offsets", edit(func(h, md map[string]any) []byte { tensor(h, "head.bias")["data_offsets"] = []any{0, 12}; return nil }), "invalid"},
		{"negative shape", edit(func(h, md map[string]any) []byte { tensor(h, "head.bias")["shape"] = []any{-3}; return nil }), "invalid"},
		{"int8 without scale", edit(func(h, md map[string]any) []byte {
			s := tensor(h, "head.weight"+ScaleSuffix)
			delete(h, "head.weight"+ScaleSuffix)
			h["head.weightx"+ScaleSuffix] = s
			return nil
		}), `int8 tensor "head.weight" has no scale tensor`},
		{"orphan scale", edit(func(h, md map[string]any) []byte {
			h["zzz"+ScaleSuffix] = h["head.bias"]
			delete(h, "head.bias")
			return nil
		}), "1 missing: head.bias; 1 unexpected: zzz.int8_scale"},
		{"scale wrong shape", edit(func(h, md map[string]any) []byte {
			tensor(h, "head.weight"+ScaleSuffix)["shape"] = []any{3, 1}
			return nil
		}), `scale tensor "head.weight.int8_scale" is F32[3 1], want F32[3]`},
		{"int8 reshaped", edit(func(h, md map[string]any) []byte {
			tensor(h, "head.weight")["shape"] = []any{24}
			return nil
		}), "head.weight is I8[24], want [3 8]"},
		{"int8 bias", edit(func(h, md map[string]any) []byte {
			b := tensor(h, "head.bias")
			off := b["data_offsets"].([]any)
			b["dtype"], b["shape"] = "I8", []any{off[1].(float64) - off[0].(float64)}
			return nil
		}), "head.bias is I8[12], want [3]"},
		{"unexpected tensor", edit(func(h, md map[string]any) []byte {
			h["clip_proj"] = h["head.bias"]
			delete(h, "head.bias")
			return nil
		}), "1 missing: head.bias; 1 unexpected: clip_proj"},
		{"config deeper than its tensors", edit(func(h, md map[string]any) []byte {
			md[KeyConfig] = strings.Replace(md[KeyConfig].(string), `"depth":1`, `"depth":3`, 1)
			return nil
		}), "missing: blocks.1."},
		{"config depth 2^30", edit(func(h, md map[string]any) []byte {
			md[KeyConfig] = strings.Replace(md[KeyConfig].(string), `"depth":1`, `"depth":1073741824`, 1)
			return nil
		}), "depth 1073741824 is out of range"},
		{"config wider than its tensors", edit(func(h, md map[string]any) []byte {
			md[KeyConfig] = strings.Replace(md[KeyConfig].(string), `"embed_dim":8`, `"embed_dim":4096`, 1)
			return nil
		}), "blocks.0.S_Adapter.D_fc1.weight is F32[2 8], want [1024 4096]"},
		{"config zero heads", edit(func(h, md map[string]any) []byte {
			md[KeyConfig] = strings.Replace(md[KeyConfig].(string), `"num_heads":2`, `"num_heads":0`, 1)
			return nil
		}), "num_heads (0) must be positive"},
		{"config more frames than its tensors", edit(func(h, md map[string]any) []byte {
			md[KeyConfig] = strings.Replace(md[KeyConfig].(string), `"all_frames":2`, `"all_frames":64`, 1)
			return nil
		}), "blocks.0.t2s_cross.clip_time_pos is F32[1 4], want [32 4]"},
		{"header length over the cap", func() []byte {
			b := binary.LittleEndian.AppendUint64(nil, MaxHeaderBytes+8)
			return append(b, make([]byte, MaxHeaderBytes+16)...)
		}(), "exceeds the 67108864-byte limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.data)
			if err == nil {
				t.Fatalf("no error; got %d tensors", len(f.Weights))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "modelfile: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	cases := []struct {
		name string
		mod  func(f *File)
		want string
	}{
		{"nil weights", func(f *File) { f.Weights = nil }, "no weights"},
		{"nil tensor", func(f *File) { f.Weights["x"] = nil }, `"x" is nil`},
		{"bad tensor", func(f *File) { f.Weights["x"] = weights.NewF32([]int{2}, []float32{1}) }, `tensor "x"`},
		{"scale clash", func(f *File) { f.Weights["head.weight"+ScaleSuffix] = weights.NewF32([]int{1}, []float32{1}) }, "clashes"},
		{"format", func(f *File) { f.Meta.Format = "other" }, "format"},
		{"config", func(f *File) { f.Meta.Config.NumClasses = 0 }, "num_classes"},
		{"labels", func(f *File) { f.Meta.Labels["logits"] = f.Meta.Labels["logits"][:1] }, "labels"},
		{"protocol", func(f *File) { f.Meta.Protocol = preprocess.Protocol{} }, "protocol"},
		{"quantization none with int8", func(f *File) { f.Meta.Quantization = QuantNone }, "are int8"},
		{"clip seconds negative", func(f *File) { f.Meta.ClipSeconds = -1 }, "clip seconds -1"},
		{"clip seconds infinite", func(f *File) { f.Meta.ClipSeconds = math.Inf(1) }, "clip seconds +Inf"},
		{"quantization int8 without int8", func(f *File) {
			f.Meta.Quantization = QuantInt8
			for _, name := range int8Names {
				f.Weights[name] = weights.NewF32(f.Weights[name].Shape, make([]float32, len(f.Weights[name].I8)))
			}
		}, "no tensor is int8"},
		{"metadata name", func(f *File) { f.Weights["__metadata__"] = weights.NewF32([]int{1}, []float32{1}) }, "__metadata__"},
		{"unexpected tensor", func(f *File) { f.Weights["extra"] = weights.NewF32([]int{1}, []float32{1}) }, "1 unexpected: extra"},
		{"missing tensor", func(f *File) { delete(f.Weights, "head.bias") }, "1 missing: head.bias"},
		{"wrong shape", func(f *File) { f.Weights["head.bias"] = weights.NewF32([]int{1}, []float32{1}) }, "head.bias is F32[1], want [3]"},
		{"config deeper than the weights", func(f *File) { f.Meta.Config.Depth = 2 }, "missing: blocks.1."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := sample(t)
			c.mod(f)
			var buf bytes.Buffer
			err := Write(&buf, f)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes written despite the error", buf.Len())
			}
		})
	}
	if err := Write(&failWriter{}, sample(t)); err == nil || !errors.Is(err, errDiskFull) {
		t.Errorf("writer error not propagated: %v", err)
	}
}

var errDiskFull = fmt.Errorf("disk full")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func FuzzParse(f *testing.F) {
	good := encode(f, sample(f))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:100])
	f.Add([]byte{})
	// Same-length edits of the config keep the header valid JSON of the same size: a config that no
	// longer matches the tensors.
	for _, edit := range [][2]string{{`\"depth\":1`, `\"depth\":9`}, {`\"num_heads\":2`, `\"num_heads\":0`},
		{`\"all_frames\":2`, `\"all_frames\":8`}, {`\"embed_dim\":8`, `\"embed_dim\":9`}} {
		if !bytes.Contains(good, []byte(edit[0])) {
			f.Fatalf("sample header lacks %s", edit[0])
		}
		f.Add(bytes.Replace(good, []byte(edit[0]), []byte(edit[1]), 1))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		if verr := file.Meta.Validate(); verr != nil {
			t.Fatalf("accepted invalid metadata: %v", verr)
		}
		// What Parse accepts is exactly the config's state dict, and can be written back.
		if verr := weights.Check(file.Weights, file.Meta.Config.Shapes()); verr != nil {
			t.Fatalf("accepted weights that do not match the config: %v", verr)
		}
		if werr := Write(io.Discard, file); werr != nil {
			t.Fatalf("accepted a file that cannot be written back: %v", werr)
		}
		for name, tensor := range file.Weights {
			if verr := tensor.Validate(); verr != nil {
				t.Fatalf("%s: accepted an invalid tensor: %v", name, verr)
			}
		}
	})
}

// FuzzParseHeader fuzzes the JSON header alone (metadata, config, labels, protocol, tensor entries) in
// front of the data section of the sample file: FuzzParse's inputs are dominated by tensor bytes, so its
// mutations rarely reach the config and layout checks.
func FuzzParseHeader(f *testing.F) {
	good := encode(f, sample(f))
	n := binary.LittleEndian.Uint64(good)
	header, body := good[8:8+n], good[8+n:]
	f.Add(bytes.Clone(header))
	for _, edit := range [][2]string{{`\"depth\":1`, `\"depth\":9`}, {`\"num_heads\":2`, `\"num_heads\":0`},
		{`\"all_frames\":2`, `\"all_frames\":8`}, {`\"embed_dim\":8`, `\"embed_dim\":9`}, {`"I8"`, `"F32"`}} {
		f.Add(bytes.Replace(header, []byte(edit[0]), []byte(edit[1]), 1))
	}
	f.Add([]byte(`{"__metadata__":{"castgo.format":"castgo/1"}}`))
	f.Fuzz(func(t *testing.T, h []byte) {
		data := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+len(h)+len(body)), uint64(len(h)))
		data = append(append(data, h...), body...)
		file, err := Parse(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "modelfile: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			return
		}
		if verr := file.Meta.Validate(); verr != nil {
			t.Fatalf("accepted invalid metadata: %v", verr)
		}
		if verr := weights.Check(file.Weights, file.Meta.Config.Shapes()); verr != nil {
			t.Fatalf("accepted weights that do not match the config: %v", verr)
		}
		if werr := Write(io.Discard, file); werr != nil {
			t.Fatalf("accepted a file that cannot be written back: %v", werr)
		}
	})
}
