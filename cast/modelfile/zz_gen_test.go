package modelfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestGenCorpus(t *testing.T) {
	good := encode(t, sample(t))
	h, body := split(t, good)
	delete(h, "blocks.0.x"+ScaleSuffix)
	entries := map[string][]byte{
		"valid":           good,
		"truncated":       good[:len(good)-5],
		"header_only":     good[:8],
		"missing_scale":   rebuild(h, body),
		"huge_header_len": []byte("\xff\xff\xff\xff\xff\xff\xff\x7f{}"),
	}
	dir := "testdata/fuzz/FuzzParse"
	os.MkdirAll(dir, 0o755)
	for name, b := range entries {
		os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))), 0o644)
	}
}
