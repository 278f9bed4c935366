package infer

import (
	"strings"
	"testing"

	"github.com/castvideo/castgo/backend"
)

// TestCastgoNames checks that "castgo", its alias "go" and the default (no name, no $CAST_BACKEND) all open
// castgo's own backend, with its config, and that a bad config is an error naming the option.
func TestCastgoNames(t *testing.T) {
	t.Setenv(BackendEnv, "")
	for _, name := range []string{"", "castgo", "go", "castgo:threads=2", "go:threads=2"} {
		b, desc, err := NewBackend(name)
		if err != nil {
			t.Fatalf("NewBackend(%q): %v", name, err)
		}
		if _, ok := b.(*backend.Backend); !ok || b.Name() != backend.Name || !strings.Contains(desc, "castgo") {
			t.Errorf("NewBackend(%q) = %T %q (%s), want castgo's backend", name, b, b.Name(), desc)
		}
		if strings.HasSuffix(name, "threads=2") && !strings.Contains(desc, "2 threads") {
			t.Errorf("NewBackend(%q): %s, want 2 threads", name, desc)
		}
	}
	if _, _, err := NewBackend("castgo:bogus"); err == nil || !strings.Contains(err.Error(), `unknown option "bogus"`) {
		t.Errorf("NewBackend(castgo:bogus): %v", err)
	}
	if _, _, err := NewBackend("nosuch"); err == nil || !strings.Contains(err.Error(), "castgo[:config] (alias go)") {
		t.Errorf("NewBackend(nosuch): %v", err)
	}
}
