// pool.js owns the model's workers: WorkerClient (one worker.js, request/response RPC), the pool size for a
// model, and Pool, which loads a model into its workers, splits a video's plan into per-clip units, runs them
// and merges their softmax the way classify.ClassifyViews does.
//
// The model runs on a pool of N Web Workers (worker.js), each with its own WebAssembly instance and copy of
// the model, because Go's js/wasm runs on one thread. N = min(cores, parallel units of the protocol, what the
// memory budget allows); ?workers=N forces N (still at most the number of units). The unit of work is one
// temporal clip with all its crops: the frames of clip c are handed to a worker as a small "virtual video"
// whose own 1×CROPS plan is exactly clip c's views (same frames, same crop corners), and classify returns
// their softmax (probs: true). The main thread merges the units in plan order the way classify.ClassifyViews
// does (mean over views, then top-k), so the answer does not depend on N; with one crop per clip (the demo
// models) every unit is one view and the merge is bit-for-bit the one a single classify call makes.

import { FORCED_WORKERS, VIEWS } from "./dom.js";
import { topActions, topK } from "./rank.js";

// WorkerClient is one worker.js with a request/response RPC.
export class WorkerClient {
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
export class Pool {
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
