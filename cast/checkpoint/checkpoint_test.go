package checkpoint

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/castvideo/castgo/internal/golden"
)

// expectedShapes reads a goldens state_dict_shapes.json ({"name": [[shape...], "float32"], …}).
func expectedShapes(t *testing.T, dir string) map[string][]int {
	t.Helper()
	b, err := os.ReadFile(golden.Path(t, "goldens", dir, "state_dict_shapes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string][]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]int, len(raw))
	for k, v := range raw {
		var shape []int
		if err := json.Unmarshal(v[0], &shape); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		out[k] = shape
	}
	return out
}

func TestGoldenCheckpoints(t *testing.T) {
	cases := []struct {
		dir, file string
		seed      int
		half      bool
		keys      int
	}{
		{"tiny", "model.pt", 1, false, 297},
		{"tiny", "model_fp16.pt", 1, true, 297},
		{"tiny_compo", "model.pt", 3, false, 291},
		{"tiny_compo", "model_fp16.pt", 3, true, 291},
		{"small", "model.pt", 4, false, 849},
	}
	for _, c := range cases {
		t.Run(c.dir+"/"+c.file, func(t *testing.T) {
			if c.dir == "small" && testing.Short() {
				t.Skip("58 MB checkpoint skipped in -short mode")
			}
			want := expectedShapes(t, c.dir)
			set, err := Load(golden.Path(t, "goldens", c.dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if err := weights.Check(set, want); err != nil {
				t.Fatal(err)
			}
			if len(set) != c.keys {
				t.Errorf("%d tensors, want %d", len(set), c.keys)
			}
			for name, tensor := range set {
				if err := tensor.Validate(); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				ref := hashinit.Tensor(c.seed, name, tensor.Shape)
				for i, got := range tensor.F32 {
					w := ref[i]
					if !c.half {
						if math.Float32bits(got) != math.Float32bits(w) {
							t.Fatalf("%s[%d] = %v, hash recipe gives %v", name, i, got, w)
						}
						continue
					}
					// float16 storage: the value must be w rounded to half precision (11 significant bits).
					tol := math.Max(math.Abs(float64(w))*math.Pow(2, -11), math.Pow(2, -25))
					if math.Abs(float64(got)-float64(w)) > tol || halfBitsLost(got) {
						t.Fatalf("%s[%d] = %v, not the float16 rounding of %v", name, i, got, w)
					}
				}
			}
		})
	}
}

// halfBitsLost reports whether a float32 value (in float16's normal range) has more significand bits than
// float16 can hold.
func halfBitsLost(v float32) bool {
	a := math.Abs(float64(v))
	if a < math.Pow(2, -14) {
		return false
	}
	return math.Float32bits(v)&0x1fff != 0
}

func TestSynthetic(t *testing.T) {
	set, err := Read(bytes.NewReader(syntheticCheckpoint(t)), int64(len(syntheticCheckpoint(t))))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		shape []int
		vals  []float32
	}{
		"w":      {[]int{2, 3}, []float32{0, 1, 2, 3, 4, 5}},
		"t":      {[]int{3, 2}, []float32{0, 3, 1, 4, 2, 5}}, // transposed view
		"off":    {[]int{3}, []float32{5, 6, 7}},             // storage offset
		"exp":    {[]int{2, 2}, []float32{6, 7, 6, 7}},       // stride-0 (expanded) view
		"h":      {[]int{4}, []float32{1, -2, 0.5, float32(math.Pow(2, -24))}},
		"scalar": {[]int{}, []float32{7}},
	}
	if len(set) != len(want) {
		t.Fatalf("got names %v, want %d tensors", set.Names(), len(want))
	}
	for name, w := range want {
		got, ok := set[name]
		if !ok {
			t.Fatalf("missing %q (have %v)", name, set.Names())
		}
		if !reflect.DeepEqual(got.Shape, w.shape) && !(len(got.Shape) == 0 && len(w.shape) == 0) {
			t.Errorf("%s: shape %v, want %v", name, got.Shape, w.shape)
		}
		if !reflect.DeepEqual(got.F32, w.vals) {
			t.Errorf("%s: values %v, want %v", name, got.F32, w.vals)
		}
	}
}

func TestBareStateDict(t *testing.T) {
	p := &pw{}
	p.op(0x80, 2).global("collections", "OrderedDict").op(')', 'R', '(')
	p.str("module.a").tensor("FloatStorage", "0", 2, 0, []int{2}, []int{1})
	p.op('u', '.')
	data := zipFile(t, "x/data.pkl", p.Bytes(), "x/data/0", f32bytes(3, 4))
	set, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := set["a"]; got == nil || !reflect.DeepEqual(got.F32, []float32{3, 4}) {
		t.Fatalf("got %v", set)
	}
}

func TestHalfToFloat32(t *testing.T) {
	cases := map[uint16]float32{
		0x0000: 0, 0x3c00: 1, 0xc000: -2, 0x3555: 0.333251953125, 0x7bff: 65504, 0x0400: float32(math.Pow(2, -14)),
		0x03ff: float32(1023 * math.Pow(2, -24)), 0x8001: -float32(math.Pow(2, -24)),
	}
	for h, want := range cases {
		if got := halfToFloat32(h); got != want {
			t.Errorf("half %#04x = %v, want %v", h, got, want)
		}
	}
	if v := halfToFloat32(0x7c00); !math.IsInf(float64(v), 1) {
		t.Errorf("0x7c00 = %v, want +Inf", v)
	}
	if v := halfToFloat32(0x7e00); !math.IsNaN(float64(v)) {
		t.Errorf("0x7e00 = %v, want NaN", v)
	}
	if v := halfToFloat32(0x8000); v != 0 || !math.Signbit(float64(v)) {
		t.Errorf("0x8000 = %v, want -0", v)
	}
}

// TestTruncatedGolden cuts a real checkpoint in half.
func TestTruncatedGolden(t *testing.T) {
	tiny, err := os.ReadFile(golden.Path(t, "goldens", "tiny", "model.pt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{len(tiny) / 2, len(tiny) - 100, 1000} {
		_, err := Read(bytes.NewReader(tiny[:n]), int64(n))
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("first %d bytes of tiny/model.pt: error %v does not say truncated", n, err)
		}
	}
}

// TestErrors needs no goldens: every case is a synthetic archive.
func TestErrors(t *testing.T) {
	good := syntheticCheckpoint(t)
	storage := f32bytes(0, 1, 2, 3, 4, 5, 6, 7)
	withTensor := func(size, stride []int, offset int) []byte {
		p := &pw{}
		p.op(0x80, 2, '}').str("module").op('}').str("x").tensor("FloatStorage", "0", 8, offset, size, stride).op('s', 's', '.')
		return p.Bytes()
	}
	topLevel := func(key string, value func(p *pw)) []byte {
		p := &pw{}
		p.op(0x80, 2, '}').str(key)
		value(p)
		return p.op('s', '.').Bytes()
	}
	cases := []struct {
		name string
		data []byte
		want string // substring of the error
	}{
		{"truncated synthetic", good[:len(good)-30], "truncated"},
		{"empty file", nil, "not a torch.save zip"},
		{"not a zip", []byte("this is a text file, not a checkpoint"), "not a torch.save zip"},
		{"legacy pickle", []byte("\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02"), "legacy"},
		{"zip without data.pkl", zipFile(t, "ckpt/data/0", storage, "ckpt/version", []byte("3")), "no data.pkl"},
		{"torchscript", zipFile(t, "m/data.pkl", []byte("\x80\x02N."), "m/constants.pkl", []byte("\x80\x02N.")), "TorchScript"},
		{"garbage pickle", zipFile(t, "ckpt/data.pkl", []byte("\xff\xfegarbage")), "unknown pickle opcode"},
		{"truncated pickle", zipFile(t, "ckpt/data.pkl", syntheticPickle()[:200]), "data.pkl"},
		{"huge length", zipFile(t, "ckpt/data.pkl", []byte("\x80\x02\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.")), "declares"},
		{"no state dict", zipFile(t, "ckpt/data.pkl", topLevel("epoch", func(p *pw) { p.int(1) })), "neither a 'model' nor a 'module'"},
		{"model is None", zipFile(t, "ckpt/data.pkl", topLevel("model", func(p *pw) { p.op('N') })), "not a state dict"},
		{"not a dict", zipFile(t, "ckpt/data.pkl", []byte("\x80\x02N.")), "not a dict"},
		{"non-tensor entry", zipFile(t, "ckpt/data.pkl", topLevel("module", func(p *pw) { p.op('}').str("a").int(1).op('s') })), `entry "a"`},
		{"missing storage", zipFile(t, "ckpt/data.pkl", withTensor([]int{8}, []int{1}, 0)), "storage record ckpt/data/0 is missing"},
		{"short storage", zipFile(t, "ckpt/data.pkl", withTensor([]int{8}, []int{1}, 0), "ckpt/data/0", storage[:16]), "needs 32"},
		{"view past storage", zipFile(t, "ckpt/data.pkl", withTensor([]int{3, 3}, []int{3, 1}, 0), "ckpt/data/0", storage), "reaches element 8"},
		{"offset past storage", zipFile(t, "ckpt/data.pkl", withTensor([]int{2}, []int{1}, 7), "ckpt/data/0", storage), "reaches element 8"},
		{"overlapping view", zipFile(t, "ckpt/data.pkl", withTensor([]int{4, 4}, []int{1, 1}, 0), "ckpt/data/0", storage), "overlapping or broadcast"},
		{"negative stride", zipFile(t, "ckpt/data.pkl", withTensor([]int{2}, []int{-1}, 4), "ckpt/data/0", storage), "negative"},
		{"rank mismatch", zipFile(t, "ckpt/data.pkl", withTensor([]int{2, 2}, []int{1}, 0), "ckpt/data/0", storage), "different ranks"},
		{"big endian", zipFile(t, "ckpt/data.pkl", syntheticPickle(), "ckpt/byteorder", []byte("big")), "little-endian"},
		{"unknown storage", zipFile(t, "ckpt/data.pkl", bytes.ReplaceAll(syntheticPickle(), []byte("HalfStorage"), []byte("QuuxStorage"))), "unsupported storage type torch.QuuxStorage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, err := Read(bytes.NewReader(c.data), int64(len(c.data)))
			if err == nil {
				t.Fatalf("no error; got %d tensors", len(set))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "checkpoint: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	if _, err := Load("/nonexistent/model.pt"); err == nil || !strings.Contains(err.Error(), "/nonexistent/model.pt") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func FuzzRead(f *testing.F) {
	good := syntheticCheckpoint(f)
	f.Add(good)
	for _, n := range []int{0, 10, 100, len(good) / 2, len(good) - 22, len(good) - 1} {
		f.Add(good[:n])
	}
	tiny, err := os.ReadFile(golden.Path(f, "goldens", "tiny", "model.pt"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tiny)
	f.Add(tiny[:len(tiny)-100])
	for _, c := range hostileCases(f) {
		f.Add(c.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Read(bytes.NewReader(data), int64(len(data)))
		if err == nil {
			for name, tensor := range set {
				if verr := tensor.Validate(); verr != nil {
					t.Fatalf("%s: accepted an invalid tensor: %v", name, verr)
				}
			}
		}
	})
}

// FuzzPickle fuzzes data.pkl inside an otherwise valid archive (FuzzRead's mutations rarely get past the
// zip CRC check), with the synthetic checkpoint's storages available.
func FuzzPickle(f *testing.F) {
	f.Add(syntheticPickle())
	f.Add(syntheticPickle()[:300])
	f.Add([]byte("\x80\x02}q\x00."))
	f.Fuzz(func(t *testing.T, pkl []byte) {
		data := zipFile(t,
			"ckpt/data.pkl", pkl,
			"ckpt/data/0", f32bytes(0, 1, 2, 3, 4, 5, 6, 7),
			"ckpt/data/1", u16bytes(0x3c00, 0xc000, 0x3800, 0x0001))
		set, err := Read(bytes.NewReader(data), int64(len(data)))
		if err == nil {
			for name, tensor := range set {
				if verr := tensor.Validate(); verr != nil {
					t.Fatalf("%s: accepted an invalid tensor: %v", name, verr)
				}
			}
		}
	})
}
