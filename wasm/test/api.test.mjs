// Node tests of the castgo JavaScript API (run from the repository root: node --test wasm/test/).
//
// They build the module with wasm/build.sh (or use $CASTGO_DIST, a directory holding cast.wasm and
// wasm_exec.js), load it with wasm_exec.js, and compare castgo.classify on synthetic RGBA frames with a
// native pure-Go run of the same frames (wasm/internal/nativeref, built with `go build`).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { Worker } from "node:worker_threads";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadCastgo, syntheticFrame } from "./castgo-node.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "castgo-wasm-test-"));
const dist = process.env.CASTGO_DIST || path.join(tmp, "dist");
const paths = { wasm: path.join(dist, "cast.wasm"), wasmExec: path.join(dist, "wasm_exec.js") };
const models = {
  int8: path.join(root, "models", "default-int8.safetensors"),
  fp32: path.join(root, "models", "default.safetensors"),
};
const video = { numFrames: 30, width: 80, height: 60 };
const nativeref = path.join(tmp, "nativeref");
// |Δprob| bounds, native amd64 vs wasm of the same Go code. An int8 model gives the same logits: its GEMMs and
// attentions are integer, and every kernel tier does the float operations around them (layer norm, GELU, the
// epilogues, few-key attention, the sums) with the same rounded operations in the same order
// (backend/kernels/README.md, "One result on every tier"; TestTierBits). Its probabilities are float64 softmaxes
// of those logits, whose math.Exp is assembly natively and Go in wasm (an ulp apart at most): measured 0. A
// float32 model's GEMMs use FMA natively and add in another order: measured 1.5e-7 to 7.7e-7.
const probTol = { fp32: 1e-5, int8: 1e-15 };

let castgo;

before(() => {
  if (!process.env.CASTGO_DIST) {
    execFileSync(path.join(root, "wasm", "build.sh"), [dist], { cwd: root, stdio: "inherit" });
  }
  execFileSync("go", ["build", "-o", nativeref, "./wasm/internal/nativeref"], { cwd: root, stdio: "inherit" });
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function api() {
  castgo ??= await loadCastgo(paths);
  return castgo;
}

function framesFor(plan) {
  return plan.neededFrames.map((t) => syntheticFrame(t, video.width, video.height));
}

// native runs nativeref on the frames of plan and returns its result JSON.
function native(modelPath, plan, views = "") {
  const file = path.join(tmp, `frames-${plan.neededFrames.join("_")}.rgba`);
  fs.writeFileSync(file, Buffer.concat(framesFor(plan).map((f) => Buffer.from(f.buffer))));
  const out = execFileSync(nativeref, ["--model", modelPath, "--frames", file, "--num-frames", String(video.numFrames),
    "--width", String(video.width), "--height", String(video.height), "--views", views], { cwd: root });
  return JSON.parse(out);
}

function assertSameProbs(got, want, kind = "int8") {
  assert.deepEqual(Object.keys(got.probs), Object.keys(want.probs));
  let maxDiff = 0;
  for (const head of Object.keys(want.probs)) {
    assert.equal(got.probs[head].length, want.probs[head].length);
    want.probs[head].forEach((p, i) => { maxDiff = Math.max(maxDiff, Math.abs(p - got.probs[head][i])); });
    const k = Math.min(got.top[head].length, want.top[head].length);
    assert.deepEqual(got.top[head].slice(0, k).map((p) => p.index), want.top[head].slice(0, k).map((p) => p.index), `top-k of ${head}`);
  }
  assert.ok(maxDiff <= probTol[kind], `max |Δprob| ${maxDiff} > ${probTol[kind]}`);
  return maxDiff;
}

test("the API is installed and castgoReady resolves to it", async () => {
  const c = await api();
  assert.equal(globalThis.castgo, c);
  for (const f of ["loadModel", "modelInfo", "planViews", "classify", "logits", "dispose"]) {
    assert.equal(typeof c[f], "function", f);
  }
  assert.equal(c.version, "1");
  assert.equal(c.kernels, "wasm-simd128", "the module is built with the SIMD128 kernels");
});

for (const [kind, modelPath] of Object.entries(models)) {
  test(`${kind} default model: load, plan, classify matches native`, async (t) => {
    const c = await api();
    const bytes = fs.readFileSync(modelPath);
    // fp32 as an ArrayBuffer, int8 as a Uint8Array: both forms are accepted.
    const arg = kind === "fp32" ? bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) : new Uint8Array(bytes);
    const { handle, info } = await c.loadModel(arg);
    assert.equal(typeof handle, "number");
    assert.equal(info.quantization, kind === "int8" ? "int8" : "none");
    assert.equal(info.sizeBytes, bytes.length);
    assert.deepEqual(info.heads, ["logits"]);
    assert.equal(info.labels.logits.length, info.config.num_classes);
    assert.equal(info.frames, info.config.all_frames);
    assert.equal(info.imgSize, info.config.img_size);
    assert.equal(info.clipSeconds, 2, "castgo.clip_seconds of the default model (16 frames at 8 fps)");
    assert.ok(info.params.total > info.params.trainable && info.params.trainable > 0);
    assert.equal(typeof info.protocol.sampling, "string");
    assert.deepEqual(c.modelInfo(handle), info);

    const plan = c.planViews(handle, video);
    assert.equal(plan.views.length, info.protocol.clips * info.protocol.crops);
    for (const v of plan.views) {
      assert.equal(v.frames.length, info.frames);
      for (const f of v.frames) assert.ok(plan.neededFrames.includes(f));
      for (const k of ["clip", "crop", "x0", "y0"]) assert.equal(typeof v[k], "number");
    }

    const events = [];
    let returned = false;
    const promise = c.classify(handle, {
      ...video, frames: framesFor(plan), probs: true, top: 3,
      onProgress: (stage, done, total) => events.push({ stage, done, total, returned }),
    });
    returned = true;
    assert.ok(promise instanceof Promise);
    const res = await promise;
    // Progress: every view reported, and only after classify had returned its Promise (the work yields).
    const viewEvents = events.filter((e) => e.stage === "view");
    assert.deepEqual(viewEvents.map((e) => e.done), [...Array(plan.views.length + 1).keys()]);
    assert.ok(events.every((e) => e.returned), "progress before classify returned");

    assert.equal(res.model, info.name);
    assert.equal(res.views, plan.protocol);
    assert.equal(res.frames, video.numFrames);
    assert.equal(res.top.logits.length, 3);
    for (const p of res.top.logits) {
      assert.equal(p.label, info.labels.logits[p.index]);
      assert.ok(p.prob >= 0 && p.prob <= 1);
    }
    assert.equal(res.per_view.length, plan.views.length);
    assert.deepEqual(res.per_view.map((v) => v.frames), plan.views.map((v) => v.frames));
    assert.ok(res.timings.total_ms > 0 && res.timings.per_view_ms > 0);
    const sum = res.probs.logits.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-9);

    const want = native(modelPath, plan);
    const d = assertSameProbs(res, want, kind);
    t.diagnostic(`${kind}: max |Δprob| wasm vs native = ${d}; wasm ${res.timings.per_view_ms} ms/view, native ${want.timings.per_view_ms} ms/view`);

    // Frames as an object index → ImageData-like value, and a 1x1 view override.
    const one = c.planViews(handle, { ...video, views: "1x1" });
    const byIndex = {};
    for (const f of one.neededFrames) {
      byIndex[f] = { data: syntheticFrame(f, video.width, video.height), width: video.width, height: video.height };
    }
    const res1 = await c.classify(handle, { ...video, views: "1x1", frames: byIndex, probs: true });
    assert.equal(res1.views, "1x1");
    assert.equal(res1.per_view.length, 1);
    assertSameProbs(res1, native(modelPath, one, "1x1"), kind);

    // logits: raw model output for a normalised clip.
    const clipLen = 3 * info.frames * info.imgSize * info.imgSize;
    const clip = new Float32Array(2 * clipLen).map((_, i) => Math.sin(i * 0.001));
    const out = await c.logits(handle, clip, 2);
    assert.ok(out.heads.logits instanceof Float32Array);
    assert.equal(out.heads.logits.length, 2 * info.config.num_classes);
    assert.equal(out.classes.logits, info.config.num_classes);

    assert.equal(c.dispose(handle), true);
    assert.throws(() => c.modelInfo(handle), /unknown model handle/);
  });
}

test("errors reject (async) or throw (sync) with a message naming the problem", async () => {
  const c = await api();
  await assert.rejects(c.loadModel(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])), (e) => e instanceof Error && /castgo.loadModel: modelfile/.test(e.message));
  await assert.rejects(c.loadModel("not bytes"), /model bytes: want an ArrayBuffer/);
  await assert.rejects(c.loadModel(), /missing the model file bytes/);
  const { handle } = await c.loadModel(fs.readFileSync(models.int8));
  const plan = c.planViews(handle, video);
  const frames = framesFor(plan);
  await assert.rejects(c.classify(handle, { ...video, frames: frames.map((f) => f.subarray(4)) }), /RGBA image needs 19200 bytes, has 19196/);
  await assert.rejects(c.classify(handle, { ...video, frames: frames.slice(1) }), /frames has 7 entries, want 8 aligned with neededFrames/);
  await assert.rejects(c.classify(handle, { ...video }), /frames is missing/);
  await assert.rejects(c.classify(handle, { ...video, frames: frames.map(() => 42) }), /frame 0: want an ArrayBuffer/);
  await assert.rejects(c.classify(handle, { ...video, frames, views: "9x9" }), /views "9x9"/);
  await assert.rejects(c.classify(handle, { ...video, width: "80", frames }), /width must be a number/);
  await assert.rejects(c.classify(handle, { ...video, frames, onProgress: 1 }), /onProgress must be a function/);
  await assert.rejects(c.classify(handle, { ...video, frames, onProgress: () => { throw new Error("boom"); } }), /onProgress: boom/);
  await assert.rejects(c.classify(12345, { ...video, frames }), /castgo.classify: unknown model handle 12345/);
  await assert.rejects(c.logits(handle, [1, 2, 3], 1), /clip must be a Float32Array/);
  await assert.rejects(c.logits(handle, new Float32Array(10), 1), /input has 10 values/);
  assert.throws(() => c.modelInfo(12345), (e) => e instanceof Error && /castgo.modelInfo: unknown model handle 12345/.test(e.message));
  assert.throws(() => c.planViews(12345, video), /unknown model handle/);
  assert.throws(() => c.planViews(handle, { ...video, views: "1x2" }), /castgo.planViews: views "1x2"/);
  assert.throws(() => c.planViews(handle, { numFrames: 0, width: 1, height: 1 }), /at least one frame/);
  assert.throws(() => c.dispose("x"), /model handle must be a number/);
  // Size limits: rejected with a message, never an aborted instance.
  assert.throws(() => c.planViews(handle, { ...video, numFrames: 2 ** 31 }), /numFrames is 2147483648, more than the limit of 1048576/);
  assert.throws(() => c.planViews(handle, { ...video, width: 100000 }), /at most 4096 pixels per side/);
  await assert.rejects(c.classify(handle, { ...video, numFrames: 2 ** 31, frames }), /castgo.classify: numFrames is 2147483648, more than the limit/);
  await assert.rejects(c.classify(handle, { ...video, frames, top: 2 ** 30 }), /top is 1073741824, want 1 to 1000/);
  await assert.rejects(c.logits(handle, new Float32Array(1), 2 ** 31), /batch is 2147483648, want 1 to 64/);
  await assert.rejects(c.loadModel(new ArrayBuffer(2 ** 30 + 1)), /castgo.loadModel: model bytes: 1073741825 bytes, more than the limit of 1024 MiB/);
  // The instance is still alive after all of that.
  assert.equal(c.planViews(handle, video).neededFrames.length, plan.neededFrames.length);
  assert.equal(c.dispose(handle), true);
  assert.throws(() => c.dispose(handle), /unknown model handle/);
});

test("works inside a worker_threads Worker (Web Worker stand-in)", async () => {
  const progress = [];
  const msg = await new Promise((resolve, reject) => {
    const w = new Worker(new URL("./worker.mjs", import.meta.url), { workerData: { ...paths, ...video, model: models.int8 } });
    w.on("message", (m) => (m.progress ? progress.push(m.progress) : (resolve(m), w.terminate())));
    w.on("error", reject);
  });
  assert.equal(msg.error, undefined, msg.error);
  assert.match(msg.bad, /unknown model handle/);
  const c = await api();
  const { handle } = await c.loadModel(fs.readFileSync(models.int8));
  const plan = c.planViews(handle, video);
  assertSameProbs(msg.result, native(models.int8, plan));
  assert.ok(progress.some(([stage, done, total]) => stage === "view" && done === total));
  c.dispose(handle);
});
