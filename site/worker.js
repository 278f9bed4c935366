// castgo Web Worker: loads wasm_exec.js + cast.wasm, holds the current model and runs castgo.classify off
// the main thread; app.js runs a pool of these, one WebAssembly instance each. Messages in: {id, op: "load",
// url | bytes, backend?: "cpu" | "webgpu"}, {id, op: "dispose"}, {id, op: "gpuInfo"}, {id, op: "plan", numFrames, width, height,
// views?}, {id, op: "classify", numFrames, width, height, frames: [ArrayBuffer…] | Map(index → ArrayBuffer),
// views?, probs?}, {id, op: "viewLogits", numFrames, width, height, frames, views?} (raw logits per view, for
// the backend comparison), {id, op: "explain", numFrames, width, height, frames, views?, view, methods?} (the
// maps of castgo.explain, for the page's "What the model looked at") and {id, op: "logits", clip: Float32Array, batch}. Messages out: {id, ok: true, …},
// {id, ok: false, error}, {id, progress: {stage, done, total}}, and {fatal} when the Go runtime exits.
"use strict";
importScripts("wasm_exec.js");

let current = null; // {handle, info}

const ready = (async () => {
  const go = new Go();
  let instance;
  try {
    ({ instance } = await WebAssembly.instantiateStreaming(fetch("cast.wasm"), go.importObject));
  } catch (e) {
    // A server that does not send application/wasm: fall back to compiling the bytes.
    const resp = await fetch("cast.wasm");
    if (!resp.ok) throw new Error(`cannot fetch cast.wasm: HTTP ${resp.status}`);
    ({ instance } = await WebAssembly.instantiate(await resp.arrayBuffer(), go.importObject));
  }
  go.run(instance).then(
    () => postMessage({ fatal: "the WebAssembly module exited (out of memory?) — reload the page" }),
    (e) => postMessage({ fatal: `the WebAssembly module crashed: ${e && e.message ? e.message : e}` }),
  );
  return globalThis.castgoReady;
})();

// sync returns the result of a synchronous castgo function, which under a CSP without 'unsafe-eval'
// returns its Error instead of throwing it.
function sync(v) {
  if (v instanceof Error) throw v;
  return v;
}

function message(e) {
  if (e instanceof RangeError || /out of memory|allocation|Array buffer allocation failed/i.test(String(e && e.message))) {
    return `not enough memory: ${e.message}`;
  }
  return e && e.message ? e.message : String(e);
}

async function handle(msg) {
  const castgo = await ready;
  switch (msg.op) {
    case "init":
      return { version: castgo.version };
    case "load": {
      let bytes = msg.bytes;
      if (!bytes) {
        const resp = await fetch(msg.url);
        if (!resp.ok) throw new Error(`cannot fetch ${msg.url}: HTTP ${resp.status}`);
        bytes = await resp.arrayBuffer();
      }
      const loaded = await castgo.loadModel(bytes, { backend: msg.backend || "cpu" });
      bytes = null;
      if (current) sync(castgo.dispose(current.handle));
      current = loaded;
      return { info: loaded.info };
    }
    case "dispose": // release the model now (tests; the page's load replaces it)
      if (current) sync(castgo.dispose(current.handle));
      current = null;
      return {};
    case "gpuInfo":
      return { gpu: await castgo.gpuInfo() };
    case "destroyGPU": // tests: lose the device, as a driver reset would
      return { destroyed: sync(castgo.destroyGPU()) };
    case "logits": {
      if (!current) throw new Error("no model is loaded");
      const out = await castgo.logits(current.handle, msg.clip, msg.batch || 1);
      return { logits: out };
    }
    case "viewLogits": {
      if (!current) throw new Error("no model is loaded");
      const frames = msg.frames instanceof Map
        ? new Map([...msg.frames].map(([i, b]) => [i, new Uint8Array(b)]))
        : msg.frames.map((b) => new Uint8Array(b));
      return { logits: await castgo.viewLogits(current.handle, { numFrames: msg.numFrames, width: msg.width, height: msg.height, frames, views: msg.views }) };
    }
    case "explain": {
      if (!current) throw new Error("no model is loaded");
      if (typeof castgo.explain !== "function") throw new Error("this build of cast.wasm has no castgo.explain");
      const frames = msg.frames instanceof Map
        ? new Map([...msg.frames].map(([i, b]) => [i, new Uint8Array(b)]))
        : msg.frames.map((b) => new Uint8Array(b));
      const req = { numFrames: msg.numFrames, width: msg.width, height: msg.height, frames, views: msg.views, view: msg.view };
      if (msg.methods) req.methods = msg.methods;
      return { explain: sync(await castgo.explain(current.handle, req)) };
    }
    case "plan": {
      if (!current) throw new Error("no model is loaded");
      return { plan: sync(castgo.planViews(current.handle, { numFrames: msg.numFrames, width: msg.width, height: msg.height, views: msg.views })) };
    }
    case "classify": {
      if (!current) throw new Error("no model is loaded");
      // frames: an array aligned with neededFrames, or a Map from frame index to RGBA bytes.
      const frames = msg.frames instanceof Map
        ? new Map([...msg.frames].map(([i, b]) => [i, new Uint8Array(b)]))
        : msg.frames.map((b) => new Uint8Array(b));
      const result = await castgo.classify(current.handle, {
        numFrames: msg.numFrames, width: msg.width, height: msg.height, frames, top: 5,
        views: msg.views, probs: !!msg.probs,
        onProgress: (stage, done, total) => postMessage({ id: msg.id, progress: { stage, done, total } }),
      });
      return { result };
    }
    default:
      throw new Error(`unknown operation ${msg.op}`);
  }
}

onmessage = async (ev) => {
  const msg = ev.data;
  try {
    const out = await handle(msg);
    postMessage({ id: msg.id, ok: true, ...out });
  } catch (e) {
    postMessage({ id: msg.id, ok: false, error: message(e) });
  }
};
