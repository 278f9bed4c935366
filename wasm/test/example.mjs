// Prints the castgo.classify Result of a synthetic clip (the frames of castgo-node.mjs' syntheticFrame,
// 30 frames of 80×60) with the shipped int8 demo model: the example in wasm/README.md.
//
//   wasm/build.sh dist/site && node wasm/test/example.mjs dist/site [VIEWS]
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadCastgo, syntheticFrame } from "./castgo-node.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const dist = path.resolve(process.argv[2] || path.join(root, "dist", "site"));
const views = process.argv[3] || "";
const castgo = await loadCastgo({ wasm: path.join(dist, "cast.wasm"), wasmExec: path.join(dist, "wasm_exec.js") });
const { handle } = await castgo.loadModel(fs.readFileSync(path.join(root, "models", "default-int8.safetensors")));
const video = { numFrames: 30, width: 80, height: 60, views };
const plan = castgo.planViews(handle, video);
const frames = plan.neededFrames.map((t) => syntheticFrame(t, video.width, video.height));
const result = await castgo.classify(handle, { ...video, frames, top: 3 });
console.log(JSON.stringify(result, null, 1));
process.exit(0);
