//go:build js && wasm

// Command wasm is the CAST WebAssembly module (GOOS=js GOARCH=wasm). When it starts it installs a small
// JavaScript API on globalThis.castgo that loads castgo model files, plans the views of a video and
// classifies decoded RGBA frames (what a canvas's ImageData gives) with the same preprocessing and model
// code as the native CLI (package classify). It runs on a browser's main thread, in a Web Worker and in
// Node. No weights are embedded: the page fetches a model file and hands its bytes to castgo.loadModel.
//
// Readiness: globalThis.castgo exists as soon as go.run(instance) has been called. The module also sets
// globalThis.castgoReady to a Promise of the API (unless the page already defined castgoReady) and calls
// globalThis.onCastgoReady(castgo) when the page defined that function. See README.md for the API.
package main

func main() {
	install()
	select {} // keep the module alive: the API is served from JavaScript callbacks
}
