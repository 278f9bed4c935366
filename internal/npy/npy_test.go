package npy

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/castvideo/castgo/internal/golden"
)

// sharedDir is the shared golden directory; golden.Path fails the test when it is missing.
func sharedDir(t *testing.T) string { return golden.Path(t) }

// rawNPY builds a .npy file by hand.
func rawNPY(version byte, header string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x93NUMPY")
	b.WriteByte(version)
	b.WriteByte(0)
	if version == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(header)))
	}
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func TestRoundTripFloat32(t *testing.T) {
	for _, shape := range [][]int{{}, {0}, {5}, {2, 3}, {1, 3, 2, 2, 2}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(i)*0.25 - 1
		}
		vals = append(vals[:0:0], vals...)
		var buf bytes.Buffer
		if err := WriteFloat32(&buf, shape, vals); err != nil {
			t.Fatal(err)
		}
		hdrLen := int(binary.LittleEndian.Uint16(buf.Bytes()[8:]))
		if (10+hdrLen)%64 != 0 {
			t.Errorf("shape %v: header not 64-byte aligned (%d)", shape, 10+hdrLen)
		}
		a, err := Read(&buf)
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		if a.DType != Float32 || !reflect.DeepEqual(a.Shape, shape) {
			t.Fatalf("shape %v: got %s %v", shape, a.DType, a.Shape)
		}
		got, err := a.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, vals) {
			t.Fatalf("shape %v: values differ", shape)
		}
	}
}

func TestWriteHeaderText(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFloat32(&buf, []int{3}, []float32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }") {
		t.Fatalf("unexpected header %q", buf.String()[:64])
	}
	if err := WriteFloat32(&buf, []int{2, 2}, []float32{1}); err == nil {
		t.Fatal("shape/data mismatch accepted")
	}
}

func TestReadVariants(t *testing.T) {
	le := func(vs ...uint32) []byte {
		b := make([]byte, 4*len(vs))
		for i, v := range vs {
			binary.LittleEndian.PutUint32(b[4*i:], v)
		}
		return b
	}
	be := func(vs ...uint32) []byte {
		b := make([]byte, 4*len(vs))
		for i, v := range vs {
			binary.BigEndian.PutUint32(b[4*i:], v)
		}
		return b
	}
	tests := []struct {
		name  string
		file  []byte
		shape []int
		ints  []int64
	}{
		{"v1 C order", rawNPY(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }\n", le(0, 1, 2, 3, 4, 5)), []int{2, 3}, []int64{0, 1, 2, 3, 4, 5}},
		// Fortran order stores column by column: [[0,1,2],[3,4,5]] is 0,3,1,4,2,5.
		{"v2 fortran", rawNPY(2, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }\n", le(0, 3, 1, 4, 2, 5)), []int{2, 3}, []int64{0, 1, 2, 3, 4, 5}},
		{"v3 big endian", rawNPY(3, "{\"descr\": \">i4\", \"fortran_order\": False, \"shape\": (3,)}\n", be(7, 8, 9)), []int{3}, []int64{7, 8, 9}},
		{"3-d fortran", rawNPY(1, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 2, 2), }\n",
			// C element (i,j,k)=4i+2j+k stored at Fortran offset i+2j+4k.
			le(0, 4, 2, 6, 1, 5, 3, 7)), []int{2, 2, 2}, []int64{0, 1, 2, 3, 4, 5, 6, 7}},
		{"uint8 scalar", rawNPY(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (), }\n", []byte{42}), []int{}, []int64{42}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Read(bytes.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a.Shape, tc.shape) {
				t.Fatalf("shape %v, want %v", a.Shape, tc.shape)
			}
			got, err := a.Int64s()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.ints) {
				t.Fatalf("values %v, want %v", got, tc.ints)
			}
		})
	}
}

func TestFloat16(t *testing.T) {
	// 1.0, -2.0, 65504 (max), smallest subnormal 2^-24, +Inf.
	data := []byte{0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x7c}
	a, err := Read(bytes.NewReader(rawNPY(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (5,), }\n", data)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, -2, 65504, float32(math.Ldexp(1, -24)), float32(math.Inf(1))}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name, want string
		file       []byte
	}{
		{"empty", "reading magic", nil},
		{"bad magic", "bad magic", []byte("PK\x03\x04xxxxxxxxxx")},
		{"bad version", "unsupported format version", []byte("\x93NUMPY\x09\x00\x00\x00")},
		{"truncated data", "reading 24 data bytes", rawNPY(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", make([]byte, 10))},
		{"bad dtype", "unsupported dtype", rawNPY(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }\n", make([]byte, 8))},
		{"object dtype", "unsupported dtype", rawNPY(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n", make([]byte, 8))},
		{"no shape", "shape", rawNPY(1, "{'descr': '<f4', 'fortran_order': False}\n", nil)},
		{"bad dim", "bad dimension", rawNPY(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n", nil)},
		{"garbage header", "malformed header", rawNPY(1, "hello\n", nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.npy")); err == nil {
		t.Fatal("missing file accepted")
	}
	a := Array{DType: Float32, Shape: []int{2}, Data: []byte{1}}
	if _, err := a.Float32s(); err == nil {
		t.Fatal("short data accepted")
	}
	if _, err := a.Uint8s(); err == nil {
		t.Fatal("float32 returned as uint8")
	}
}

func TestFileRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.npy")
	want := FromFloat32([]int{2, 2}, []float32{1, 2, 3, float32(math.NaN())})
	if err := WriteFile(p, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
		t.Fatal("file round trip differs")
	}
	// A failed write leaves neither the target nor a temporary file, and keeps an existing file intact.
	dir := filepath.Dir(p)
	if err := WriteFile(filepath.Join(dir, "bad.npy"), Array{DType: Float32, Shape: []int{3}, Data: []byte{1}}); err == nil {
		t.Fatal("wrote an inconsistent array")
	}
	if err := WriteFile(p, Array{DType: Float32, Shape: []int{3}, Data: []byte{1}}); err == nil {
		t.Fatal("wrote an inconsistent array")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("failed writes left files: %v", entries)
	}
	if again, err := ReadFile(p); err != nil || !bytes.Equal(again.Data, want.Data) {
		t.Fatalf("a failed write damaged the existing file: %v", err)
	}
}

func TestGoldenNPY(t *testing.T) {
	sh := sharedDir(t)
	a, err := ReadFile(filepath.Join(sh, "goldens/preprocess/resize/v3_tiny_64x48_10fps_9f_frame0_resized_u8.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if a.DType != Uint8 || !reflect.DeepEqual(a.Shape, []int{224, 298, 3}) {
		t.Fatalf("got %s %v", a.DType, a.Shape)
	}
	if _, err := a.Uint8s(); err != nil {
		t.Fatal(err)
	}
	in, err := ReadFile(filepath.Join(sh, "goldens/tiny/input.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if in.DType != Float32 || len(in.Shape) != 5 || in.Shape[1] != 3 {
		t.Fatalf("tiny input: %s %v, want float32 [B,3,T,H,W]", in.DType, in.Shape)
	}
	// Writing what was read reproduces the data bytes.
	var buf bytes.Buffer
	if err := Write(&buf, in); err != nil {
		t.Fatal(err)
	}
	back, err := Read(&buf)
	if err != nil || !bytes.Equal(back.Data, in.Data) {
		t.Fatalf("golden round trip: %v", err)
	}
}

func TestGoldenNPZ(t *testing.T) {
	sh := sharedDir(t)
	m, err := ReadNPZ(filepath.Join(sh, "goldens/tiny/intermediates.npz"))
	if err != nil {
		t.Fatal(err)
	}
	pos, ok := m["vmae_sinusoid_pos_embed[1,T'N,D]"]
	if !ok {
		t.Fatalf("member missing; have %d members", len(m))
	}
	if !reflect.DeepEqual(pos.Shape, []int{1, 392, 64}) {
		t.Fatalf("shape %v", pos.Shape)
	}
	vals, err := pos.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	// pos[p, j] = sin(p / 10000^(2*(j//2)/D)) for even j, cos for odd j; computed in float64, cast.
	for _, pj := range [][2]int{{0, 0}, {0, 1}, {5, 2}, {391, 63}, {100, 31}} {
		p, j := pj[0], pj[1]
		ang := float64(p) / math.Pow(10000, float64(2*(j/2))/64)
		want := math.Sin(ang)
		if j%2 == 1 {
			want = math.Cos(ang)
		}
		if got := vals[p*64+j]; math.Abs(float64(got)-want) > 1e-6 {
			t.Errorf("pos[%d,%d] = %v, want %v", p, j, got, want)
		}
	}
	if _, err := ReadNPZ(filepath.Join(sh, "goldens/tiny/input.npy")); err == nil {
		t.Fatal("a .npy accepted as .npz")
	}
}

// TestGoldenFortranNPZ reads a Fortran-order member of a real archive (the small model's goldens);
// the reordering itself is checked exactly in TestReadVariants.
func TestGoldenFortranNPZ(t *testing.T) {
	sh := sharedDir(t)
	m, err := ReadNPZ(filepath.Join(sh, "goldens/small/intermediates.npz"))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := m["temporal_embed_after_pos[B,T'N,D]"]
	if !ok {
		t.Fatal("member temporal_embed_after_pos missing")
	}
	if !reflect.DeepEqual(a.Shape, []int{1, 1568, 192}) {
		t.Fatalf("shape %v", a.Shape)
	}
	if _, err := a.Float32s(); err != nil {
		t.Fatal(err)
	}
}

// TestHostileHeaders: a tiny file whose header claims a huge or overflowing shape is refused with an error
// naming the problem, without allocating for the claimed size.
func TestHostileHeaders(t *testing.T) {
	tests := []struct {
		name, want string
		file       []byte
	}{
		{"huge shape", "reading 68719476736 data bytes", rawNPY(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4), }\n", make([]byte, 100))},
		{"over the element cap", "more than", rawNPY(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (17179869185,), }\n", nil)},
		{"overflowing product", "more than", rawNPY(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }\n", nil)},
		{"wrapping product", "more than", rawNPY(1, "{'descr': '<u1', 'fortran_order': False, 'shape': (2305843009213693952, 8), }\n", nil)},
		{"huge fortran", "reading", rawNPY(2, "{'descr': '<f4', 'fortran_order': True, 'shape': (65536, 65536), }\n", make([]byte, 64))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Read(bytes.NewReader(tc.file))
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
				t.Fatalf("a %d-byte file allocated %d bytes", len(tc.file), d)
			}
		})
	}
	a := Array{DType: Float64, Shape: []int{1<<61 + 1}, Data: make([]byte, 8)}
	if _, err := a.Float32s(); err == nil {
		t.Fatal("wrapping shape accepted by Float32s")
	}
	if _, err := a.Int64s(); err == nil {
		t.Fatal("wrapping shape accepted by Int64s")
	}
	if err := Write(io.Discard, a); err == nil {
		t.Fatal("wrapping shape accepted by Write")
	}
}

// FuzzRead: Read never panics, and an accepted array is self-consistent and survives a round trip.
func FuzzRead(f *testing.F) {
	f.Add(rawNPY(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", make([]byte, 24)))
	f.Add(rawNPY(1, "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }\n", make([]byte, 12)))
	f.Add(rawNPY(2, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }\n", []byte{1}))
	f.Add(rawNPY(3, "{\"descr\": \"<f2\", \"fortran_order\": False, \"shape\": (3,), }\n", make([]byte, 6)))
	f.Add(rawNPY(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4), }\n", make([]byte, 100)))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		if n := a.Len(); n < 0 || len(a.Data) != n*a.DType.Size() {
			t.Fatalf("accepted %s%v with %d data bytes", a.DType, a.Shape, len(a.Data))
		}
		if len(a.Data) > len(data) {
			t.Fatalf("%d data bytes from a %d-byte file", len(a.Data), len(data))
		}
		var buf bytes.Buffer
		if err := Write(&buf, a); err != nil {
			t.Fatalf("accepted array does not write back: %v", err)
		}
		b, err := Read(&buf)
		if err != nil || !bytes.Equal(b.Data, a.Data) || !reflect.DeepEqual(b.Shape, a.Shape) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
