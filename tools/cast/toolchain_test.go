package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestToolchainEnv checks that the Go toolchain is written in one place: toolchain.env names it, go.mod's
// go line agrees, and every build script sources toolchain.env instead of spelling the version itself.
func TestToolchainEnv(t *testing.T) {
	root := repoRoot(t)
	env, err := os.ReadFile(filepath.Join(root, "toolchain.env"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^export GOTOOLCHAIN=go(\S+)$`).FindSubmatch(env)
	if m == nil || !regexp.MustCompile(`(?m)^export GOEXPERIMENT=\$\{GOEXPERIMENT-simd\}$`).Match(env) {
		t.Fatalf("toolchain.env does not export GOTOOLCHAIN=goX.Y.Z and GOEXPERIMENT=${GOEXPERIMENT-simd}:\n%s", env)
	}
	version := string(m[1])
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^go ` + regexp.QuoteMeta(version) + `$`).Match(mod) {
		t.Errorf("go.mod's go line is not %s (toolchain.env's GOTOOLCHAIN)", version)
	}
	for _, script := range []string{"build.sh", ".ci/run", "wasm/build.sh", "site/build.sh", "worker/build.sh", "docs/speed.sh"} {
		data, err := os.ReadFile(filepath.Join(root, script))
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		if !strings.Contains(s, "toolchain.env") || strings.Contains(s, "GOTOOLCHAIN=go") {
			t.Errorf("%s must source toolchain.env and not set GOTOOLCHAIN itself", script)
		}
	}
}
