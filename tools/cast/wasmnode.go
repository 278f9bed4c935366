package main

// The WASM module under Node, shared by `cast compare` and `cast bench --backend wasm`: finding a built
// module (never building one), writing the runner script and its inputs, running Node and reading its result.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/castvideo/castgo/models"
)

// wasmDirEnv names the environment variable holding a directory with a built module (cast.wasm, wasm_exec.js).
const wasmDirEnv = "CASTGO_WASM_DIR"

// errWASMUnavailable wraps every reason the WASM module cannot run here (no Node, no built module).
var errWASMUnavailable = errors.New("unavailable")

// wasmModuleFiles are the files of a built module (wasm/build.sh): the module and its Go support script.
var wasmModuleFiles = []string{"cast.wasm", "wasm_exec.js"}

// hasWASMModule reports whether dir holds a built module.
func hasWASMModule(dir string) bool {
	for _, f := range wasmModuleFiles {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// findWASMDir finds a built module: in dir when it is given (--wasm), else in $CASTGO_WASM_DIR, beside the
// executable (its folder, or site/ there: dist/cast finds dist/site), or in dist/site of the castgo checkout
// above the working directory. It never builds one: when none is found the error (errWASMUnavailable) says
// where it looked and how to get one.
func findWASMDir(dir string) (string, error) {
	if dir != "" {
		if !hasWASMModule(dir) {
			return "", fmt.Errorf("%w: --wasm %s holds no cast.wasm and wasm_exec.js (build them with ./build.sh wasm, or wasm/build.sh %s)", errWASMUnavailable, dir, dir)
		}
		return dir, nil
	}
	if env := os.Getenv(wasmDirEnv); env != "" {
		if !hasWASMModule(env) {
			return "", fmt.Errorf("%w: $%s=%s holds no cast.wasm and wasm_exec.js (build them with wasm/build.sh %s)", errWASMUnavailable, wasmDirEnv, env, env)
		}
		return env, nil
	}
	var tried []string
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			tried = append(tried, filepath.Dir(exe), filepath.Join(filepath.Dir(exe), "site"))
		}
	}
	if root := checkoutRoot(); root != "" {
		tried = append(tried, filepath.Join(root, "dist", "site"))
	}
	for _, d := range tried {
		if hasWASMModule(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: no built module (cast.wasm, wasm_exec.js) in $%s, beside the executable or in dist/site of a checkout (looked in %s): run ./build.sh wasm in the castgo checkout, or pass --wasm DIR",
		errWASMUnavailable, wasmDirEnv, strings.Join(tried, ", "))
}

// checkoutRoot is the castgo checkout above the working directory (the folder whose go.mod declares the
// module), or "" when there is none.
func checkoutRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if mod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(mod), "module github.com/castvideo/castgo\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// wasmReady reports whether the WASM backend can run here (Node on PATH and a module found by
// findWASMDir(dir)), and why not.
func wasmReady(dir string) (bool, string) {
	if _, err := exec.LookPath("node"); err != nil {
		return false, "node not found on PATH"
	}
	if _, err := findWASMDir(dir); err != nil {
		return false, strings.TrimPrefix(err.Error(), errWASMUnavailable.Error()+": ")
	}
	return true, ""
}

// wasmNodePrologue starts a Node runner script for wasmNodeRun: it loads the module, the model (handle) and
// the clips (x), and names the arguments batch, runs (the COUNT) and out.
const wasmNodePrologue = `import { createRequire } from "node:module";
import fs from "node:fs";
const [wasm, wasmExec, model, clips, batch, runs, out] = process.argv.slice(2);
createRequire(import.meta.url)(wasmExec);
const go = new globalThis.Go();
const { instance } = await WebAssembly.instantiate(fs.readFileSync(wasm), go.importObject);
go.run(instance);
const castgo = await globalThis.castgoReady;
const { handle } = await castgo.loadModel(fs.readFileSync(model));
const buf = fs.readFileSync(clips);
const x = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
`

// wasmModelPath is a path Node can read the model spec from: the file itself, or the embedded default
// (default, default-int8) written into tmp.
func wasmModelPath(tmp, spec string) (string, error) {
	var b []byte
	switch spec {
	case models.DefaultName:
		b = models.DefaultBytes()
	case models.DefaultName + "-int8":
		b = models.DefaultInt8Bytes()
	default:
		return spec, nil
	}
	p := filepath.Join(tmp, spec+".safetensors")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return "", err
	}
	return p, nil
}

// wasmNodeRun runs a Node script against the WASM module found by findWASMDir(wasmDir), the model file at
// modelPath and the clips x (written as little-endian float32 into tmp). The script gets the arguments
//
//	cast.wasm wasm_exec.js MODEL CLIPS.f32 BATCH COUNT OUT.json
//
// and writes its result to OUT.json, whose bytes are returned with Node's version. Node's stderr goes to
// progress when it is not nil (else it is kept for the error message).
func wasmNodeRun(tmp, wasmDir, script, modelPath string, x []float32, batch, count int, progress io.Writer) (out []byte, nodeVersion string, err error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, "", fmt.Errorf("%w: node not found on PATH", errWASMUnavailable)
	}
	dir, err := findWASMDir(wasmDir)
	if err != nil {
		return nil, "", err
	}
	wasmPath, execPath := filepath.Join(dir, "cast.wasm"), filepath.Join(dir, "wasm_exec.js")
	raw := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	clips, scriptPath, outPath := filepath.Join(tmp, "clips.f32"), filepath.Join(tmp, "runner.mjs"), filepath.Join(tmp, "out.json")
	if err := os.WriteFile(clips, raw, 0o644); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(scriptPath, []byte(script), 0o644); err != nil {
		return nil, "", err
	}
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	cmd := exec.Command(node, scriptPath, abs(wasmPath), abs(execPath), abs(modelPath), clips, fmt.Sprint(batch), fmt.Sprint(count), outPath)
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if progress != nil {
		cmd.Stderr = progress
	}
	if err := cmd.Run(); err != nil {
		return nil, "", fmt.Errorf("node (module from %s): %w\n%s", dir, err, tail(msg.String(), 2000))
	}
	if out, err = os.ReadFile(outPath); err != nil {
		return nil, "", fmt.Errorf("node wrote no result: %w", err)
	}
	ver, _ := exec.Command(node, "--version").Output()
	return out, strings.TrimPrefix(strings.TrimSpace(string(ver)), "v"), nil
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
