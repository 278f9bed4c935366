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
	// Every shell script of the repository (and .ci/run) sources toolchain.env; no script or JavaScript test
	// spells the version.
	scripts, err := filepath.Glob(filepath.Join(root, "*", "*.sh"))
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob(filepath.Join(root, "*", "*", "*.sh"))
	scripts = append(append(scripts, more...), filepath.Join(root, "build.sh"), filepath.Join(root, ".ci", "run"))
	if len(scripts) < 8 {
		t.Fatalf("found only %d scripts: %v", len(scripts), scripts)
	}
	for _, script := range scripts {
		data, err := os.ReadFile(script)
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		usesGo := strings.Contains(s, "go ") || strings.Contains(s, "go\n") || strings.Contains(s, "build.sh")
		if strings.Contains(s, "GOTOOLCHAIN=go") || usesGo && !strings.Contains(s, "toolchain.env") && !strings.Contains(s, "build.sh") {
			t.Errorf("%s must source toolchain.env and not set GOTOOLCHAIN itself", script)
		}
	}
	tests, _ := filepath.Glob(filepath.Join(root, "*", "test", "*.mjs"))
	for _, f := range tests {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), `"go1.`) {
			t.Errorf("%s spells the Go version: read it from toolchain.env", f)
		}
	}
}
