// Tests of the edge worker's R2 model path (MODEL_BUCKET + MODEL_KEY) against a local R2 emulation:
// miniflare (npm, pinned in package.json) runs the built worker — the same entry.mjs, wasm_exec.js,
// runtime.mjs and app.wasm that worker/build.sh writes — in its own workerd with an in-memory R2 bucket.
// Run from the repository root: node --test worker/test/r2.test.mjs. Loopback only, nothing is deployed.
//
// Each case starts a fresh worker (the model is loaded once per isolate, at its first request) with the
// bucket in a given state and checks the answer of the first requests:
//   - a missing object, an empty MODEL_KEY, a corrupt object, a truncated one and one too large for an
//     isolate: a 503 JSON {"error": ...} naming the problem, on /v1/model, /v1/classify and /healthz, at
//     once (no hang) and again on later requests (no crash loop: one Go instance, never restarted);
//   - a good object (the float32 demo model, unlike the embedded int8 one): /v1/model reports
//     source "r2:KEY", and a clip classifies like a native run of the same model file (nativeref).
//
// It builds the worker with worker/build.sh unless $CASTGO_WORKER_DIST names a directory it wrote.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

// miniflare is a devDependency (package.json); a node_modules from before it was added lacks it.
const { Miniflare } = await import("miniflare").catch((e) => {
  throw new Error(`worker/test/r2.test.mjs needs the npm package miniflare: run npm ci (${e.message})`);
});

const root = fileURLToPath(new URL("../..", import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "castgo-worker-r2-test-"));
const dist = process.env.CASTGO_WORKER_DIST ? path.resolve(process.env.CASTGO_WORKER_DIST) : path.join(tmp, "dist");
const nativeref = path.join(tmp, "nativeref");
const key = "models/cast-demo.safetensors";
const goodModel = path.join(root, "models", "default.safetensors");
const probTol = 1e-5; // native amd64 vs wasm of the same Go code
const requestTimeoutMs = 60_000; // a request that takes longer counts as a hang

let mf = null; // the running Miniflare, disposed after each case

before(() => {
  if (!process.env.CASTGO_WORKER_DIST) {
    execFileSync(path.join(root, "worker", "build.sh"), [dist], { cwd: root, stdio: "inherit" });
  }
  for (const f of ["app.wasm", "entry.mjs", "wasm_exec.js", "runtime.mjs"]) {
    assert.ok(fs.existsSync(path.join(dist, f)), `${dist} lacks ${f}: run worker/build.sh ${dist}`);
  }
  execFileSync("go", ["build", "-o", nativeref, "./wasm/internal/nativeref"], { cwd: root, stdio: "inherit" });
});

after(async () => {
  if (mf) await mf.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// startWorker runs the built worker with an R2 bucket bound as MODEL_BUCKET holding objects
// ({key: bytes}) and the MODEL_KEY variable set to modelKey.
async function startWorker(objects, modelKey = key) {
  if (mf) await mf.dispose();
  mf = new Miniflare({
    modulesRoot: dist,
    modules: [
      { type: "ESModule", path: path.join(dist, "entry.mjs") },
      { type: "ESModule", path: path.join(dist, "wasm_exec.js") },
      { type: "ESModule", path: path.join(dist, "runtime.mjs") },
      { type: "CompiledWasm", path: path.join(dist, "app.wasm") },
    ],
    compatibilityDate: "2025-11-01",
    r2Buckets: ["MODEL_BUCKET"],
    bindings: { MODEL_KEY: modelKey },
  });
  const bucket = await mf.getR2Bucket("MODEL_BUCKET");
  // A plain Uint8Array: miniflare's proxy does not take a Node Buffer.
  for (const [k, v] of Object.entries(objects)) await bucket.put(k, new Uint8Array(v));
  return mf;
}

// request sends one request to the worker and fails (instead of hanging) after requestTimeoutMs.
async function request(pathname, init = {}) {
  const t0 = performance.now();
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${pathname}: no answer within ${requestTimeoutMs} ms (hang)`)), requestTimeoutMs);
  });
  try {
    const res = await Promise.race([mf.dispatchFetch(`http://127.0.0.1${pathname}`, init), timeout]);
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, json, text, ms: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
  }
}

// A small clip: 8 frames of 32×32 RGB, a bright square moving right over a gradient.
const clip = { frames: 8, width: 32, height: 32 };
function frameRGB(t) {
  const { width: w, height: h } = clip;
  const rgb = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      const inside = Math.abs(x - (4 + 3 * t)) < 5 && Math.abs(y - h / 2) < 5;
      rgb[i] = inside ? 230 : (x * 5 + t * 7) & 255;
      rgb[i + 1] = inside ? 20 : (y * 6 + t * 3) & 255;
      rgb[i + 2] = inside ? 40 : ((x + y) * 3) & 255;
    }
  }
  return rgb;
}
const rgbFrames = Array.from({ length: clip.frames }, (_, t) => frameRGB(t));
const rawQuery = `?width=${clip.width}&height=${clip.height}&frames=${clip.frames}&format=rgb&views=1x1&top=16`;

function classify() {
  return request(`/v1/classify${rawQuery}`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body: Buffer.concat(rgbFrames),
  });
}

// expectLoadFailure checks that every route answers a 503 JSON naming the problem, quickly and again on
// later requests, from one Go instance that never restarts.
async function expectLoadFailure(t, want) {
  const checks = [
    ["/v1/model", () => request("/v1/model")],
    ["/v1/classify", () => classify()],
    ["/healthz", () => request("/healthz")],
  ];
  for (let round = 0; round < 2; round++) {
    for (const [name, send] of checks) {
      const r = await send();
      assert.equal(r.status, 503, `${name} (round ${round}): ${r.status} ${r.text}`);
      assert.match(r.headers.get("content-type") || "", /^application\/json/, `${name}: content type`);
      assert.equal(typeof r.json?.error, "string", `${name}: ${r.text}`);
      assert.match(r.json.error, want, `${name}: error ${JSON.stringify(r.json.error)}`);
      if (name === "/healthz") {
        assert.equal(r.json.ok, false);
        assert.equal(r.json.model_loads, 0, "no model was loaded");
        assert.equal(r.json.go_instances, 1, "the Go instance must not crash and restart");
      }
      if (round === 0) t.diagnostic(`${name}: 503 in ${r.ms.toFixed(0)} ms: ${r.json.error}`);
    }
  }
}

test("R2: missing object → 503 naming the key", async (t) => {
  await startWorker({});
  await expectLoadFailure(t, /model not loaded: R2 object "models\/cast-demo\.safetensors" not found in MODEL_BUCKET/);
});

test("R2: empty MODEL_KEY → 503 saying so", async (t) => {
  await startWorker({ [key]: fs.readFileSync(goodModel) }, "");
  await expectLoadFailure(t, /MODEL_KEY variable \(the object's key\) is empty/);
});

test("R2: corrupt object → 503 naming the parse error", async (t) => {
  await startWorker({ [key]: Buffer.from("this is not a castgo model file\n".repeat(64)) });
  await expectLoadFailure(t, /model not loaded: parsing model file from r2:models\/cast-demo\.safetensors: /);
});

test("R2: truncated object → 503 naming the parse error", async (t) => {
  const good = fs.readFileSync(goodModel);
  await startWorker({ [key]: good.subarray(0, Math.floor(good.length / 2)) });
  await expectLoadFailure(t, /model not loaded: parsing model file from r2:models\/cast-demo\.safetensors: /);
});

test("R2: object too large for an isolate → 503 before reading it", async (t) => {
  await startWorker({ [key]: Buffer.alloc(40 * 2 ** 20) });
  await expectLoadFailure(t, /R2 object "models\/cast-demo\.safetensors" is 41943040 bytes \(40\.0 MiB\): a model file over 34 MiB cannot fit a 128 MiB isolate/);
});

test("R2: a good object is loaded from the bucket and classifies like native", async (t) => {
  const bytes = fs.readFileSync(goodModel);
  await startWorker({ [key]: bytes });
  const m = await request("/v1/model");
  assert.equal(m.status, 200, m.text);
  assert.equal(m.json.source, `r2:${key}`);
  assert.equal(m.json.quantization, "none", "the R2 object (float32), not the embedded int8 model");
  assert.equal(m.json.size_bytes, bytes.length);
  t.diagnostic(`first request (Go start + R2 read + model load) ${m.ms.toFixed(0)} ms; load_ms ${m.json.load_ms}`);

  const r = await classify();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.model, m.json.name);
  assert.equal(r.json.views, "1x1");
  assert.equal(r.json.top.logits.length, 16);

  // The same frames through the same model file natively (nativeref takes RGBA frames aligned with the
  // frames the views read).
  const needed = [...new Set(r.json.per_view.flatMap((v) => v.frames))].sort((a, b) => a - b);
  const rgba = Buffer.concat(needed.map((i) => {
    const rgb = rgbFrames[i];
    const out = Buffer.alloc((rgb.length / 3) * 4, 255);
    for (let p = 0, q = 0; p < rgb.length; p += 3, q += 4) rgb.copy(out, q, p, p + 3);
    return out;
  }));
  const framesFile = path.join(tmp, "frames.rgba");
  fs.writeFileSync(framesFile, rgba);
  const want = JSON.parse(execFileSync(nativeref, ["--model", goodModel, "--frames", framesFile, "--num-frames", String(clip.frames),
    "--width", String(clip.width), "--height", String(clip.height), "--views", "1x1", "--top", "16"], { cwd: root }));
  const wantProb = new Map(want.top.logits.map((p) => [p.index, p.prob]));
  let maxDiff = 0;
  for (const p of r.json.top.logits) maxDiff = Math.max(maxDiff, Math.abs(p.prob - wantProb.get(p.index)));
  assert.ok(maxDiff < probTol, `probabilities differ from native by ${maxDiff}`);
  assert.equal(r.json.top.logits[0].index, want.top.logits[0].index);
  t.diagnostic(`top-1 ${r.json.top.logits[0].label} ${r.json.top.logits[0].prob.toFixed(5)}, max |Δp| vs native ${maxDiff.toExponential(2)}`);

  const h = await request("/healthz");
  assert.equal(h.status, 200, h.text);
  assert.equal(h.json.ok, true);
  assert.equal(h.json.model_loads, 1);
  assert.equal(h.json.go_instances, 1);
});
