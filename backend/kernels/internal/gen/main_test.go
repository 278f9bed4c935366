package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The committed files in backend/kernels are what the template renders (go generate would change nothing).
func TestGeneratedFilesUpToDate(t *testing.T) {
	for _, tr := range tiers {
		want, err := render(tr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("..", "..", tr.File))
		if err != nil {
			t.Fatalf("%s: %v", tr.File, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what internal/gen renders: run go generate ./backend/kernels", tr.File)
		}
	}
}

// Each tier's file names its own lane count, types and helpers (a template slip that made two tiers alike
// would pass the comparison above after regenerating).
func TestRenderDiffers(t *testing.T) {
	seen := map[string]string{}
	for _, tr := range tiers {
		src, err := render(tr)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"archsimd." + tr.Vec, "func vexp" + tr.Suffix + "(", "//go:build " + tr.Build} {
			if !bytes.Contains(src, []byte(s)) {
				t.Errorf("%s lacks %q", tr.File, s)
			}
		}
		if other, ok := seen[string(src)]; ok {
			t.Errorf("%s renders the same as %s", tr.File, other)
		}
		seen[string(src)] = tr.File
	}
}
