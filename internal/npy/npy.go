// Package npy reads and writes NumPy .npy arrays (format versions 1, 2 and 3) and reads .npz archives
// (zip files of .npy members, stored or deflated).
//
// Arrays are held as raw little-endian bytes in C (row-major) order; Fortran-order and big-endian
// files are converted on read. Typed accessors return the values as Go slices.
package npy

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DType names an element type by its little-endian NumPy descr, e.g. "<f4".
type DType string

// Supported element types.
const (
	Float16 DType = "<f2"
	Float32 DType = "<f4"
	Float64 DType = "<f8"
	Uint8   DType = "|u1"
	Int8    DType = "|i1"
	Bool    DType = "|b1"
	Uint16  DType = "<u2"
	Int16   DType = "<i2"
	Uint32  DType = "<u4"
	Int32   DType = "<i4"
	Uint64  DType = "<u8"
	Int64   DType = "<i8"
)

// Size returns the size in bytes of one element, or 0 for an unknown type.
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Float16, Uint16, Int16:
		return 2
	case Float32, Uint32, Int32:
		return 4
	case Float64, Uint64, Int64:
		return 8
	}
	return 0
}

// Array is an n-dimensional array: Data holds Len()*DType.Size() little-endian bytes in C order.
type Array struct {
	DType DType
	Shape []int
	Data  []byte
}

// Len returns the number of elements (the product of Shape; 1 for a 0-d array), or -1 when a dimension is
// negative or the product overflows an int.
func (a *Array) Len() int {
	n, ok := checkedLen(a.Shape)
	if !ok {
		return -1
	}
	return n
}

// checkedLen is the product of shape, with ok false for a negative dimension or an overflowing product.
func checkedLen(shape []int) (n int, ok bool) {
	n = 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > math.MaxInt/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// Float32s returns the elements as float32. Float32 data is returned as is; float16, float64, bool and
// integer data are converted (float64 and 64-bit integers may lose precision).
func (a *Array) Float32s() ([]float32, error) {
	n := a.Len()
	if n < 0 || n > maxElements || len(a.Data) != n*a.DType.Size() {
		return nil, fmt.Errorf("npy: %s array of shape %v has %d data bytes", a.DType, a.Shape, len(a.Data))
	}
	out := make([]float32, n)
	le := binary.LittleEndian
	d := a.Data
	for i := range out {
		switch a.DType {
		case Float32:
			out[i] = math.Float32frombits(le.Uint32(d[4*i:]))
		case Float64:
			out[i] = float32(math.Float64frombits(le.Uint64(d[8*i:])))
		case Float16:
			out[i] = halfToFloat32(le.Uint16(d[2*i:]))
		case Uint8, Bool:
			out[i] = float32(d[i])
		case Int8:
			out[i] = float32(int8(d[i]))
		case Uint16:
			out[i] = float32(le.Uint16(d[2*i:]))
		case Int16:
			out[i] = float32(int16(le.Uint16(d[2*i:])))
		case Uint32:
			out[i] = float32(le.Uint32(d[4*i:]))
		case Int32:
			out[i] = float32(int32(le.Uint32(d[4*i:])))
		case Uint64:
			out[i] = float32(le.Uint64(d[8*i:]))
		case Int64:
			out[i] = float32(int64(le.Uint64(d[8*i:])))
		default:
			return nil, fmt.Errorf("npy: cannot convert %s to float32", a.DType)
		}
	}
	return out, nil
}

// Uint8s returns the elements of a uint8 or bool array (the data itself, not a copy).
func (a *Array) Uint8s() ([]byte, error) {
	if a.DType != Uint8 && a.DType != Bool {
		return nil, fmt.Errorf("npy: array is %s, not uint8", a.DType)
	}
	if len(a.Data) != a.Len() {
		return nil, fmt.Errorf("npy: uint8 array of shape %v has %d data bytes", a.Shape, len(a.Data))
	}
	return a.Data, nil
}

// Int64s returns the elements of an integer or bool array as int64 (uint64 values above MaxInt64 wrap).
func (a *Array) Int64s() ([]int64, error) {
	n := a.Len()
	if n < 0 || n > maxElements || len(a.Data) != n*a.DType.Size() {
		return nil, fmt.Errorf("npy: %s array of shape %v has %d data bytes", a.DType, a.Shape, len(a.Data))
	}
	out := make([]int64, n)
	le := binary.LittleEndian
	d := a.Data
	for i := range out {
		switch a.DType {
		case Uint8, Bool:
			out[i] = int64(d[i])
		case Int8:
			out[i] = int64(int8(d[i]))
		case Uint16:
			out[i] = int64(le.Uint16(d[2*i:]))
		case Int16:
			out[i] = int64(int16(le.Uint16(d[2*i:])))
		case Uint32:
			out[i] = int64(le.Uint32(d[4*i:]))
		case Int32:
			out[i] = int64(int32(le.Uint32(d[4*i:])))
		case Uint64, Int64:
			out[i] = int64(le.Uint64(d[8*i:]))
		default:
			return nil, fmt.Errorf("npy: array is %s, not an integer type", a.DType)
		}
	}
	return out, nil
}

// halfToFloat32 converts IEEE 754 binary16 bits to float32 (exact).
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf / nan
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		v := float32(man) / (1 << 24) // subnormal: man * 2^-24
		if sign != 0 {
			return -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

var magic = []byte("\x93NUMPY")

// maxElements bounds the element count accepted from a header (guards against absurd allocations).
const maxElements = 1 << 34

// Read reads one .npy array from r.
func Read(r io.Reader) (Array, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Array{}, fmt.Errorf("npy: reading magic: %w", err)
	}
	if !bytes.Equal(pre[:6], magic) {
		return Array{}, errors.New("npy: not a .npy file (bad magic)")
	}
	var hlen int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Array{}, fmt.Errorf("npy: reading header length: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Array{}, fmt.Errorf("npy: reading header length: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
		if hlen > 1<<24 {
			return Array{}, fmt.Errorf("npy: header length %d too large", hlen)
		}
	default:
		return Array{}, fmt.Errorf("npy: unsupported format version %d.%d", pre[6], pre[7])
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return Array{}, fmt.Errorf("npy: reading header: %w", err)
	}
	descr, fortran, shape, err := parseHeader(string(hdr))
	if err != nil {
		return Array{}, err
	}
	dt, swap, err := normaliseDescr(descr)
	if err != nil {
		return Array{}, err
	}
	a := Array{DType: dt, Shape: shape}
	n, ok := checkedLen(shape)
	if !ok || n > maxElements {
		return Array{}, fmt.Errorf("npy: shape %v has more than %d elements", shape, maxElements)
	}
	// The header's size is not trusted for the allocation: the data is read in chunks, so a short file
	// claiming a huge shape fails after allocating about as much as it holds.
	want := int64(n) * int64(dt.Size())
	var buf bytes.Buffer
	if want <= 1<<20 {
		buf.Grow(int(want))
	}
	got, err := io.Copy(&buf, io.LimitReader(r, want))
	if err != nil || got != want {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return Array{}, fmt.Errorf("npy: reading %d data bytes for %s%v: got %d: %w", want, descr, shape, got, err)
	}
	a.Data = buf.Bytes()
	if swap {
		swapBytes(a.Data, dt.Size())
	}
	if fortran && len(shape) > 1 {
		a.Data = fortranToC(a.Data, shape, dt.Size())
	}
	return a, nil
}

// ReadFile reads a .npy file.
func ReadFile(path string) (Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return Array{}, fmt.Errorf("npy: %w", err)
	}
	defer f.Close()
	a, err := Read(bufio.NewReader(f))
	if err != nil {
		return Array{}, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// ReadNPZ reads every array of a .npz archive. Keys are the member names without the ".npy" suffix,
// as numpy.load gives them.
func ReadNPZ(path string) (map[string]Array, error) {
	z, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("npy: opening npz %s: %w", path, err)
	}
	defer z.Close()
	out := make(map[string]Array, len(z.File))
	for _, f := range z.File {
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("npy: %s: member %s: %w", path, f.Name, err)
		}
		a, err := Read(bufio.NewReader(rc))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: member %s: %w", path, f.Name, err)
		}
		out[strings.TrimSuffix(f.Name, ".npy")] = a
	}
	return out, nil
}

// Write writes a as a .npy (version 1.0, or 2.0 if the header needs it) in C order.
func Write(w io.Writer, a Array) error {
	if a.DType.Size() == 0 {
		return fmt.Errorf("npy: unsupported dtype %q", a.DType)
	}
	for _, d := range a.Shape {
		if d < 0 {
			return fmt.Errorf("npy: negative dimension in shape %v", a.Shape)
		}
	}
	if n := a.Len(); n < 0 || n > maxElements {
		return fmt.Errorf("npy: shape %v has more than %d elements", a.Shape, maxElements)
	}
	if len(a.Data) != a.Len()*a.DType.Size() {
		return fmt.Errorf("npy: shape %v of %s needs %d bytes, have %d", a.Shape, a.DType, a.Len()*a.DType.Size(), len(a.Data))
	}
	dims := make([]string, len(a.Shape))
	for i, d := range a.Shape {
		dims[i] = strconv.Itoa(d)
	}
	shape := "(" + strings.Join(dims, ", ")
	if len(dims) == 1 {
		shape += ","
	}
	shape += ")"
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", a.DType, shape)
	// Pad with spaces and a final newline so magic+len+header is a multiple of 64.
	version, lenBytes := byte(1), 2
	if len(dict)+1+10 > 65535 {
		version, lenBytes = 2, 4
	}
	total := 6 + 2 + lenBytes + len(dict) + 1
	pad := (64 - total%64) % 64
	hdr := dict + strings.Repeat(" ", pad) + "\n"
	var buf bytes.Buffer
	buf.Write(magic)
	buf.WriteByte(version)
	buf.WriteByte(0)
	if lenBytes == 2 {
		_ = binary.Write(&buf, binary.LittleEndian, uint16(len(hdr)))
	} else {
		_ = binary.Write(&buf, binary.LittleEndian, uint32(len(hdr)))
	}
	buf.WriteString(hdr)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("npy: writing header: %w", err)
	}
	if _, err := w.Write(a.Data); err != nil {
		return fmt.Errorf("npy: writing data: %w", err)
	}
	return nil
}

// WriteFloat32 writes a float32 array of the given shape (C order) as .npy.
func WriteFloat32(w io.Writer, shape []int, data []float32) error {
	return Write(w, FromFloat32(shape, data))
}

// FromFloat32 builds a float32 Array from values in C order (the values are copied).
func FromFloat32(shape []int, data []float32) Array {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Array{DType: Float32, Shape: append([]int(nil), shape...), Data: b}
}

// WriteFile writes a to path as .npy, atomically: the array goes to a temporary file in the same directory
// that is renamed over path only once complete, so a failed write leaves no partial file behind.
func WriteFile(path string, a Array) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriter(tmp)
	if err := Write(bw, a); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("npy: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("npy: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("npy: closing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}

// parseHeader parses the Python dict literal of a .npy header.
func parseHeader(h string) (descr string, fortran bool, shape []int, err error) {
	h = strings.TrimSpace(h)
	if !strings.HasPrefix(h, "{") || !strings.HasSuffix(h, "}") {
		return "", false, nil, fmt.Errorf("npy: malformed header %q", h)
	}
	get := func(key string) (string, bool) {
		for _, q := range []string{"'", "\""} {
			i := strings.Index(h, q+key+q)
			if i < 0 {
				continue
			}
			rest := strings.TrimSpace(h[i+len(key)+2:])
			if !strings.HasPrefix(rest, ":") {
				return "", false
			}
			return strings.TrimSpace(rest[1:]), true
		}
		return "", false
	}
	v, ok := get("descr")
	if !ok || len(v) < 2 || (v[0] != '\'' && v[0] != '"') {
		return "", false, nil, fmt.Errorf("npy: header has no string 'descr': %q", h)
	}
	end := strings.IndexByte(v[1:], v[0])
	if end < 0 {
		return "", false, nil, fmt.Errorf("npy: malformed descr in header %q", h)
	}
	descr = v[1 : 1+end]
	v, ok = get("fortran_order")
	switch {
	case ok && strings.HasPrefix(v, "True"):
		fortran = true
	case ok && strings.HasPrefix(v, "False"):
	default:
		return "", false, nil, fmt.Errorf("npy: header has no boolean 'fortran_order': %q", h)
	}
	v, ok = get("shape")
	if !ok || !strings.HasPrefix(v, "(") {
		return "", false, nil, fmt.Errorf("npy: header has no tuple 'shape': %q", h)
	}
	end = strings.IndexByte(v, ')')
	if end < 0 {
		return "", false, nil, fmt.Errorf("npy: malformed shape in header %q", h)
	}
	shape = []int{}
	for _, p := range strings.Split(v[1:end], ",") {
		p = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(p), "L"))
		if p == "" {
			continue
		}
		d, err := strconv.Atoi(p)
		if err != nil || d < 0 {
			return "", false, nil, fmt.Errorf("npy: bad dimension %q in header %q", p, h)
		}
		shape = append(shape, d)
	}
	return descr, fortran, shape, nil
}

// normaliseDescr maps a numpy descr to a little-endian DType and reports whether bytes must be swapped.
func normaliseDescr(descr string) (DType, bool, error) {
	if len(descr) < 2 {
		return "", false, fmt.Errorf("npy: unsupported dtype %q", descr)
	}
	order, kind := descr[0], descr[1:]
	swap := false
	switch order {
	case '<', '|', '=':
	case '>':
		swap = true
	default:
		kind = descr
	}
	for _, dt := range []DType{Float16, Float32, Float64, Uint8, Int8, Bool, Uint16, Int16, Uint32, Int32, Uint64, Int64} {
		if string(dt[1:]) == kind {
			return dt, swap && dt.Size() > 1, nil
		}
	}
	return "", false, fmt.Errorf("npy: unsupported dtype %q", descr)
}

func swapBytes(b []byte, size int) {
	for i := 0; i+size <= len(b); i += size {
		for j, k := i, i+size-1; j < k; j, k = j+1, k-1 {
			b[j], b[k] = b[k], b[j]
		}
	}
}

// fortranToC reorders column-major element data to row-major.
func fortranToC(src []byte, shape []int, es int) []byte {
	n := len(src) / es
	dst := make([]byte, len(src))
	nd := len(shape)
	fstride := make([]int, nd) // Fortran strides in elements
	s := 1
	for i := 0; i < nd; i++ {
		fstride[i] = s
		s *= shape[i]
	}
	idx := make([]int, nd)
	for c := 0; c < n; c++ {
		off := 0
		for i := 0; i < nd; i++ {
			off += idx[i] * fstride[i]
		}
		copy(dst[c*es:(c+1)*es], src[off*es:(off+1)*es])
		for i := nd - 1; i >= 0; i-- { // increment the C-order multi-index
			idx[i]++
			if idx[i] < shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return dst
}
