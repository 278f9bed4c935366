// Package golden locates the shared golden vectors (../shared beside the checkout, or $CAST_SHARED) for
// tests. A missing directory fails the test: CI must never silently skip parity checks.
package golden

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/castvideo/castgo/cast"
)

// SharedDir returns the shared directory (holding goldens/, labels/, reference/), or "" when not found.
func SharedDir() string {
	if d := os.Getenv("CAST_SHARED"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			shared := filepath.Join(dir, "..", "shared")
			if _, err := os.Stat(filepath.Join(shared, "goldens")); err == nil {
				return shared
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Path joins elem under the shared directory, failing t when the shared directory or the file is missing.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	dir := SharedDir()
	if dir == "" {
		t.Fatalf("golden vectors not found: expected ../shared/goldens beside the checkout (or set CAST_SHARED)")
	}
	p := filepath.Join(append([]string{dir}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("golden file missing: %v", err)
	}
	return p
}

// Config reads and parses goldens/NAME/config.json, failing t when it is missing or invalid.
func Config(t testing.TB, name string) cast.Config {
	t.Helper()
	data, err := os.ReadFile(Path(t, "goldens", name, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cast.ParseConfig(data)
	if err != nil {
		t.Fatalf("goldens/%s/config.json: %v", name, err)
	}
	return cfg
}
