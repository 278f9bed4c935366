// Loads the CAST WebAssembly module in Node (main thread or a worker_threads Worker) and returns the
// castgo API. The same steps work in a browser: load wasm_exec.js, instantiate cast.wasm with
// go.importObject, call go.run(instance) and await globalThis.castgoReady.
import { createRequire } from "node:module";
import fs from "node:fs";

/**
 * @param {{wasm: string, wasmExec: string}} paths cast.wasm and the wasm_exec.js built with it
 * @returns {Promise<object>} globalThis.castgo
 */
export async function loadCastgo({ wasm, wasmExec }) {
  if (!globalThis.Go) createRequire(import.meta.url)(wasmExec); // defines globalThis.Go
  const go = new globalThis.Go();
  const { instance } = await WebAssembly.instantiate(fs.readFileSync(wasm), go.importObject);
  go.run(instance); // resolves only when the module exits, which it never does
  return globalThis.castgoReady;
}

/**
 * Deterministic synthetic RGBA frame number t of a width×height video: a moving gradient with a square.
 * @returns {Uint8ClampedArray}
 */
export function syntheticFrame(t, width, height) {
  const px = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      const inSquare = Math.abs(x - (10 + 2 * t)) < 8 && Math.abs(y - height / 2) < 8;
      px[o] = inSquare ? 230 : (x * 3 + t * 5) & 255;
      px[o + 1] = inSquare ? 20 : (y * 4 + t * 3) & 255;
      px[o + 2] = inSquare ? 40 : ((x + y) * 2) & 255;
      px[o + 3] = 255;
    }
  }
  return px;
}
