package checkpoint

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// long writes n as a LONG1 (8 bytes, two's complement), for element counts and dimensions beyond int32.
func (p *pw) long(n int64) *pw {
	p.op(0x8a, 8)
	binary.Write(&p.Buffer, binary.LittleEndian, n)
	return p
}

// longs writes a tuple of LONG1 values.
func (p *pw) longs(v []int64) *pw {
	p.op('(')
	for _, n := range v {
		p.long(n)
	}
	return p.op('t')
}

// hostileTensor is a one-entry state dict {"module": {"x": tensor}} whose storage element count, offset,
// size and stride are taken as given (LONG1, so any int64).
func hostileTensor(numel, offset int64, size, stride []int64) []byte {
	p := &pw{}
	p.op(0x80, 2, '}').str("module").op('}').str("x")
	p.global("torch._utils", "_rebuild_tensor_v2").op('(')
	p.op('(').str("storage").global("torch", "FloatStorage").str("0").str("cpu").long(numel).op('t', 'Q')
	p.long(offset).longs(size).longs(stride).op(0x89)
	p.global("collections", "OrderedDict").op(')', 'R')
	p.op('t', 'R')
	return p.op('s', 's', '.').Bytes()
}

// rawZip builds a zip archive whose records carry the given compressed bytes, method and declared
// uncompressed size as they are (a lying header is the point).
type rawRecord struct {
	name       string
	method     uint16
	data       []byte // as stored in the archive
	declared   uint64 // uncompressed size in the headers
	crc        uint32
	compressed bool
}

func rawZip(t testing.TB, recs ...rawRecord) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, r := range recs {
		w, err := zw.CreateRaw(&zip.FileHeader{Name: r.name, Method: r.method, CRC32: r.crc,
			CompressedSize64: uint64(len(r.data)), UncompressedSize64: r.declared})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(r.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflate(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	w, _ := flate.NewWriter(&out, flate.BestCompression)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

type hostileCase struct {
	name   string
	data   []byte
	want   string // substring of the error
	corpus bool   // also a seed file in testdata/fuzz/FuzzRead (small enough to keep in the repository)
}

// hostileCases are small archives that claim huge sizes; each must be refused quickly, in bounded memory,
// with an error naming the problem.
func hostileCases(t testing.TB) []hostileCase {
	four := f32bytes(1)
	manyViews := func() []byte {
		p := &pw{}
		p.op(0x80, 2, '}').str("module").op('}', '(')
		for i := range 100 {
			p.str(fmt.Sprint("x", i)).tensor("FloatStorage", "0", 8, 0, []int{8}, []int{1})
		}
		return p.op('u', 's', '.').Bytes()
	}()
	junk := bytes.Repeat([]byte{0x55}, 100<<10)
	zeros := make([]byte, 1000)
	return []hostileCase{
		// A storage claiming 2³¹−1 floats backed by 4 bytes: an 8 GiB tensor before the fix.
		{"storage larger than its record", zipFile(t, "ckpt/data.pkl", hostileTensor(1<<31-1, 0, []int64{1<<31 - 1}, []int64{1}), "ckpt/data/0", four),
			"storage record ckpt/data/0 has 4 bytes, but FloatStorage[2147483647] needs 8589934588", true},
		{"storage of 2^40 elements", zipFile(t, "ckpt/data.pkl", hostileTensor(1<<40, 0, []int64{1 << 40}, []int64{1}), "ckpt/data/0", four),
			"more than 2147483648 elements", true},
		{"storage count beyond the cap", zipFile(t, "ckpt/data.pkl", hostileTensor(1<<62, 0, []int64{1}, []int64{1}), "ckpt/data/0", four),
			"FloatStorage[4611686018427387904]", true},
		{"negative storage count", zipFile(t, "ckpt/data.pkl", hostileTensor(-5, 0, []int64{1}, []int64{1}), "ckpt/data/0", four),
			"element count -5 is not a non-negative int", true},
		{"negative dimension", zipFile(t, "ckpt/data.pkl", hostileTensor(1, 0, []int64{-1 << 40}, []int64{1}), "ckpt/data/0", four),
			"negative entries", true},
		{"overflowing dimensions", zipFile(t, "ckpt/data.pkl", hostileTensor(1, 0, []int64{1 << 21, 1 << 21, 1 << 21}, []int64{0, 0, 0}), "ckpt/data/0", four),
			"more than 2147483648 elements", true},
		{"overflowing stride", zipFile(t, "ckpt/data.pkl", hostileTensor(1, 0, []int64{2, 2}, []int64{1 << 62, 1}), "ckpt/data/0", four),
			"reaches past storage 0", true},
		{"offset past storage", zipFile(t, "ckpt/data.pkl", hostileTensor(1, 1<<62, []int64{1}, []int64{1}), "ckpt/data/0", four),
			"offset 4611686018427387904, size [1], stride [1]) reaches past storage 0 of 1 elements", true},
		{"negative offset", zipFile(t, "ckpt/data.pkl", hostileTensor(1, -1<<62, []int64{1}, []int64{1}), "ckpt/data/0", four),
			"negative storage offset", true},
		{"huge dimension beyond int64", zipFile(t, "ckpt/data.pkl", bytes.Replace(hostileTensor(1, 0, []int64{7}, []int64{1}), []byte("\x8a\x08\x07\x00\x00\x00\x00\x00\x00\x00"), []byte("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01"), 1), "ckpt/data/0", four),
			"too large", true},
		{"many views of one storage", zipFile(t, "ckpt/data.pkl", manyViews, "ckpt/data/0", f32bytes(0, 1, 2, 3, 4, 5, 6, 7)),
			"too many views of shared storages", true},
		{"deflate ratio beyond deflate's", rawZip(t, rawRecord{name: "ckpt/data.pkl", method: zip.Deflate, data: make([]byte, 400), declared: 1 << 30}),
			"declared size 1073741824 is impossible for 400 deflated bytes", true},
		{"deflated records beyond the inflation cap", rawZip(t, rawRecord{name: "ckpt/data.pkl", method: zip.Deflate, data: junk, declared: 100 << 20}),
			"refusing a likely zip bomb", false},
		{"deflated record longer than declared", rawZip(t, rawRecord{name: "ckpt/data.pkl", method: zip.Deflate, data: deflate(t, zeros), declared: 10, crc: crc32.ChecksumIEEE(zeros)}),
			"record is longer than its declared size", true},
		{"stored record declaring more than it holds", rawZip(t, rawRecord{name: "ckpt/data.pkl", method: zip.Store, data: []byte("\x80\x02N."), declared: 1 << 40}),
			"stored record declares 1099511627776 bytes but holds 4", true},
		{"record past the end of the file", patchSizes(rawZip(t, rawRecord{name: "ckpt/data.pkl", method: zip.Store, data: []byte("\x80\x02N."), declared: 4}), 1<<30, 1<<30),
			"record runs past the end of the file", true},
	}
}

// patchSizes rewrites the compressed and uncompressed sizes of the last central directory entry of an
// archive, so that the local data cannot hold what the directory promises.
func patchSizes(b []byte, compressed, uncompressed uint32) []byte {
	b = bytes.Clone(b)
	i := bytes.LastIndex(b, []byte("PK\x01\x02"))
	binary.LittleEndian.PutUint32(b[i+20:], compressed)
	binary.LittleEndian.PutUint32(b[i+24:], uncompressed)
	return b
}

func TestHostile(t *testing.T) {
	cases := hostileCases(t)
	// An absolute cap on one record, whatever the file and its compression: 5 GiB declared for 5.2 MB of
	// (never decompressed) deflate data.
	big := rawZip(t, rawRecord{name: "ckpt/data.pkl", method: zip.Deflate, data: make([]byte, 5200<<10), declared: 5 << 30})
	cases = append(cases, hostileCase{"record beyond the absolute cap", big, "exceeds the 4294967296-byte limit for one record", false})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			set, err := Read(bytes.NewReader(c.data), int64(len(c.data)))
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("accepted: %d tensors", len(set))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
			// A few MB whatever the claimed sizes (TotalAlloc counts every allocation, even freed ones).
			if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
				t.Fatalf("a %d-byte file made Read allocate %d bytes", len(c.data), d)
			}
		})
	}
}

// TestHostileCorpus keeps the small hostile archives as seed files of FuzzRead, so `go test` replays them
// and the fuzzer mutates from them. CHECKPOINT_UPDATE_CORPUS=1 (re)writes them.
func TestHostileCorpus(t *testing.T) {
	cases := hostileCases(t)
	update := os.Getenv("CHECKPOINT_UPDATE_CORPUS") == "1"
	for _, c := range cases {
		if !c.corpus {
			continue
		}
		name := "hostile_" + strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return '_'
		}, c.name)
		path := filepath.Join("testdata", "fuzz", "FuzzRead", name)
		want := "go test fuzz v1\n[]byte(" + strconv.Quote(string(c.data)) + ")\n"
		if update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("seed %s missing (run with CHECKPOINT_UPDATE_CORPUS=1): %v", name, err)
		}
		if string(got) != want {
			t.Errorf("seed %s differs from hostileCases (run with CHECKPOINT_UPDATE_CORPUS=1)", name)
		}
	}
}
