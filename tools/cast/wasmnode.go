package main

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
)

// errWASMUnavailable wraps every reason the WASM module cannot run here (no Node, no module and no way to
// build one).
var errWASMUnavailable = errors.New("unavailable")

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

// wasmNodeRun runs a Node script against the WASM module: cast.wasm and wasm_exec.js from wasmDir (built from
// this source tree into tmp when wasmDir is ""), the model file at modelPath and the clips x (written as
// little-endian float32). The script gets the arguments
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
	dir := wasmDir
	if dir == "" {
		dir = filepath.Join(tmp, "dist")
		if err := compareBuildWASM(dir); err != nil {
			return nil, "", fmt.Errorf("%w: no --wasm DIR and building the module failed: %v", errWASMUnavailable, err)
		}
	}
	wasmPath, execPath := filepath.Join(dir, "cast.wasm"), filepath.Join(dir, "wasm_exec.js")
	for _, p := range []string{wasmPath, execPath} {
		if _, err := os.Stat(p); err != nil {
			return nil, "", fmt.Errorf("%w: --wasm %s: %v (run wasm/build.sh DIR)", errWASMUnavailable, dir, err)
		}
	}
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
		return nil, "", fmt.Errorf("node: %w\n%s", err, compareTail(msg.String(), 2000))
	}
	if out, err = os.ReadFile(outPath); err != nil {
		return nil, "", fmt.Errorf("node wrote no result: %w", err)
	}
	ver, _ := exec.Command(node, "--version").Output()
	return out, strings.TrimPrefix(strings.TrimSpace(string(ver)), "v"), nil
}
