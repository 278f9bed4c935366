// Tests of the castgo edge worker in its real runtime, workerd (run from the repository root:
// node --test worker/test/). Loopback only.
//
// They build the worker with worker/build.sh (or reuse $CASTGO_WORKER_DIST, a directory worker/build.sh
// wrote), start workerd on a free 127.0.0.1 port, and check: /healthz and /v1/model; classification of a
// procedurally drawn clip sent as PNG frames, raw RGB and raw RGBA, against the native CLI on the same
// frames (`cast classify --json DIR`, same Go code); a 4xx JSON error for every kind of malformed request;
// a bounded load test with zero errors; and that the model was loaded once (model_loads stays 1, one Go
// instance) with the first request's latency against warm ones.
//
// Knobs: CASTGO_WORKER_LOAD_REQUESTS (default 500), CASTGO_WORKER_LOAD_CONCURRENCY (16) and
// CASTGO_WORKER_LOAD_SECONDS (60: no new request starts after that; the test reports how many ran).
// With $CASTGO_ARTIFACTS set, the figures are also written to $CASTGO_ARTIFACTS/worker-load.json.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { frame, png } from "./frames.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "castgo-worker-test-"));
const dist = process.env.CASTGO_WORKER_DIST ? path.resolve(process.env.CASTGO_WORKER_DIST) : path.join(tmp, "dist");
const cli = path.join(tmp, "cast");
const probTol = 1e-5; // native amd64 vs wasm of the same Go code
const load = {
  requests: Number(process.env.CASTGO_WORKER_LOAD_REQUESTS || 500),
  concurrency: Number(process.env.CASTGO_WORKER_LOAD_CONCURRENCY || 16),
  seconds: Number(process.env.CASTGO_WORKER_LOAD_SECONDS || 60),
};

let workerd;
let workerdLog = "";
let base;
const figures = {};

// ---- the procedural clip (./frames.mjs) ----

function toRGBA(rgb) {
  const out = Buffer.alloc((rgb.length / 3) * 4);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    out[j] = rgb[i];
    out[j + 1] = rgb[i + 1];
    out[j + 2] = rgb[i + 2];
    out[j + 3] = 255;
  }
  return out;
}

const clip = { frames: 8, width: 64, height: 64 };
const rgbFrames = Array.from({ length: clip.frames }, (_, t) => frame(t, clip.width, clip.height));
const pngFrames = rgbFrames.map((f) => png(clip.width, clip.height, f));

// ---- HTTP helpers ----

function multipart(parts) {
  const fd = new FormData();
  for (const [name, value] of parts) {
    if (typeof value === "string") fd.append(name, value);
    else fd.append(name, new Blob([value], { type: "image/png" }), `${name}.png`);
  }
  return fd;
}

async function request(pathname, init = {}) {
  const t0 = performance.now();
  const res = await fetch(base + pathname, { signal: AbortSignal.timeout(120_000), ...init });
  const text = await res.text();
  const ms = performance.now() - t0;
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text, ms };
}

function classifyPNG(query = "", frames = pngFrames, fields = []) {
  return request(`/v1/classify${query}`, {
    method: "POST",
    body: multipart([...frames.map((f) => ["frame", f]), ...fields]),
  });
}

function classifyRaw(query, body) {
  return request(`/v1/classify${query}`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body,
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// ---- setup ----

before(async () => {
  if (!process.env.CASTGO_WORKER_DIST) {
    execFileSync(path.join(root, "worker", "build.sh"), [dist], { cwd: root, stdio: "inherit" });
  }
  for (const f of ["app.wasm", "entry.mjs", "wasm_exec.js", "runtime.mjs", "workerd.capnp"]) {
    assert.ok(fs.existsSync(path.join(dist, f)), `${dist} lacks ${f}: run worker/build.sh ${dist}`);
  }
  execFileSync("go", ["build", "-o", cli, "./tools/cast"], { cwd: root, stdio: "inherit", env: { ...process.env, CGO_ENABLED: "0" } });

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  workerd = spawn(path.join(root, "node_modules", ".bin", "workerd"),
    ["serve", path.join(dist, "workerd.capnp"), "--socket-addr", `http=127.0.0.1:${port}`],
    { cwd: dist, stdio: ["ignore", "pipe", "pipe"] });
  workerd.stdout.on("data", (d) => (workerdLog += d));
  workerd.stderr.on("data", (d) => (workerdLog += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (workerd.exitCode !== null) throw new Error(`workerd exited with ${workerd.exitCode}:\n${workerdLog}`);
    try {
      const r = await request("/healthz");
      // The first answered request starts the Go instance and loads the model: the cold latency.
      figures.firstRequestMs = r.ms;
      figures.firstHealth = r.json;
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`workerd did not answer /healthz within 60 s: ${e}\n${workerdLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

after(() => {
  if (workerd && workerd.exitCode === null) workerd.kill("SIGTERM");
  fs.rmSync(tmp, { recursive: true, force: true });
  if (process.env.CASTGO_ARTIFACTS) {
    fs.mkdirSync(process.env.CASTGO_ARTIFACTS, { recursive: true });
    fs.writeFileSync(path.join(process.env.CASTGO_ARTIFACTS, "worker-load.json"), JSON.stringify(figures, null, 2) + "\n");
  }
});

// ---- tests ----

test("healthz and model info", async (t) => {
  const h = await request("/healthz");
  assert.equal(h.status, 200);
  assert.match(h.headers.get("content-type"), /^application\/json/);
  assert.equal(h.json.ok, true);
  assert.equal(h.json.model_loads, 1);
  assert.equal(h.json.go_instances, 1);
  assert.ok(h.json.uptime_s >= 0);

  const m = await request("/v1/model");
  assert.equal(m.status, 200);
  const info = m.json;
  assert.equal(typeof info.name, "string");
  assert.equal(info.api_protocol, "castgo-edge/1");
  assert.equal(info.source, "embedded:default-int8");
  assert.equal(info.quantization, "int8");
  assert.equal(info.size_bytes, fs.statSync(path.join(root, "models", "default-int8.safetensors")).size);
  assert.equal(info.config.img_size, 56);
  assert.equal(info.classes.logits.length, info.config.num_classes);
  assert.ok(info.protocol.sampling);
  assert.ok(info.memory.weights_bytes > 0 && info.memory.activations_bytes > 0);
  assert.ok(info.memory.peak_estimate_bytes < 128 * 2 ** 20);
  assert.equal(info.limits.max_body_bytes, 16 * 2 ** 20);
  t.diagnostic(`first request (Go start + model load) ${figures.firstRequestMs.toFixed(0)} ms; model load_ms ${info.load_ms}; ` +
    `peak estimate ${(info.memory.peak_estimate_bytes / 2 ** 20).toFixed(1)} MiB + wasm`);
  figures.modelLoadMs = info.load_ms;
});

test("classify matches the native CLI (PNG, raw RGB, raw RGBA)", async (t) => {
  const views = "1x1";
  const first = await classifyPNG(`?views=${views}&top=16`);
  assert.equal(first.status, 200, first.text);
  figures.firstClassifyMs = first.ms;

  const dir = path.join(tmp, "frames");
  fs.mkdirSync(dir);
  pngFrames.forEach((f, i) => fs.writeFileSync(path.join(dir, `frame_${String(i).padStart(3, "0")}.png`), f));
  const out = JSON.parse(execFileSync(cli, ["classify", "--model", "default-int8", "--json", "--views", views, "--top", "16", dir], { cwd: root }));
  const want = out[0].result;
  assert.ok(want, `CLI failed: ${JSON.stringify(out)}`);

  const rgb = Buffer.concat(rgbFrames);
  const dims = `width=${clip.width}&height=${clip.height}&frames=${clip.frames}`;
  const results = {
    png: first.json,
    rgb: (await classifyRaw(`?${dims}&views=${views}&top=16`, rgb)).json,
    rgba: (await classifyRaw(`?${dims}&format=rgba&views=${views}&top=16`, Buffer.concat(rgbFrames.map(toRGBA)))).json,
  };
  for (const [kind, got] of Object.entries(results)) {
    assert.ok(got && got.top, `${kind}: ${JSON.stringify(got)}`);
    assert.equal(got.model, want.model);
    assert.equal(got.views, views);
    assert.equal(got.frames, clip.frames);
    assert.equal(got.input.format, kind);
    for (const k of ["decode_ms", "preprocess_ms", "inference_ms", "total_ms"]) assert.equal(typeof got.timings[k], "number");
    const g = got.top.logits;
    const w = want.top.logits;
    assert.equal(g.length, w.length);
    const byIndex = new Map(w.map((p) => [p.index, p.prob]));
    let maxDiff = 0;
    for (let i = 0; i < g.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(g[i].prob - w[i].prob), Math.abs(g[i].prob - byIndex.get(g[i].index)));
    }
    assert.ok(maxDiff < probTol, `${kind}: probabilities differ from the CLI's by ${maxDiff}`);
    // The top-5 labels agree wherever the CLI's probabilities are not tied within the tolerance.
    for (let i = 0; i < 5; i++) {
      const tied = (i > 0 && w[i - 1].prob - w[i].prob < probTol) || (i + 1 < w.length && w[i].prob - w[i + 1].prob < probTol);
      if (!tied) assert.equal(g[i].label, w[i].label, `${kind}: rank ${i}`);
    }
    t.diagnostic(`${kind}: top-1 ${g[0].label} ${g[0].prob.toFixed(5)}, max |Δp| vs CLI ${maxDiff.toExponential(2)}`);
  }

  const warm = [];
  for (let i = 0; i < 3; i++) {
    const r = await classifyPNG(`?views=${views}`);
    assert.equal(r.status, 200);
    warm.push(r.ms);
  }
  warm.sort((a, b) => a - b);
  figures.warmClassifyMs = warm[1];
  t.diagnostic(`latency: first request ${figures.firstRequestMs.toFixed(0)} ms (starts Go, loads the model), ` +
    `first classify ${figures.firstClassifyMs.toFixed(0)} ms, warm classify (median of 3) ${warm[1].toFixed(0)} ms`);
});

test("malformed requests get a 4xx JSON error", async (t) => {
  const one = pngFrames[0];
  const small = png(1, 1, Buffer.from([1, 2, 3]));
  const other = png(32, 32, frame(0, 32, 32));
  const raw = (q, body, headers = {}) => ({
    path: `/v1/classify${q}`,
    init: { method: "POST", headers: { "content-type": "application/octet-stream", ...headers }, body },
  });
  const mp = (q, parts) => ({ path: `/v1/classify${q}`, init: { method: "POST", body: multipart(parts) } });
  const dims = "width=4&height=4&frames=2";
  const cases = [
    ["GET /v1/classify", 405, { path: "/v1/classify", init: {} }],
    ["POST /healthz", 405, { path: "/healthz", init: { method: "POST", body: "x" } }],
    ["DELETE /v1/model", 405, { path: "/v1/model", init: { method: "DELETE" } }],
    ["unknown path", 404, { path: "/v2/classify", init: {} }],
    ["no content type", 415, { path: "/v1/classify", init: { method: "POST", body: new Uint8Array([1, 2]) } }],
    ["text/plain", 415, { path: "/v1/classify", init: { method: "POST", headers: { "content-type": "text/plain" }, body: "hi" } }],
    ["Content-Length over the limit", 413, raw(`?${dims}`, Buffer.alloc(16 * 2 ** 20 + 1))],
    ["streamed body over the limit", 413, {
      path: "/v1/classify",
      init: {
        method: "POST", duplex: "half", headers: { "content-type": "multipart/form-data; boundary=xyz" },
        body: new ReadableStream({
          start(c) {
            c.enqueue(Buffer.from("--xyz\r\nContent-Disposition: form-data; name=\"frame\"\r\n\r\n"));
            for (let i = 0; i < 17; i++) c.enqueue(Buffer.alloc(2 ** 20, 7));
            c.close();
          },
        }),
      },
    }],
    ["raw frames that cannot fit the body limit", 413, raw("?width=1920&height=1920&frames=256", Buffer.alloc(10))],
    ["raw without width", 400, raw("?height=4&frames=2", Buffer.alloc(96))],
    ["raw width not a number", 400, raw("?width=abc&height=4&frames=2", Buffer.alloc(96))],
    ["raw width 0", 400, raw("?width=0&height=4&frames=2", Buffer.alloc(96))],
    ["raw height over 1920", 400, raw("?width=4&height=5000&frames=2", Buffer.alloc(96))],
    ["raw 257 frames", 400, raw("?width=1&height=1&frames=257", Buffer.alloc(257 * 3))],
    ["raw format bgr", 400, raw(`?${dims}&format=bgr`, Buffer.alloc(96))],
    ["raw body too short", 400, raw(`?${dims}`, Buffer.alloc(95))],
    ["raw RGBA body of RGB size", 400, raw(`?${dims}&format=rgba`, Buffer.alloc(96))],
    ["raw via headers, wrong size", 400, raw("", Buffer.alloc(10), { "x-width": "4", "x-height": "4", "x-frames": "2" })],
    ["top 0", 400, raw(`?${dims}&top=0`, Buffer.alloc(96))],
    ["top 21", 400, raw(`?${dims}&top=21`, Buffer.alloc(96))],
    ["top not a number", 400, raw(`?${dims}&top=five`, Buffer.alloc(96))],
    ["views malformed", 400, raw(`?${dims}&views=big`, Buffer.alloc(96))],
    ["views 3 clips with segment sampling", 400, raw(`?${dims}&views=3x1`, Buffer.alloc(96))],
    ["views with 2 crops", 400, raw(`?${dims}&views=1x2`, Buffer.alloc(96))],
    ["malformed query", 400, raw(`?${dims}&views=%zz`, Buffer.alloc(96))],
    ["multipart without boundary", 400, { path: "/v1/classify", init: { method: "POST", headers: { "content-type": "multipart/form-data" }, body: "x" } }],
    ["multipart garbage", 400, { path: "/v1/classify", init: { method: "POST", headers: { "content-type": "multipart/form-data; boundary=b" }, body: "not multipart at all" } }],
    ["multipart without frames", 400, mp("", [["views", "1x1"]])],
    ["multipart unknown part", 400, mp("", [["frame", one], ["clip", one]])],
    ["frame not an image", 400, mp("", [["frame", Buffer.from("hello, not a PNG")]])],
    ["frame truncated after its header", 400, mp("", [["frame", one.subarray(0, 60)]])],
    ["frames of different sizes", 400, mp("", [["frame", one], ["frame", other]])],
    ["257 frames", 400, mp("", Array.from({ length: 257 }, () => ["frame", small]))],
    ["multipart top field 99", 400, mp("", [["frame", one], ["top", "99"]])],
    ["multipart views field bad", 400, mp("", [["frame", one], ["views", "0x0"]])],
  ];
  for (const [name, status, { path: p, init }] of cases) {
    let r;
    try {
      r = await request(p, init);
    } catch (e) {
      assert.fail(`${name}: ${e} (${e.cause})`);
    }
    assert.equal(r.status, status, `${name}: got ${r.status} ${r.text}`);
    assert.match(r.headers.get("content-type") || "", /^application\/json/, `${name}: content type`);
    assert.equal(typeof r.json?.error, "string", `${name}: ${r.text}`);
    assert.ok(r.json.error.length > 10, `${name}: error message ${JSON.stringify(r.json.error)}`);
    t.diagnostic(`${status} ${name}: ${r.json.error.slice(0, 110)}`);
  }
  const h = await request("/healthz");
  assert.equal(h.json.model_loads, 1);
  assert.equal(h.json.go_instances, 1, "a malformed request must not crash the Go instance");
});

test("bounded load: zero errors, model loaded once", async (t) => {
  // Small raw RGB clips and one view: 4 frames of 32×32.
  const f = 4;
  const body = Buffer.concat(Array.from({ length: f }, (_, i) => frame(i, 32, 32)));
  const q = `?width=32&height=32&frames=${f}&format=rgb&views=1x1&top=3`;
  const latencies = [];
  const errors = [];
  let next = 0;
  const start = performance.now();
  const stopAt = start + load.seconds * 1000;
  async function client() {
    while (next < load.requests && performance.now() < stopAt) {
      next++;
      try {
        const r = await classifyRaw(q, body);
        if (r.status !== 200 || !r.json?.top) errors.push(`${r.status} ${r.text.slice(0, 200)}`);
        else latencies.push(r.ms);
      } catch (e) {
        errors.push(String(e));
      }
    }
  }
  await Promise.all(Array.from({ length: load.concurrency }, client));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  Object.assign(figures, {
    load: {
      requested: load.requests, concurrency: load.concurrency, timeBudgetS: load.seconds, completed: latencies.length,
      errors: errors.length, seconds, rps: latencies.length / seconds, p50Ms: pct(50), p99Ms: pct(99), maxMs: latencies.at(-1),
    },
  });
  t.diagnostic(`load: ${latencies.length} of ${load.requests} requests at concurrency ${load.concurrency} in ${seconds.toFixed(1)} s ` +
    `(budget ${load.seconds} s): ${errors.length} errors, ${(latencies.length / seconds).toFixed(2)} req/s, ` +
    `p50 ${pct(50)?.toFixed(0)} ms, p99 ${pct(99)?.toFixed(0)} ms`);
  assert.deepEqual(errors, []);
  assert.ok(latencies.length >= Math.min(load.requests, load.concurrency), `only ${latencies.length} requests completed`);

  const h = await request("/healthz");
  assert.equal(h.json.model_loads, 1, "the model must be loaded once per isolate");
  assert.equal(h.json.go_instances, 1, "one Go instance must serve every request");
  figures.finalHealth = h.json;
  t.diagnostic(`after ${h.json.requests} requests: model_loads ${h.json.model_loads}, go_instances ${h.json.go_instances}, ` +
    `Go heap ${(h.json.heap_bytes / 2 ** 20).toFixed(1)} MiB, Go sys ${(h.json.sys_bytes / 2 ** 20).toFixed(1)} MiB`);
});
