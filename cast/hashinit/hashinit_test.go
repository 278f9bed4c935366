package hashinit

import (
	"math"
	"testing"

	goldens "github.com/castvideo/castgo/internal/golden"
	"github.com/castvideo/castgo/internal/npy"
)

// readNPYFloat32 reads a float32 .npy golden (through internal/golden, so a missing file fails the test)
// and returns its shape and data.
func readNPYFloat32(t *testing.T, elem ...string) ([]int, []float32) {
	t.Helper()
	a, err := npy.ReadFile(goldens.Path(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	if a.DType != npy.Float32 {
		t.Fatalf("%v: dtype %s, want float32", elem, a.DType)
	}
	v, err := a.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return a.Shape, v
}

func TestInputMatchesGoldens(t *testing.T) {
	for _, c := range []struct {
		dir  string
		seed int
	}{{"tiny", 101}, {"tiny_compo", 303}, {"small", 404}} {
		shape, want := readNPYFloat32(t, "goldens", c.dir, "input.npy")
		n := 1
		for _, d := range shape {
			n *= d
		}
		if n != len(want) {
			t.Fatalf("%s: shape %v but %d values", c.dir, shape, len(want))
		}
		got := Input(c.seed, n)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: input[%d] = %v, want %v", c.dir, i, got[i], want[i])
			}
		}
	}
}

func TestKeyFNV(t *testing.T) {
	// FNV-1a-64 of the empty-seed string "0:" computed independently: offset basis folded over '0', ':'.
	h := uint64(0xcbf29ce484222325)
	for _, b := range []byte("0:") {
		h = (h ^ uint64(b)) * 0x100000001b3
	}
	if got := Key(0, ""); got != h {
		t.Fatalf("Key(0, \"\") = %#x, want %#x", got, h)
	}
	if Key(1, "head.weight") == Key(2, "head.weight") || Key(1, "a") == Key(1, "b") {
		t.Fatal("keys of different streams collide")
	}
}

func TestUniformRange(t *testing.T) {
	for _, v := range Uniform(7, "x", 10000) {
		if v < -1 || v >= 1 {
			t.Fatalf("value %v outside [-1, 1)", v)
		}
		// Exact multiples of 2^-23.
		if s := float64(v) * (1 << 23); s != math.Trunc(s) {
			t.Fatalf("value %v is not a multiple of 2^-23", v)
		}
	}
}

func TestRule(t *testing.T) {
	cases := []struct {
		name          string
		shape         []int
		scale, offset float32
	}{
		{"head.bias", []int{10}, 0.1, 0},
		{"blocks.0.attn.q_bias", []int{64}, 0.1, 0},
		{"blocks.0.norm1.weight", []int{64}, 0.1, 1},
		{"head.weight", []int{10, 64}, float32(math.Sqrt(3.0 / 64)), 0},
		{"patch_embed.proj.weight", []int{64, 3, 2, 4, 4}, float32(math.Sqrt(3.0 / 96)), 0},
		{"blocks.0.clip_attn.in_proj_weight", []int{192, 64}, float32(math.Sqrt(3.0 / 64)), 0},
		{"clip_positional_embedding", []int{197, 64}, 0.5, 0},
		{"clip_class_embedding", []int{64}, 0.5, 0},
	}
	for _, c := range cases {
		s, o := Rule(c.name, c.shape)
		if s != c.scale || o != c.offset {
			t.Errorf("Rule(%q, %v) = (%v, %v), want (%v, %v)", c.name, c.shape, s, o, c.scale, c.offset)
		}
	}
}
