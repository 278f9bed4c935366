// castgo web page, main thread: model choice and caching, video picking, exact frame extraction, UI.
// The model runs in a pool of Web Workers (worker.js); this thread only talks to them with postMessage.
//
// How frames are located (browsers do not expose frame counts or frame rates):
//   1. fps: the video is played (muted) for a few frames and requestVideoFrameCallback reports each
//      presented frame's mediaTime (its presentation timestamp). The frame duration is the smallest positive
//      step between consecutive timestamps (dropped frames only make steps larger), snapped to a common
//      rate (N or N·1000/1001 fps) when within 0.5 %.
//   2. numFrames = round(duration × fps): the packet count that `cast classify` (ffprobe -count_packets)
//      finds in a constant-frame-rate file.
//   3. frame i is shown at (i + 0.5)/fps (after the first frame's timestamp): we seek there and wait for
//      requestVideoFrameCallback (not only 'seeked', which can fire before the new frame is presented),
//      check that the presented frame's mediaTime is i/fps, and draw it to a canvas at the natural size.
// Limits: variable-frame-rate videos (phones, screen recordings) have no single fps, so the indices can be
// off by some frames; a container duration longer than the video track (e.g. longer audio) gives too many
// frames; non-square pixels are drawn stretched to the display size, which ffmpeg does not do.
"use strict";

const $ = (id) => document.getElementById(id);
const HARD_CAP = 1.5e9; // bytes: refuse bigger model files outright
const CACHE_NAME = "castgo-models-v1";
const CACHE_KEY = new URL("cached-model/model.safetensors", location.href).href; // never fetched: cache key only
const DEBUG_FRAMES = new URLSearchParams(location.search).get("debug") === "frames";

const ui = {
  select: $("model-select"), modelInput: $("model-input"), forget: $("forget-model"),
  video: $("video"), videoInput: $("video-input"), drop: $("drop"), dropHint: $("drop-hint"), another: $("another"),
  meta: $("video-meta"), progress: $("progress"), stage: $("stage"), error: $("error"),
  framesCard: $("frames-card"), strip: $("strip"), resultsCard: $("results-card"), predictions: $("predictions"),
  timing: $("timing"), viewsBody: document.querySelector("#views-table tbody"), method: $("frame-method"),
  backendSelect: $("backend-select"), compare: $("compare-backends"), compareWrap: $("compare-wrap"),
  compareBody: document.querySelector("#compare-table tbody"),
};

// Exposed for tests and the curious: the last run's numbers (and frames with ?debug=frames).
const site = (globalThis.castgoSite = { model: null, last: null, busy: false });
// Tests: lose the WebGPU device of the current pool (the next video must fall back to the CPU pool).
site.destroyGPU = () => (pool?.kind === "webgpu" ? pool.clients[0].call("destroyGPU") : Promise.resolve(null));

// ---------------------------------------------------------------- worker pool
//
// The model runs on a pool of N Web Workers (worker.js), each with its own WebAssembly instance and copy of
// the model, because Go's js/wasm runs on one thread. N = min(cores, parallel units of the protocol, what the
// memory budget allows); ?workers=N forces N (still at most the number of units). The unit of work is one
// temporal clip with all its crops: the frames of clip c are handed to a worker as a small "virtual video"
// whose own 1×CROPS plan is exactly clip c's views (same frames, same crop corners), and classify returns
// their softmax (probs: true). The main thread merges the units in plan order the way classify.ClassifyViews
// does (mean over views, then top-k), so the answer does not depend on N; with one crop per clip (the demo
// models) every unit is one view and the merge is bit-for-bit the one a single classify call makes.

const FORCED_WORKERS = (() => {
  const n = Number.parseInt(new URLSearchParams(location.search).get("workers") || "", 10);
  return Number.isFinite(n) && n >= 1 ? Math.min(n, 16) : 0;
})();

// ?views=CLIPSxCROPS overrides the model's view protocol, as `cast classify --views` does (1x1 is fastest).
const VIEWS = /^\d{1,2}x[13]$/.test(new URLSearchParams(location.search).get("views") || "") ? new URLSearchParams(location.search).get("views") : undefined;

// ---------------------------------------------------------------- compute backend
//
// "webgpu": one worker runs the model's compiled plan on the GPU (castgo's WebGPU executor: WGSL kernels,
// weights uploaded once, only the logits read back). "cpu": the pool of WebAssembly workers above. "auto"
// (the default) tries WebGPU when navigator.gpu exists and falls back to the CPU pool when it yields no
// adapter or device, when loading fails, and when a run fails (device lost); ?backend=auto|webgpu|cpu
// preselects the choice (?workers=N alone selects the CPU pool).
const BACKEND_PARAM = new URLSearchParams(location.search).get("backend");
if (["auto", "webgpu", "cpu"].includes(BACKEND_PARAM)) document.getElementById("backend-select").value = BACKEND_PARAM;
else if (FORCED_WORKERS) document.getElementById("backend-select").value = "cpu"; // ?workers=N asks for the pool

// WorkerClient is one worker.js with a request/response RPC.
class WorkerClient {
  constructor() {
    this.worker = new Worker("worker.js");
    this.nextId = 1;
    this.pending = new Map();
    this.dead = null;
    this.worker.onmessage = (ev) => {
      const m = ev.data;
      if (m.fatal) return this.fail(m.fatal);
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.progress) {
        p.onProgress?.(m.progress);
        return;
      }
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m);
      else p.reject(new Error(m.error));
    };
    this.worker.onerror = (e) => this.fail(`the model worker failed: ${e.message || "unknown error"}`);
  }
  fail(msg) {
    this.dead ??= msg;
    for (const p of this.pending.values()) p.reject(new Error(this.dead));
    this.pending.clear();
  }
  call(op, data = {}, transfer = [], onProgress) {
    if (this.dead) return Promise.reject(new Error(this.dead));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, op, ...data }, transfer);
    });
  }
  terminate() {
    this.worker.terminate();
    this.fail("the model worker was stopped");
  }
}

// instanceBytes estimates one worker's peak memory for a model file of size bytes, conservatively: the Go
// runtime and module (~80 MB), twice the file (the parsed weights beside the copy loadModel makes), the
// activations of one view (VideoMAE's joint attention maps, heads × tokens² floats, three times over, plus
// 32 token tensors of both experts) and 64 MB for the frames of a clip.
function instanceBytes(size, info) {
  const c = info?.config || {};
  const T = c.all_frames || info?.frames || 16, S = c.img_size || info?.imgSize || 224;
  const grid = S / (c.patch_size || 16), D = c.embed_dim || 768, heads = c.num_heads || 12;
  const temporal = (T / (c.tubelet_size || 2)) * grid * grid; // VideoMAE tokens
  const tokens = temporal + T * (grid * grid + 1); // + CLIP's per-frame tokens
  const activations = 4 * (3 * heads * temporal * temporal + 32 * tokens * D);
  return 80e6 + 2 * size + activations + 64e6;
}

// poolSize returns how many workers to run a model with, and why.
function poolSize(size, info) {
  const units = Math.max(1, VIEWS ? Number(VIEWS.split("x")[0]) : info?.protocol?.clips || 1);
  if (FORCED_WORKERS) return { n: Math.min(FORCED_WORKERS, units), why: "forced with ?workers=" };
  const cores = Math.max(1, navigator.hardwareConcurrency || 1);
  const gb = navigator.deviceMemory || 4; // GB; Chromium reports at most 8
  const byMemory = Math.max(1, Math.floor((gb * 1e9 * 0.5) / instanceBytes(size, info)));
  const n = Math.max(1, Math.min(cores, units, byMemory));
  const why = n === units && n < cores ? `one per clip (${units})` : n === byMemory && byMemory < cores ? "memory" : `${cores} cores`;
  return { n, why };
}

// Pool is the set of workers holding one model.
class Pool {
  constructor(clients, info, why, kind = "cpu", gpu = null) {
    this.clients = clients;
    this.info = info;
    this.why = why;
    this.kind = kind; // "cpu" or "webgpu"
    this.gpu = gpu; // castgo.gpuInfo() of the WebGPU worker
  }
  get size() { return this.clients.length; }
  get dead() { return this.clients.find((c) => c.dead)?.dead || null; }
  terminate() { for (const c of this.clients) c.terminate(); }

  // create starts workers, loads the model bytes (an ArrayBuffer, which this takes over) into the first,
  // sizes the pool from its info and loads the others in parallel. On failure every new worker is stopped.
  static async create(bytes, kind = "cpu") {
    if (kind === "webgpu") {
      // One worker: the GPU does the work (each WebAssembly instance would hold its own device and weights).
      const client = new WorkerClient();
      try {
        const { info } = await client.call("load", { bytes, backend: "webgpu" }, [bytes]);
        const { gpu } = await client.call("gpuInfo");
        return new Pool([client], info, "WebGPU", "webgpu", gpu);
      } catch (e) {
        client.terminate();
        throw e;
      }
    }
    const clients = [new WorkerClient()];
    try {
      const size = bytes.byteLength;
      const { info } = await clients[0].call("load", { bytes: bytes.slice(0) });
      const { n, why } = poolSize(size, info);
      for (let i = 1; i < n; i++) clients.push(new WorkerClient());
      await Promise.all(clients.slice(1).map((c, i) => {
        const b = i === n - 2 ? bytes : bytes.slice(0); // the last one gets the original
        return c.call("load", { bytes: b }, [b]);
      }));
      return new Pool(clients, info, why);
    } catch (e) {
      for (const c of clients) c.terminate();
      throw e;
    }
  }

  plan(spec) {
    return this.clients[0].call("plan", spec).then((m) => m.plan);
  }

  // units splits a plan into per-clip units of work, each a virtual video that the worker classifies with
  // views 1×CROPS; null if the virtual plan does not reproduce the real one (then the video runs as one unit).
  async units(plan, numFrames, width, height) {
    const p = this.info.protocol || {};
    const crops = Number(String(plan.protocol).split("x")[1]) || 1;
    const clips = plan.views.length / crops;
    if (!Number.isInteger(clips) || clips < 2) return null;
    const T = plan.views[0].frames.length;
    const rate = p.sampling === "dense" ? p.sampling_rate || 4 : 1;
    const vFrames = p.sampling === "dense" ? (T - 1) * rate + 1 : T;
    let vplan;
    try {
      vplan = await this.plan({ numFrames: vFrames, width, height, views: `1x${crops}` });
    } catch {
      return null;
    }
    if (vplan.views.length !== crops) return null;
    const vIdx = vplan.views[0].frames;
    const units = [];
    for (let c = 0; c < clips; c++) {
      const real = plan.views.slice(c * crops, (c + 1) * crops);
      const frames = real[0].frames;
      for (let k = 0; k < crops; k++) {
        const v = vplan.views[k], r = real[k];
        if (v.x0 !== r.x0 || v.y0 !== r.y0 || r.frames.length !== T || v.frames.length !== T) return null;
        if (r.frames.some((f, t) => f !== frames[t]) || v.frames.some((f, t) => f !== vIdx[t])) return null;
      }
      const map = new Map(); // virtual index → real frame index
      for (let t = 0; t < T; t++) {
        if (map.has(vIdx[t]) && map.get(vIdx[t]) !== frames[t]) return null;
        map.set(vIdx[t], frames[t]);
      }
      units.push({ first: c * crops, count: crops, spec: { numFrames: vFrames, width, height, views: `1x${crops}` }, map });
    }
    return units;
  }

  // classify runs every view of plan over the pool and merges them. frames: RGBA ArrayBuffers aligned with
  // plan.neededFrames (this takes them over). onProgress(done, total) counts views across the pool.
  async classify(plan, numFrames, width, height, frames, onProgress) {
    const info = this.info;
    const heads = info.heads;
    const byIndex = new Map(plan.neededFrames.map((idx, k) => [idx, frames[k]]));
    let units = await this.units(plan, numFrames, width, height);
    if (!units) {
      units = [{ first: 0, count: plan.views.length, spec: { numFrames, width, height, views: VIEWS }, map: new Map(plan.neededFrames.map((i) => [i, i])) }];
    }
    // A frame buffer is copied to every unit that reads it and transferred to the last one.
    const lastUse = new Map();
    units.forEach((u, ui) => { for (const r of u.map.values()) lastUse.set(r, ui); });

    const total = plan.views.length;
    const done = new Array(units.length).fill(0);
    const report = () => onProgress?.(done.reduce((a, b) => a + b, 0), total);
    report();
    const results = new Array(units.length);
    let next = 0;
    let failed = null;
    const runOn = async (client) => {
      while (next < units.length && !failed) {
        const ui = next++;
        const u = units[ui];
        const vframes = new Map();
        const transfer = new Set();
        for (const [v, r] of u.map) {
          const buf = byIndex.get(r);
          if (lastUse.get(r) === ui) {
            vframes.set(v, buf);
            transfer.add(buf);
          } else {
            vframes.set(v, buf.slice(0));
          }
        }
        try {
          const { result } = await client.call("classify", { ...u.spec, frames: vframes, probs: true }, [...transfer], ({ stage, done: d }) => {
            if (stage === "view") {
              done[ui] = d;
              report();
            }
          });
          results[ui] = result;
        } catch (e) {
          failed ??= e;
        }
      }
    };
    await Promise.all(this.clients.map(runOn));
    if (failed) throw failed;

    // Merge like classify.ClassifyViews: mean[k] += p / views, over the views in plan order. A unit of one
    // view gives that view's softmax exactly; a unit of several gives their mean, weighted by its share.
    const probs = {};
    for (const h of heads) {
      const mean = new Array(results[0].probs[h].length).fill(0);
      for (const [ui, r] of results.entries()) {
        const w = units[ui].count;
        for (let k = 0; k < mean.length; k++) mean[k] += w === 1 ? r.probs[h][k] / total : (r.probs[h][k] * w) / total;
      }
      probs[h] = mean;
    }
    const top = {};
    for (const h of heads) top[h] = topK(probs[h], info.labels?.[h] || [], 5);
    const perView = [];
    for (const [ui, r] of results.entries()) {
      r.per_view.forEach((pv, k) => {
        const v = plan.views[units[ui].first + k];
        perView.push({ ...pv, clip: v.clip, crop: v.crop, frames: v.frames, x0: v.x0, y0: v.y0 });
      });
    }
    const sum = (f) => results.reduce((a, r) => a + (r.timings?.[f] || 0), 0);
    const inference = sum("inference_ms");
    const out = {
      model: info.name, views: plan.protocol, heads, top, per_view: perView, frames: numFrames, probs,
      timings: { decode_ms: sum("decode_ms"), preprocess_ms: sum("preprocess_ms"), inference_ms: inference, per_view_ms: inference / total, total_ms: sum("total_ms") },
      workers: this.size, units: units.length,
    };
    if (info.config?.composition) out.actions = topActions(probs.verb, probs.noun, info.labels?.verb || [], info.labels?.noun || [], 5);
    return out;
  }
}

// topK is classify.TopK: the k most probable classes, most probable first, ties to the lower index.
function topK(probs, labels, k) {
  const idx = probs.map((_, i) => i);
  idx.sort((a, b) => (probs[b] - probs[a]) || (a - b));
  return idx.slice(0, k).map((i) => ({ index: i, label: i < labels.length ? labels[i] : String(i), prob: probs[i] }));
}

// topActions is classify's EPIC verb+noun ranking by p(verb)·p(noun) over the top-k of each head.
function topActions(verb, noun, verbLabels, nounLabels, k) {
  const acts = [];
  for (const v of topK(verb, verbLabels, k)) for (const n of topK(noun, nounLabels, k)) acts.push({ verb: v, noun: n, prob: v.prob * n.prob });
  acts.sort((a, b) => b.prob - a.prob); // stable
  return acts.slice(0, k);
}

let pool = null; // the Pool of the loaded model
const retired = []; // pools replaced by a model change, stopped once no video is using them
function retireOld() {
  for (const p of retired.splice(0)) p.terminate();
}

// ---------------------------------------------------------------- UI helpers

function showError(msg) {
  ui.error.textContent = msg;
  ui.error.hidden = false;
}
function clearError() {
  ui.error.textContent = "";
  ui.error.hidden = true;
}
function setProgress(fraction, text) {
  if (fraction == null) ui.progress.removeAttribute("value"); // indeterminate
  else ui.progress.value = Math.max(0, Math.min(1, fraction));
  if (text != null) ui.stage.textContent = text;
}
function fmtBytes(n) {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} KiB`;
  return `${n} B`;
}
function fmtProb(p) {
  return `${(100 * p).toFixed(p < 0.1 ? 2 : 1)}%`;
}
function fmtMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

// ---------------------------------------------------------------- models

let modelPromise = null; // resolves when the selected model is loaded (rejects on failure)
let loadedChoice = null; // the <select> value of the loaded model

function showModel(info) {
  const heads = info.heads || Object.keys(info.labels || {});
  const classes = heads.map((h) => (info.labels?.[h] || []).length);
  $("mi-name").textContent = info.name || "(unnamed)";
  $("mi-desc").textContent = info.description || "—";
  $("mi-classes").textContent = heads.length > 1 ? heads.map((h, i) => `${classes[i]} ${h}`).join(", ") : String(classes[0] ?? "?");
  $("mi-size").textContent = fmtBytes(info.sizeBytes);
  $("mi-quant").textContent = info.quantization === "int8" ? "int8 (quantized)" : info.quantization === "none" ? "float32" : info.quantization;
  const p = info.protocol || {};
  $("mi-views").textContent = `${p.clips}×${p.crops} (${p.clips} clip${p.clips === 1 ? "" : "s"} × ${p.crops} crop${p.crops === 1 ? "" : "s"}, ${p.sampling || "?"} sampling)`;
  $("mi-input").textContent = `${info.frames} frames of ${info.imgSize}×${info.imgSize}`;
}

async function cacheGet() {
  if (!("caches" in globalThis)) return null;
  try {
    const cache = await caches.open(CACHE_NAME);
    const resp = await cache.match(CACHE_KEY);
    if (!resp) return null;
    return { name: resp.headers.get("X-Castgo-File-Name") || "model.safetensors", resp };
  } catch {
    return null;
  }
}
async function cachePut(file) {
  if (!("caches" in globalThis)) return false;
  try {
    const cache = await caches.open(CACHE_NAME);
    await cache.put(CACHE_KEY, new Response(file, {
      headers: { "Content-Type": "application/octet-stream", "Content-Length": String(file.size), "X-Castgo-File-Name": encodeURIComponent(file.name) },
    }));
    return true;
  } catch (e) {
    console.warn("castgo: cannot cache the model:", e);
    return false;
  }
}
async function cacheDelete() {
  if ("caches" in globalThis) await caches.delete(CACHE_NAME);
}

function setCachedOption(name) {
  let opt = ui.select.querySelector('option[value="cached"]');
  if (!name) {
    opt?.remove();
    ui.forget.hidden = true;
    return;
  }
  if (!opt) {
    opt = el("option", { value: "cached" });
    ui.select.append(opt);
  }
  opt.textContent = `Your model: ${name} (cached in this browser)`;
  ui.forget.hidden = false;
}

// memoryProblem returns why a model of size bytes should not be loaded, or "".
function memoryProblem(size) {
  if (size === 0) return "the model file is empty (0 bytes)";
  if (size > HARD_CAP) {
    return `the model file is ${fmtBytes(size)}: models larger than ${fmtBytes(HARD_CAP)} are refused, because the WebAssembly module (4 GiB address space) needs about three times the file size`;
  }
  const gb = navigator.deviceMemory; // approximate device RAM in GB (Chromium only, capped at 8)
  if (gb && size * 3 > gb * 1e9 * 0.5) {
    return `the model file is ${fmtBytes(size)} but this device reports about ${gb} GB of memory: loading it needs about ${fmtBytes(size * 3)}`;
  }
  return "";
}

// loadModel loads a model into a new worker pool: choice is a URL of this site or "cached"; bytes optional.
// The previous pool keeps serving until the new one is ready, and stays if the new model fails to load.
function loadModel(choice, bytes, label) {
  setProgress(null, `Loading model ${label}…`);
  const p = (async () => {
    const t0 = performance.now();
    if (!bytes) {
      const resp = await fetch(choice);
      if (!resp.ok) throw new Error(`cannot fetch ${choice}: HTTP ${resp.status}`);
      bytes = await resp.arrayBuffer();
    }
    const want = ui.backendSelect.value;
    let next = null;
    fallbackReason = "";
    // Automatic: ask this thread for an adapter first, so a browser that has navigator.gpu but no adapter
    // does not start a worker only to find out.
    const adapter = want === "auto" && navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
    if (want === "auto" && navigator.gpu && !adapter) fallbackReason = "WebGPU unavailable: navigator.gpu yields no adapter";
    if (want === "webgpu" || adapter) {
      try {
        next = await Pool.create(bytes.slice(0), "webgpu");
      } catch (e) {
        fallbackReason = `WebGPU unavailable: ${e.message}`;
      }
    } else if (want === "auto" && !navigator.gpu) {
      fallbackReason = "WebGPU unavailable: this browser has no navigator.gpu";
    }
    next ??= await Pool.create(bytes);
    bytes = null;
    if (pool) retired.push(pool);
    pool = next;
    if (!site.busy) retireOld(); // else after the video being classified, which holds the old pool
    const info = next.info;
    loadedChoice = choice;
    site.model = info;
    site.workers = next.size;
    showModel(info);
    showBackend(next);
    setProgress(0, `Model ready (${fmtMs(performance.now() - t0)}). Pick a video.`);
    return info;
  })();
  p.catch(() => {}); // failures are reported by the caller
  modelPromise = p;
  return p;
}

let fallbackReason = ""; // why the last model load did not use WebGPU, when it was wanted

// gpuName names a WebGPU adapter from castgo.gpuInfo(): its description, else vendor and architecture.
function gpuName(g) {
  if (!g) return "GPU";
  if (/swiftshader/i.test(`${g.architecture} ${g.description}`)) return "SwiftShader";
  return g.description || [g.vendor, g.architecture].filter(Boolean).join(" ") || "GPU";
}

function showBackend(p) {
  const b = $("mi-backend");
  // Comparing needs a WebGPU device: not when the browser has none, or when getting one just failed.
  ui.compare.disabled = !navigator.gpu || (p.kind === "cpu" && fallbackReason !== "");
  ui.compare.title = ui.compare.disabled ? `WebGPU is not available here${fallbackReason ? ` (${fallbackReason})` : ""}` : "";
  b.dataset.kind = p.kind;
  b.dataset.fallback = p.kind === "cpu" ? fallbackReason : "";
  if (p.kind === "webgpu") {
    b.textContent = `WebGPU · ${gpuName(p.gpu)}`;
    b.title = `The model's compiled plan runs on the GPU (WGSL compute shaders, fp32${p.gpu?.shaderF16 ? "; the device has shader-f16, unused" : ""}) in one Web Worker: ${[p.gpu?.vendor, p.gpu?.architecture, p.gpu?.description].filter(Boolean).join(", ")}.`;
    return;
  }
  b.textContent = `WASM · ${p.size} worker${p.size === 1 ? "" : "s"}`;
  b.title = `${p.size} Web Worker${p.size === 1 ? "" : "s"}, each with its own WebAssembly instance and copy of the model (${p.why}; this device reports ${navigator.hardwareConcurrency || "?"} cores${navigator.deviceMemory ? `, ${navigator.deviceMemory} GB` : ""}).` +
    (fallbackReason ? ` ${fallbackReason}.` : "");
}

async function loadCachedModel() {
  const c = await cacheGet();
  if (!c) throw new Error("the cached model is gone");
  const blob = await c.resp.blob();
  const problem = memoryProblem(blob.size);
  if (problem) throw new Error(problem);
  return loadModel("cached", await blob.arrayBuffer(), decodeURIComponent(c.name));
}

async function selectModel(choice) {
  clearError();
  const previous = loadedChoice;
  try {
    if (choice === "cached") await loadCachedModel();
    else await loadModel(choice, null, ui.select.selectedOptions[0]?.textContent || choice);
  } catch (e) {
    showError(`Cannot load the model: ${e.message}`);
    setProgress(0, "Model not loaded.");
    if (previous) {
      ui.select.value = previous;
      modelPromise = Promise.resolve(site.model);
    }
  }
}

ui.select.addEventListener("change", () => selectModel(ui.select.value));
ui.backendSelect.addEventListener("change", () => { if (loadedChoice) selectModel(loadedChoice); });

ui.modelInput.addEventListener("change", async () => {
  const file = ui.modelInput.files?.[0];
  ui.modelInput.value = "";
  if (!file) return;
  clearError();
  const problem = memoryProblem(file.size);
  if (problem) {
    showError(`Cannot use ${file.name}: ${problem}.`);
    return;
  }
  let bytes;
  try {
    bytes = await file.arrayBuffer();
  } catch (e) {
    showError(`Cannot read ${file.name}: ${e instanceof RangeError ? "not enough memory" : e.message}.`);
    return;
  }
  const previous = loadedChoice;
  try {
    await loadModel("cached", bytes, file.name);
  } catch (e) {
    showError(`${file.name} is not a usable castgo model: ${e.message}`);
    setProgress(0, "The previous model is still in use.");
    if (previous) {
      ui.select.value = previous;
      loadedChoice = previous;
      modelPromise = Promise.resolve(site.model);
    }
    return;
  }
  const cached = await cachePut(file);
  setCachedOption(cached ? file.name : null);
  if (!cached) {
    const opt = el("option", { value: "cached", textContent: `Your model: ${file.name} (not cached)` });
    ui.select.append(opt);
  }
  ui.select.value = "cached";
});

ui.forget.addEventListener("click", async () => {
  await cacheDelete();
  const wasInUse = ui.select.value === "cached";
  setCachedOption(null);
  if (wasInUse) {
    ui.select.value = ui.select.options[0].value;
    await selectModel(ui.select.value);
  }
  setProgress(null, "Cached model forgotten.");
  ui.progress.value = 0;
});

// ---------------------------------------------------------------- video

function once(target, events, timeoutMs) {
  return new Promise((resolve, reject) => {
    const offs = [];
    const done = (fn, v) => { offs.forEach((f) => f()); clearTimeout(timer); fn(v); };
    for (const [name, ok] of Object.entries(events)) {
      const h = (e) => done(ok ? resolve : reject, e);
      target.addEventListener(name, h, { once: true });
      offs.push(() => target.removeEventListener(name, h));
    }
    const timer = timeoutMs ? setTimeout(() => done(reject, new Error("timeout")), timeoutMs) : 0;
  });
}

function mediaErrorText(v) {
  const e = v.error;
  const codes = { 1: "loading was aborted", 2: "a network error", 3: "the video could not be decoded", 4: "the format or codec is not supported by this browser" };
  return e ? `${codes[e.code] || "unknown error"}${e.message ? ` (${e.message})` : ""}` : "no video metadata";
}

async function openVideo(file) {
  const v = ui.video;
  if (v.src) URL.revokeObjectURL(v.src);
  v.pause();
  v.hidden = false;
  ui.dropHint.hidden = true;
  ui.another.hidden = false;
  v.src = URL.createObjectURL(file);
  try {
    await once(v, { loadeddata: true, error: false }, 20000);
  } catch (e) {
    throw new Error(`This browser cannot play “${file.name}”: ${e instanceof Error && e.message === "timeout" ? "no video data after 20 s" : mediaErrorText(v)}. Try an H.264 MP4 or a VP9 WebM.`);
  }
  if (!v.videoWidth || !v.videoHeight) throw new Error(`“${file.name}” has no video track this browser can show.`);
  if (!Number.isFinite(v.duration)) {
    // Some streamed WebM files have no duration: seeking far ahead makes the browser find it.
    v.currentTime = 1e9;
    await once(v, { seeked: true }, 10000).catch(() => {});
    if (!Number.isFinite(v.duration)) throw new Error(`“${file.name}” has no known duration, so its frames cannot be located.`);
  }
}

function nextFrame(v, timeoutMs) {
  return new Promise((resolve) => {
    let done = false;
    const t = setTimeout(() => { done = true; resolve(null); }, timeoutMs);
    v.requestVideoFrameCallback((now, md) => { if (!done) { clearTimeout(t); resolve(md); } });
  });
}

// seekFrame seeks to time t and resolves with the metadata of the frame presented there (null if the
// browser presented no new frame, e.g. because it was already showing it).
// When the sought frame is known not to be the one on screen, a new frame will be presented: wait for it for up
// to 5 s (a loaded machine can take far longer than a frame's time); when it is on screen, none comes: 300 ms;
// when what is on screen is unknown (v.castgoShown undefined), 1 s.
async function seekFrame(v, t, expect, tol) {
  const known = v.castgoShown !== undefined;
  const wait = !known ? 1000 : Math.abs(v.castgoShown - expect) <= tol ? 300 : 5000;
  const frame = nextFrame(v, wait);
  const seeked = once(v, { seeked: true }, 10000);
  v.currentTime = t;
  await seeked;
  let md = await Promise.race([frame, new Promise((r) => setTimeout(() => r(undefined), wait))]);
  if (md === undefined) md = null;
  if (md && Math.abs(md.mediaTime - expect) > tol) {
    const again = await nextFrame(v, wait); // a stale frame: wait for the one we sought
    if (again) md = again;
  }
  if (md) v.castgoShown = md.mediaTime;
  return md;
}

function snapFps(fps) {
  const cands = [];
  for (let n = 1; n <= 240; n++) cands.push(n, (n * 1000) / 1001);
  let best = fps;
  let bestErr = 0.005;
  for (const c of cands) {
    const err = Math.abs(fps - c) / c;
    if (err < bestErr) { best = c; bestErr = err; }
  }
  return best;
}

// measureFps plays the video for a few frames and derives the frame rate from presentation timestamps.
async function measureFps(v) {
  if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) {
    return { fps: 30, start: 0, method: "this browser has no requestVideoFrameCallback: assumed 30 fps", exact: false };
  }
  const md0 = await seekFrame(v, 0, 0, Infinity);
  const times = [];
  if (md0) times.push(md0.mediaTime);
  await new Promise((resolve) => {
    const stop = () => { clearTimeout(timer); v.removeEventListener("ended", stop); resolve(); };
    const timer = setTimeout(stop, 4000);
    v.addEventListener("ended", stop);
    const cb = (now, md) => {
      times.push(md.mediaTime);
      if (new Set(times).size >= 7) stop();
      else v.requestVideoFrameCallback(cb);
    };
    v.requestVideoFrameCallback(cb);
    v.playbackRate = 1;
    v.play().catch(stop);
  });
  v.pause();
  v.castgoShown = undefined; // pausing may present one more frame
  const uniq = [...new Set(times)].sort((a, b) => a - b);
  const steps = [];
  for (let i = 1; i < uniq.length; i++) if (uniq[i] - uniq[i - 1] > 1e-6) steps.push(uniq[i] - uniq[i - 1]);
  if (steps.length === 0) return { fps: 0, start: uniq[0] || 0, method: "only one frame was presented", exact: false };
  // A busy device drops frames while playing (headless Chromium at 30–50× CPU throttling showed an 8 fps clip's
  // every second or third frame, and not always its first), which would make the rate too low and the start late. Seeking presents every
  // frame: check that no frame lies before the first one seen, nor between it and the next.
  const r = await checkFirstFrames(v, uniq[0], uniq[0] + Math.min(...steps));
  const raw = 1 / r.step;
  const fps = snapFps(raw);
  return {
    fps, start: r.start, exact: true,
    method: `frame rate ${fps.toFixed(3)} fps from ${uniq.length} presentation timestamps (requestVideoFrameCallback mediaTime; smallest step ${(r.step * 1000).toFixed(3)} ms` +
      `${r.found ? `; ${r.found} frame${r.found === 1 ? "" : "s"} dropped in playback found by seeking` : ", checked by seeking"})`,
  };
}

// framePresentedBefore seeks to just before time t and resolves with the time of the frame the browser then
// presents, or null if none came within waitMs (no new frame: the one before t is already on screen).
async function framePresentedBefore(v, t, eps, waitMs) {
  const frame = nextFrame(v, waitMs);
  const seeked = once(v, { seeked: true }, 10000);
  v.currentTime = Math.max(0, t - eps);
  await seeked;
  const md = await frame;
  if (md) v.castgoShown = md.mediaTime;
  return md ? md.mediaTime : null;
}

// checkFirstFrames refines the first two frame times a (first presented) and b (next presented) seen in
// playback, where the frame on screen is at b or later: it seeks to just before b until the frame presented
// there is a (none was dropped between), then to just before a until no earlier frame is presented. Seeking
// before b always presents a new frame (so a slow device gets 5 s for it); before a, none comes when a is the
// first frame, which costs 1 s on videos whose first frame is not at time 0.
async function checkFirstFrames(v, a, b) {
  let found = 0;
  for (let i = 0; i < 64; i++) { // frames between a and b: each probe moves b back by at least one frame
    const t = await framePresentedBefore(v, b, Math.min((b - a) / 8, 1e-3), 5000);
    if (t === null || t <= a + 1e-6) break;
    b = t;
    found++;
  }
  for (let i = 0; i < 64 && a > 1e-3; i++) { // frames before a, which is on screen
    const t = await framePresentedBefore(v, a, Math.min((b - a) / 8, 1e-3), 1000);
    if (t === null || t >= a - 1e-6) break;
    b = a;
    a = t;
    found++;
  }
  return { start: a, step: b - a, found };
}

let runCounter = 0;

async function classifyFile(file) {
  if (site.busy) {
    showError("Still working on the previous video: wait for it to finish.");
    return;
  }
  site.busy = true;
  const run = ++runCounter;
  const t0 = performance.now();
  clearError();
  ui.resultsCard.hidden = true;
  ui.framesCard.hidden = true;
  ui.strip.replaceChildren();
  ui.predictions.replaceChildren();
  ui.meta.textContent = "";
  document.body.classList.add("busy");
  try {
    setProgress(0.01, `Opening ${file.name}…`);
    await openVideo(file);
    const v = ui.video;
    const width = v.videoWidth, height = v.videoHeight;

    setProgress(0.03, "Measuring the frame rate…");
    const rate = await measureFps(v);
    const numFrames = rate.fps > 0 ? Math.round(v.duration * rate.fps) : 1;
    ui.meta.textContent = `${file.name} · ${width}×${height} · ${v.duration.toFixed(2)} s · ${rate.fps ? `${+rate.fps.toFixed(3)} fps · ${numFrames} frames` : "1 frame"}`;
    if (numFrames < 2) {
      throw new Error(`“${file.name}” is too short: ${numFrames} frame${numFrames === 1 ? "" : "s"} (${v.duration.toFixed(3)} s). CAST classifies motion and needs a clip of at least 2 frames.`);
    }

    setProgress(0.05, "Waiting for the model…");
    while (!modelPromise) await new Promise((r) => setTimeout(r, 50));
    await modelPromise;
    if (!pool) throw new Error("No model is loaded: pick one above.");
    if (pool.dead) {
      // A worker died (out of memory?) since the last video: start the pool again with the same model.
      setProgress(0.05, "Restarting the model workers…");
      await (loadedChoice === "cached" ? loadCachedModel() : loadModel(loadedChoice, null, ui.select.selectedOptions[0]?.textContent || loadedChoice));
    }
    const runPool = pool; // a model change during this video does not stop these workers (see retireOld)
    const info = runPool.info;
    const plan = await runPool.plan({ numFrames, width, height, views: VIEWS });
    const needed = plan.neededFrames;

    // Extract exactly the needed frames.
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const frames = [];
    const checks = [];
    ui.framesCard.hidden = false;
    const tExtract = performance.now();
    for (const [k, idx] of needed.entries()) {
      if (run !== runCounter) return;
      setProgress(0.05 + 0.35 * (k / needed.length), `Extracting frame ${k + 1} of ${needed.length} (#${idx})…`);
      const expect = rate.start + idx / rate.fps;
      const md = await seekFrame(v, rate.start + (idx + 0.5) / rate.fps, expect, 0.25 / rate.fps);
      ctx.drawImage(v, 0, 0, width, height);
      const img = ctx.getImageData(0, 0, width, height);
      frames.push(img.data);
      const seen = md ? Math.round((md.mediaTime - rate.start) * rate.fps) : null;
      checks.push({ index: idx, mediaTime: md ? md.mediaTime : null, seen });
      const thumb = el("canvas", { width: Math.max(1, Math.round((48 * width) / height)), height: 48, title: `frame ${idx}` });
      thumb.getContext("2d").drawImage(canvas, 0, 0, thumb.width, thumb.height);
      ui.strip.append(el("figure", {}, thumb, el("figcaption", { textContent: `#${idx}` })));
    }
    const extractMs = performance.now() - tExtract;
    const mismatched = checks.filter((c) => c.seen != null && c.seen !== c.index);
    site.last = {
      file: file.name, width, height, duration: v.duration, fps: rate.fps, numFrames, neededFrames: needed, plan,
      checks, method: rate.method, frames: DEBUG_FRAMES ? frames.map((f) => new Uint8ClampedArray(f)) : undefined,
    };

    // Classify on the worker pool.
    const nViews = plan.views.length;
    setProgress(0.4, "Preparing the views…");
    const tModel = performance.now();
    const onViews = (p) => (done, total) => {
      if (run !== runCounter) return;
      setProgress(0.45 + 0.55 * (done / total), done < total ? `Running the model: ${done} of ${total} views done (${p.kind === "webgpu" ? "WebGPU" : `${p.size} worker${p.size === 1 ? "" : "s"}`})…` : "Averaging the views…");
    };
    // The frames stay here for "compare backends" (and for the CPU pool should WebGPU fail): workers get copies.
    site.lastVideo = { plan, numFrames, width, height, frames: frames.map((f) => f.buffer) };
    ui.compareWrap.hidden = true;
    let result;
    try {
      result = await runPool.classify(plan, numFrames, width, height, frames.map((f) => f.buffer.slice(0)), onViews(runPool));
    } catch (e) {
      if (runPool.kind !== "webgpu") throw e;
      // Device lost or any other WebGPU failure: the same views on the CPU pool.
      setProgress(0.45, `WebGPU failed (${e.message}); running on the CPU…`);
      const cpuPool = await Pool.create(await modelBytes(loadedChoice), "cpu");
      fallbackReason = `WebGPU failed: ${e.message}`;
      if (pool === runPool) {
        retired.push(pool);
        pool = cpuPool;
        showBackend(cpuPool);
      }
      result = await cpuPool.classify(plan, numFrames, width, height, frames.map((f) => f.buffer.slice(0)), onViews(cpuPool));
    }
    const modelMs = performance.now() - tModel;
    site.last.result = result;
    site.last.timings = { totalMs: performance.now() - t0, extractMs, modelMs };

    renderResult(result, info, { total: performance.now() - t0, extractMs, modelMs, nViews, rate, mismatched, numFrames });
    setProgress(1, `Done in ${fmtMs(performance.now() - t0)}.`);
  } catch (e) {
    showError(e.message);
    setProgress(0, "Stopped.");
    if (ui.video.error || !ui.video.videoWidth) {
      ui.video.hidden = true; // nothing to show: bring the drop hint back
      ui.dropHint.hidden = false;
    }
    ui.framesCard.hidden = ui.strip.childElementCount === 0;
  } finally {
    document.body.classList.remove("busy");
    site.busy = false;
    retireOld();
  }
}

// modelBytes reads the bytes of a model choice again (a URL of this site, or "cached").
async function modelBytes(choice) {
  if (choice === "cached") {
    const c = await cacheGet();
    if (!c) throw new Error("the cached model is gone");
    return (await c.resp.blob()).arrayBuffer();
  }
  const resp = await fetch(choice);
  if (!resp.ok) throw new Error(`cannot fetch ${choice}: HTTP ${resp.status}`);
  return resp.arrayBuffer();
}

// compareBackends runs the views of the last video on the CPU (WebAssembly) and on WebGPU, one forward pass
// per view on each, and shows max |Δlogit|, the relative L2 of the WebGPU logits against the CPU ones, top-1
// agreement per view and head, and ms/view of each (like `cast compare` does natively). The CPU result is
// the reference. Workers of the current pool are reused for its backend; the other one is started for this.
async function compareBackends() {
  const v = site.lastVideo;
  if (!v || !pool || site.busy) return;
  site.busy = true;
  ui.compare.disabled = true;
  clearError();
  const started = [];
  try {
    let bytes = null;
    const clientFor = async (kind) => {
      if (pool.kind === kind) return pool.clients[0];
      bytes ??= await modelBytes(loadedChoice);
      const c = new WorkerClient();
      started.push(c);
      await c.call("load", { bytes: bytes.slice(0), backend: kind });
      return c;
    };
    const runs = {};
    for (const kind of ["cpu", "webgpu"]) {
      setProgress(0.1 + (kind === "webgpu" ? 0.45 : 0), `Comparing: the views on ${kind === "cpu" ? "the CPU" : "WebGPU"}…`);
      const c = await clientFor(kind);
      const { logits } = await c.call("viewLogits", { numFrames: v.numFrames, width: v.width, height: v.height, frames: v.frames.map((f) => f.slice(0)), views: VIEWS });
      runs[kind] = logits;
    }
    const cpu = runs.cpu, gpu = runs.webgpu;
    let maxAbs = 0, num = 0, den = 0, agree = 0, total = 0;
    for (const [i, view] of cpu.views.entries()) {
      for (const h of cpu.heads) {
        const a = view[h], b = gpu.views[i][h];
        let ia = 0, ib = 0;
        for (let k = 0; k < a.length; k++) {
          const d = b[k] - a[k];
          maxAbs = Math.max(maxAbs, Math.abs(d));
          num += d * d;
          den += a[k] * a[k];
          if (a[k] > a[ia]) ia = k;
          if (b[k] > b[ib]) ib = k;
        }
        agree += ia === ib ? 1 : 0;
        total++;
      }
    }
    const rel = Math.sqrt(num / Math.max(den, 1e-30));
    const mean = (xs) => xs.reduce((x, y) => x + y, 0) / Math.max(xs.length, 1);
    const gpuInfo = pool.kind === "webgpu" ? pool.gpu : (await (await clientFor("webgpu")).call("gpuInfo")).gpu;
    const stats = { views: cpu.views.length, maxAbs, rel, agree, total, cpuMs: mean(cpu.ms), gpuMs: mean(gpu.ms), gpu: gpuName(gpuInfo) };
    site.lastCompare = stats;
    ui.compareBody.replaceChildren(
      el("tr", { dataset: { backend: "cpu", ms: String(stats.cpuMs) } }, el("td", { textContent: "WASM (CPU, 1 worker) — reference" }),
        el("td", { textContent: stats.cpuMs.toFixed(1) }), el("td", { textContent: "—" }), el("td", { textContent: "—" }), el("td", { textContent: "—" })),
      el("tr", { dataset: { backend: "webgpu", ms: String(stats.gpuMs), maxAbs: String(maxAbs), relL2: String(rel), top1: `${agree}/${total}` } },
        el("td", { textContent: `WebGPU · ${stats.gpu}` }), el("td", { textContent: stats.gpuMs.toFixed(1) }),
        el("td", { textContent: maxAbs.toExponential(2) }), el("td", { textContent: rel.toExponential(2) }),
        el("td", { textContent: `${agree} of ${total} view${total === 1 ? "" : "s"}` })));
    ui.compareWrap.hidden = false;
    setProgress(1, `Compared ${stats.views} view${stats.views === 1 ? "" : "s"} on both backends.`);
  } catch (e) {
    showError(`Cannot compare the backends: ${e.message}`);
    setProgress(0, "Comparison stopped.");
  } finally {
    for (const c of started) c.terminate();
    if (pool) showBackend(pool);
    site.busy = false;
  }
}

ui.compare.addEventListener("click", () => compareBackends());

function renderResult(r, info, t) {
  const heads = r.heads;
  ui.predictions.replaceChildren();
  for (const [hi, head] of heads.entries()) {
    if (heads.length > 1) ui.predictions.append(el("li", { className: "head" }, head));
    for (const [i, p] of r.top[head].entries()) {
      const bar = el("span", { className: "bar" });
      bar.style.setProperty("--p", String(p.prob));
      const li = el("li", { className: hi === 0 && i === 0 ? "pred first" : "pred", dataset: { label: p.label, prob: String(p.prob), index: String(p.index), head } },
        el("span", { className: "label", textContent: p.label }),
        el("span", { className: "prob", textContent: fmtProb(p.prob) }),
        bar);
      ui.predictions.append(li);
    }
  }
  for (const a of r.actions || []) {
    ui.predictions.append(el("li", { className: "pred action", dataset: { label: `${a.verb.label} ${a.noun.label}`, prob: String(a.prob), head: "action" } },
      el("span", { className: "label", textContent: `${a.verb.label} ${a.noun.label}` }), el("span", { className: "prob", textContent: fmtProb(a.prob) })));
  }
  const tm = r.timings || {};
  ui.timing.textContent = `${info.name} · ${r.views} views (${t.nViews}) over ${t.numFrames} frames · total ${fmtMs(t.total)}: frame extraction ${fmtMs(t.extractMs)}, model ${fmtMs(t.modelMs)} on ${pool?.kind === "webgpu" ? `WebGPU (${gpuName(pool.gpu)})` : `${r.workers} worker${r.workers === 1 ? "" : "s"}`} (${fmtMs(tm.per_view_ms || 0)} per view)`;
  ui.viewsBody.replaceChildren(...r.per_view.map((pv) => {
    const top = pv.top[heads[0]]?.[0];
    return el("tr", {}, el("td", { textContent: String(pv.clip) }), el("td", { textContent: String(pv.crop) }),
      el("td", { textContent: pv.frames.join(", ") }), el("td", { textContent: `(${pv.x0}, ${pv.y0})` }),
      el("td", { textContent: top ? `${top.label} (${fmtProb(top.prob)})` : "—" }));
  }));
  ui.method.textContent = `${t.rate.method}; ${t.numFrames} frames = round(duration × fps). Frame i is read at (i + ½)/fps after waiting for the browser to present it.` +
    (t.mismatched.length ? ` Warning: ${t.mismatched.length} frame(s) were presented at another index than sought (variable frame rate?): ${t.mismatched.map((c) => `${c.index}→${c.seen}`).join(", ")}.` : " Every frame's timestamp matched its index.");
  ui.resultsCard.hidden = false;
}

// Example clips (site/examples): fetched from this site and classified like a picked file.
for (const b of document.querySelectorAll('[data-testid="example"]')) {
  b.addEventListener("click", async () => {
    if (site.busy) {
      showError("Still working on the previous video: wait for it to finish.");
      return;
    }
    const src = b.dataset.src;
    const name = src.split("/").pop();
    let file;
    try {
      const resp = await fetch(src);
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      file = new File([await resp.blob()], name, { type: resp.headers.get("Content-Type") || "video/mp4" });
    } catch (e) {
      showError(`Cannot load the example ${name}: ${e.message}`);
      return;
    }
    classifyFile(file);
  });
}

ui.videoInput.addEventListener("change", () => {
  const f = ui.videoInput.files?.[0];
  ui.videoInput.value = "";
  if (f) classifyFile(f);
});
for (const name of ["dragenter", "dragover"]) {
  document.addEventListener(name, (e) => {
    if (e.dataTransfer?.types?.includes("Files")) {
      e.preventDefault();
      ui.drop.classList.add("over");
    }
  });
}
document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) ui.drop.classList.remove("over"); });
document.addEventListener("drop", (e) => {
  e.preventDefault();
  ui.drop.classList.remove("over");
  const f = [...(e.dataTransfer?.files || [])].find((x) => x.type.startsWith("video/") || /\.(mp4|m4v|mov|webm|mkv|ogv)$/i.test(x.name)) || e.dataTransfer?.files?.[0];
  if (f) classifyFile(f);
});

// ---------------------------------------------------------------- start

(async () => {
  const cached = await cacheGet();
  if (cached) {
    setCachedOption(decodeURIComponent(cached.name));
    ui.select.value = "cached";
  }
  await selectModel(ui.select.value);
  if (!site.model && ui.select.value === "cached") {
    ui.select.value = ui.select.options[0].value; // the cached model failed: fall back to the default
    await selectModel(ui.select.value);
  }
})();
