// Package checkpoint reads official CAST PyTorch checkpoints (torch.save zip archives, CAST.md §1.8) into a
// weights.Set of float32 tensors.
//
// A torch.save file is a zip archive holding <stem>/data.pkl (a pickle of the saved object, in which every
// tensor is a strided view of a storage) and one raw little-endian record <stem>/data/<key> per storage; the
// folder name is the file's stem, not always "archive". The loader follows the official laod_eval_weights:
// it takes the top-level "model" entry if present, else "module" (a bare state dict is accepted too), and
// strips the prefixes "backbone.", "encoder." and "module." from the names. Float32, float16, bfloat16 and
// float64 storages (and integer ones) are converted to float32. Classes the loader does not know (DeepSpeed
// loss scalers, argparse.Namespace, …) are tolerated anywhere outside the state dict, and only the storages
// the state dict uses are read.
//
// The pickle is decoded with github.com/nlpodyssey/gopickle's unpickler, driven here with our own class
// hook and persistent-load function (its pytorch.Load only takes a file name, aborts on unknown classes and
// allocates storages from sizes taken on trust). Malformed input gives an error that names the problem: the
// opcode stream is pre-scanned so no length in it can trigger a huge allocation, storage sizes are checked
// against their zip records before anything is allocated, and any panic inside the decoder is recovered
// into an error.
package checkpoint

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/castvideo/castgo/cast/weights"
	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// StripPrefixes are the name prefixes removed from state-dict keys, as the official loader does.
var StripPrefixes = []string{"backbone.", "encoder.", "module."}

// maxElements bounds the element count of one tensor (8 GiB of float32), so a corrupt shape cannot ask for
// an absurd allocation.
const maxElements = 1 << 31

// maxRecordBytes caps the size of any one zip record (4 GiB, far above any CAST storage), and
// maxInflation how far the deflated records of an archive may expand in total relative to the file: a
// small file cannot make the loader allocate gigabytes (torch.save itself stores records uncompressed).
const (
	maxRecordBytes = 4 << 30
	maxInflation   = 64
	minInflateCap  = 64 << 20 // deflated bytes always allowed, whatever the file size
)

// viewFactor bounds the elements of all the state dict's tensors by that many times the elements of the
// storages they view (tied weights view one storage twice).
const viewFactor = 4

// Load reads the checkpoint file at path. See Read.
func Load(path string) (weights.Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	set, err := Read(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// Read decodes a torch.save zip archive of size bytes read through r and returns its state dict with every
// tensor converted to float32 in C order. It never panics: a truncated, corrupt or unsupported file gives
// an error that says what is wrong.
func Read(r io.ReaderAt, size int64) (set weights.Set, err error) {
	defer func() {
		if p := recover(); p != nil {
			set, err = nil, fmt.Errorf("checkpoint: malformed file: decoder failed: %v", p)
		}
	}()
	set, err = read(r, size)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return set, nil
}

func read(r io.ReaderAt, size int64) (weights.Set, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		var head [2]byte
		if n, _ := r.ReadAt(head[:], 0); n == 2 && head[0] == 0x80 && head[1] <= 5 {
			return nil, fmt.Errorf("legacy (pre-zip, torch<1.6) serialization is not supported; re-save it with a current torch.save: %w", err)
		}
		return nil, fmt.Errorf("not a torch.save zip archive, or the file is truncated: %w", err)
	}
	files := make(map[string]*zip.File, len(zr.File))
	var pkls []string
	for _, f := range zr.File {
		files[f.Name] = f
		if f.Name == "data.pkl" || strings.HasSuffix(f.Name, "/data.pkl") {
			pkls = append(pkls, f.Name)
		}
		if path.Base(f.Name) == "constants.pkl" {
			return nil, fmt.Errorf("%s: this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint", f.Name)
		}
	}
	switch len(pkls) {
	case 0:
		return nil, fmt.Errorf("zip archive has no data.pkl: not a torch.save checkpoint")
	case 1:
	default:
		return nil, fmt.Errorf("zip archive has %d data.pkl records (%s): ambiguous", len(pkls), strings.Join(pkls, ", "))
	}
	prefix := strings.TrimSuffix(pkls[0], "data.pkl")
	inflate := max(maxInflation*size, minInflateCap) // bytes deflated records may still expand to
	if bo, ok := files[prefix+"byteorder"]; ok {
		b, err := readRecord(bo, r, size, 16, &inflate)
		if err != nil {
			return nil, err
		}
		if s := strings.TrimSpace(string(b)); s != "little" {
			return nil, fmt.Errorf("%s: storages are %q-endian; only little-endian checkpoints are supported", bo.Name, s)
		}
	}
	pkl, err := readRecord(files[pkls[0]], r, size, -1, &inflate)
	if err != nil {
		return nil, err
	}
	if err := scanPickle(pkl); err != nil {
		return nil, fmt.Errorf("%s: %w", pkls[0], err)
	}
	obj, err := unpickle(pkl)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkls[0], err)
	}
	entries, err := stateDict(obj)
	if err != nil {
		return nil, err
	}
	l := &loader{r: r, size: size, files: files, prefix: prefix, raw: map[string][]byte{}, inflate: &inflate}
	set := make(weights.Set, len(entries))
	for _, e := range entries {
		name := stripPrefixes(e.name)
		if _, dup := set[name]; dup {
			return nil, fmt.Errorf("state dict has %q twice after stripping prefixes %v", name, StripPrefixes)
		}
		t, err := l.tensor(e.tensor)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", e.name, err)
		}
		set[name] = t
	}
	return set, nil
}

// unpickle runs gopickle over data.pkl with the torch class hook; storages become unread references.
func unpickle(pkl []byte) (any, error) {
	u := pickle.NewUnpickler(bytes.NewReader(pkl))
	u.FindClass = findClass
	storages := map[string]*storageRef{}
	u.PersistentLoad = func(pid any) (any, error) {
		t, ok := pid.(*types.Tuple)
		if !ok || t.Len() < 5 {
			return nil, fmt.Errorf("persistent id %v is not a ('storage', type, key, location, numel) tuple", pid)
		}
		if kind, _ := t.Get(0).(string); kind != "storage" {
			return nil, fmt.Errorf("persistent id of kind %v is not supported (only 'storage')", t.Get(0))
		}
		typ, ok := t.Get(1).(*storageType)
		if !ok {
			if oc, isOpaque := t.Get(1).(*opaqueClass); isOpaque {
				return nil, fmt.Errorf("unsupported storage type %s.%s", oc.module, oc.name)
			}
			return nil, fmt.Errorf("storage type is %T, not a torch storage class", t.Get(1))
		}
		key, ok := t.Get(2).(string)
		if !ok {
			return nil, fmt.Errorf("storage key is %T, not a string", t.Get(2))
		}
		numel, ok := t.Get(4).(int)
		if !ok || numel < 0 {
			return nil, fmt.Errorf("storage %s: element count %v is not a non-negative int", key, t.Get(4))
		}
		if s, seen := storages[key]; seen {
			if s.typ != typ || s.numel != numel {
				return nil, fmt.Errorf("storage %s is referenced as both %s[%d] and %s[%d]", key, s.typ.name, s.numel, typ.name, numel)
			}
			return s, nil
		}
		s := &storageRef{typ: typ, key: key, numel: numel}
		storages[key] = s
		return s, nil
	}
	obj, err := u.Load()
	if err != nil {
		return nil, fmt.Errorf("unpickling: %w", err)
	}
	return obj, nil
}

type entry struct {
	name   string
	tensor *tensorRef
}

// stateDict picks the state dict out of the unpickled object like the official loader: obj["model"] if
// present, else obj["module"], else obj itself when it is a plain name → tensor mapping.
func stateDict(obj any) ([]entry, error) {
	items, ok := dictItems(obj)
	if !ok {
		return nil, fmt.Errorf("top-level object is %s, not a dict", describe(obj))
	}
	for _, key := range []string{"model", "module"} {
		for _, it := range items {
			if k, _ := it.Key.(string); k == key {
				sd, ok := dictItems(it.Value)
				if !ok {
					return nil, fmt.Errorf("checkpoint[%q] is %s, not a state dict", key, describe(it.Value))
				}
				entries, err := tensorEntries(sd)
				if err != nil {
					return nil, fmt.Errorf("checkpoint[%q]: %w", key, err)
				}
				return entries, nil
			}
		}
	}
	if entries, err := tensorEntries(items); err == nil && len(entries) > 0 {
		return entries, nil // a bare state dict
	}
	keys := make([]string, 0, len(items))
	for _, it := range items {
		keys = append(keys, fmt.Sprint(it.Key))
	}
	sort.Strings(keys)
	if len(keys) > 20 {
		keys = append(keys[:20], "…")
	}
	return nil, fmt.Errorf("no state dict: the checkpoint has neither a 'model' nor a 'module' entry and is not itself a name → tensor dict (top-level keys: %s)", strings.Join(keys, ", "))
}

func tensorEntries(items []types.DictEntry) ([]entry, error) {
	out := make([]entry, 0, len(items))
	for _, it := range items {
		name, ok := it.Key.(string)
		if !ok {
			return nil, fmt.Errorf("state-dict key %v is %T, not a string", it.Key, it.Key)
		}
		t, ok := it.Value.(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("state-dict entry %q is %s, not a tensor", name, describe(it.Value))
		}
		out = append(out, entry{name, t})
	}
	return out, nil
}

// dictItems returns the entries of a pickled dict or OrderedDict in order.
func dictItems(v any) ([]types.DictEntry, bool) {
	switch d := v.(type) {
	case *types.Dict:
		return *d, true
	case *types.OrderedDict:
		out := make([]types.DictEntry, 0, d.Len())
		for e := d.List.Front(); e != nil; e = e.Next() {
			oe := e.Value.(*types.OrderedDictEntry)
			out = append(out, types.DictEntry{Key: oe.Key, Value: oe.Value})
		}
		return out, true
	}
	return nil, false
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case *opaqueObject:
		return "a " + x.String()
	case *tensorRef:
		return "a tensor"
	}
	return fmt.Sprintf("a %T", v)
}

func stripPrefixes(name string) string {
	for changed := true; changed; {
		changed = false
		for _, p := range StripPrefixes {
			if strings.HasPrefix(name, p) {
				name, changed = name[len(p):], true
			}
		}
	}
	return name
}

// readRecord reads one zip record fully, checking its CRC, after checking that its declared size is
// plausible for the file (limit > 0 also caps it). A deflated record's declared size is charged to
// *inflate, the bytes the archive's deflated records may still expand to, before anything is allocated;
// the decompressor is never read past the declared size.
func readRecord(f *zip.File, r io.ReaderAt, size int64, limit int64, inflate *int64) ([]byte, error) {
	if err := plausible(f, size); err != nil {
		return nil, err
	}
	if limit > 0 && f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%s: %d bytes, expected at most %d", f.Name, f.UncompressedSize64, limit)
	}
	if f.UncompressedSize64 > maxRecordBytes {
		return nil, fmt.Errorf("%s: declared size %d bytes exceeds the %d-byte limit for one record", f.Name, f.UncompressedSize64, int64(maxRecordBytes))
	}
	if f.Method == zip.Deflate {
		if f.UncompressedSize64 > uint64(*inflate) {
			return nil, fmt.Errorf("%s: %d deflated bytes declare %d: the archive's compressed records would expand past %d bytes (%d× the %d-byte file): refusing a likely zip bomb",
				f.Name, f.CompressedSize64, f.UncompressedSize64, max(maxInflation*size, minInflateCap), maxInflation, size)
		}
		*inflate -= int64(f.UncompressedSize64)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	defer rc.Close()
	buf := make([]byte, f.UncompressedSize64)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("%s: reading %d bytes: %w", f.Name, len(buf), err)
	}
	// Reading to EOF makes archive/zip verify the CRC-32.
	var one [1]byte
	if n, err := rc.Read(one[:]); n != 0 || (err != nil && err != io.EOF) {
		if err == nil || errors.Is(err, zip.ErrFormat) {
			return nil, fmt.Errorf("%s: record is longer than its declared size of %d bytes (or corrupt)", f.Name, len(buf))
		}
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	return buf, nil
}

// plausible rejects records whose declared sizes cannot be right, before anything is allocated for them.
func plausible(f *zip.File, size int64) error {
	off, err := f.DataOffset()
	if err != nil {
		return fmt.Errorf("%s: bad local header: %w", f.Name, err)
	}
	if off < 0 || f.CompressedSize64 > uint64(size) || uint64(off)+f.CompressedSize64 > uint64(size) {
		return fmt.Errorf("%s: record runs past the end of the file (%d bytes at offset %d in a %d-byte file): truncated", f.Name, f.CompressedSize64, off, size)
	}
	switch f.Method {
	case zip.Store:
		if f.UncompressedSize64 != f.CompressedSize64 {
			return fmt.Errorf("%s: stored record declares %d bytes but holds %d", f.Name, f.UncompressedSize64, f.CompressedSize64)
		}
	case zip.Deflate:
		if f.UncompressedSize64 > 1032*f.CompressedSize64+1024 { // deflate cannot expand more than ~1032:1
			return fmt.Errorf("%s: declared size %d is impossible for %d deflated bytes", f.Name, f.UncompressedSize64, f.CompressedSize64)
		}
	default:
		return fmt.Errorf("%s: unsupported zip compression method %d", f.Name, f.Method)
	}
	return nil
}

// loader materialises tensors, reading each storage record at most once.
type loader struct {
	r      io.ReaderAt
	size   int64
	files  map[string]*zip.File
	prefix string
	raw    map[string][]byte

	inflate  *int64 // see readRecord
	stored   int    // elements of the storages read so far
	elements int    // elements of the tensors built so far
}

func (l *loader) storage(s *storageRef) ([]byte, error) {
	if b, ok := l.raw[s.key]; ok {
		return b, nil
	}
	name := l.prefix + "data/" + s.key
	f, ok := l.files[name]
	if !ok {
		return nil, fmt.Errorf("storage record %s is missing from the archive", name)
	}
	need := uint64(s.numel) * uint64(s.typ.size)
	if s.numel > maxElements || f.UncompressedSize64 < need {
		return nil, fmt.Errorf("storage record %s has %d bytes, but %s[%d] needs %d", name, f.UncompressedSize64, s.typ.name, s.numel, need)
	}
	b, err := readRecord(f, l.r, l.size, -1, l.inflate)
	if err != nil {
		return nil, err
	}
	l.raw[s.key] = b
	l.stored += s.numel
	return b, nil
}

// tensor converts a strided view into a dense float32 tensor in C order.
func (l *loader) tensor(t *tensorRef) (*weights.Tensor, error) {
	st := t.storage
	if len(t.size) != len(t.stride) {
		return nil, fmt.Errorf("size %v and stride %v have different ranks", t.size, t.stride)
	}
	if t.offset < 0 {
		return nil, fmt.Errorf("negative storage offset %d", t.offset)
	}
	numel := 1
	last := t.offset // highest storage index the view touches
	for i, d := range t.size {
		if d < 0 || t.stride[i] < 0 {
			return nil, fmt.Errorf("size %v / stride %v: negative entries are not supported", t.size, t.stride)
		}
		if d == 0 {
			numel = 0
			continue
		}
		if numel > maxElements/d {
			return nil, fmt.Errorf("size %v has more than %d elements", t.size, maxElements)
		}
		numel *= d
		if t.stride[i] > 0 && (d-1) > (maxElements-last)/t.stride[i] {
			return nil, fmt.Errorf("view (offset %d, size %v, stride %v) reaches past storage %s of %d elements", t.offset, t.size, t.stride, st.key, st.numel)
		}
		last += (d - 1) * t.stride[i]
	}
	if numel > 0 && last >= st.numel {
		return nil, fmt.Errorf("view (offset %d, size %v, stride %v) reaches element %d of storage %s, which has %d", t.offset, t.size, t.stride, last, st.key, st.numel)
	}
	if numel > st.numel {
		// Only overlapping or broadcast (stride-0) views can do this; bounding them by the storage also
		// bounds the allocation by the file size.
		return nil, fmt.Errorf("view (size %v, stride %v) has %d elements but storage %s only %d: overlapping or broadcast views are not supported", t.size, t.stride, numel, st.key, st.numel)
	}
	if numel == 0 {
		return weights.NewF32(t.size, []float32{}), nil
	}
	// The storage record is checked (and read) before the tensor is allocated: its size, not the element
	// count the pickle claims, bounds the allocation.
	raw, err := l.storage(st)
	if err != nil {
		return nil, err
	}
	// Several tensors may view one storage (tied weights), but a pickle that points thousands of entries at
	// one large storage must not multiply it: all tensors together may hold at most viewFactor times the
	// elements of the storages they view.
	if l.elements+numel > viewFactor*l.stored {
		return nil, fmt.Errorf("view (size %v) of storage %s would bring the state dict to %d elements, more than %d× the %d elements of its storages: too many views of shared storages",
			t.size, st.key, l.elements+numel, viewFactor, l.stored)
	}
	l.elements += numel
	out := make([]float32, numel)
	es := st.typ.size
	dec := st.typ.decode
	if contiguous(t.size, t.stride) {
		b := raw[t.offset*es:]
		for i := range out {
			out[i] = dec(b[i*es:])
		}
	} else {
		gather(out, raw, t, es, dec)
	}
	return weights.NewF32(t.size, out), nil
}

// contiguous reports whether the strides are the C-order strides of size (dimensions of extent 1 may have
// any stride).
func contiguous(size, stride []int) bool {
	want := 1
	for i := len(size) - 1; i >= 0; i-- {
		if size[i] != 1 && stride[i] != want {
			return false
		}
		want *= size[i]
	}
	return true
}

// gather copies a strided view element by element, walking the index in C order.
func gather(out []float32, raw []byte, t *tensorRef, es int, dec func([]byte) float32) {
	idx := make([]int, len(t.size))
	pos := t.offset
	for i := range out {
		out[i] = dec(raw[pos*es:])
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			pos += t.stride[d]
			if idx[d] < t.size[d] {
				break
			}
			pos -= idx[d] * t.stride[d]
			idx[d] = 0
		}
	}
}
