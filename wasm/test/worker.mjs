// worker_threads stand-in for a Web Worker: loads castgo inside the worker, classifies synthetic frames
// and posts {progress} messages, then {result} (or {error}).
import { parentPort, workerData } from "node:worker_threads";
import fs from "node:fs";
import { loadCastgo, syntheticFrame } from "./castgo-node.mjs";

if (!parentPort) process.exit(0); // run directly (e.g. by `node --test wasm/test/`): nothing to do

try {
  const castgo = await loadCastgo(workerData);
  const { handle } = await castgo.loadModel(fs.readFileSync(workerData.model));
  const { numFrames, width, height } = workerData;
  const plan = castgo.planViews(handle, { numFrames, width, height });
  const frames = plan.neededFrames.map((t) => syntheticFrame(t, width, height));
  const result = await castgo.classify(handle, {
    numFrames, width, height, frames, probs: true,
    onProgress: (stage, done, total) => parentPort.postMessage({ progress: [stage, done, total] }),
  });
  const bad = await castgo.classify(handle + 1, { numFrames, width, height, frames }).catch((e) => e.message);
  castgo.dispose(handle);
  parentPort.postMessage({ result, bad });
} catch (e) {
  parentPort.postMessage({ error: String(e && e.stack || e) });
}
