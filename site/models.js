// models.js owns the loaded model: the model and compute-backend choices, fetching or reading the model file,
// the browser cache of a user's own model, the memory checks, starting its Pool (WebGPU or the CPU pool, with
// the fallback), and the model card. Its state (the current pool, the load in flight, what was chosen) is the
// exported `state` object, which the other modules read.
//
// "webgpu": one worker runs the model's compiled plan on the GPU (castgo's WebGPU executor: WGSL kernels,
// weights uploaded once, only the logits read back). "cpu": the pool of WebAssembly workers above. "auto"
// (the default) tries WebGPU when navigator.gpu exists and falls back to the CPU pool when it yields no
// adapter or device, when loading fails, and when a run fails (device lost); ?backend=auto|webgpu|cpu
// preselects the choice (?workers=N alone selects the CPU pool).

import { $, BACKEND_PARAM, FORCED_WORKERS, clearError, el, fmtBytes, fmtMs, setProgress, showError, site, ui } from "./dom.js";
import { Pool } from "./pool.js";

const HARD_CAP = 1.5e9; // bytes: refuse bigger model files outright
const CACHE_NAME = "castgo-models-v1";
const CACHE_KEY = new URL("cached-model/model.safetensors", location.href).href; // never fetched: cache key only

if (["auto", "webgpu", "cpu"].includes(BACKEND_PARAM)) ui.backendSelect.value = BACKEND_PARAM;
else if (FORCED_WORKERS) ui.backendSelect.value = "cpu"; // ?workers=N asks for the pool

export const state = {
  pool: null, // the Pool of the loaded model
  retired: [], // pools replaced by a model change, stopped once no video is using them
  modelPromise: null, // resolves when the selected model is loaded (rejects on failure)
  loadedChoice: null, // the <select> value of the loaded model
  fallbackReason: "", // why the last model load did not use WebGPU, when it was wanted
};

// retireOld stops the pools that a model change replaced.
export function retireOld() {
  for (const p of state.retired.splice(0)) p.terminate();
}

export function showModel(info) {
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

export async function cacheGet() {
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

export function setCachedOption(name) {
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
export function memoryProblem(size) {
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
export function loadModel(choice, bytes, label) {
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
    state.fallbackReason = "";
    // Automatic: ask this thread for an adapter first, so a browser that has navigator.gpu but no adapter
    // does not start a worker only to find out.
    const adapter = want === "auto" && navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
    if (want === "auto" && navigator.gpu && !adapter) state.fallbackReason = "WebGPU unavailable: navigator.gpu yields no adapter";
    if (want === "webgpu" || adapter) {
      try {
        next = await Pool.create(bytes.slice(0), "webgpu");
      } catch (e) {
        state.fallbackReason = `WebGPU unavailable: ${e.message}`;
      }
    } else if (want === "auto" && !navigator.gpu) {
      state.fallbackReason = "WebGPU unavailable: this browser has no navigator.gpu";
    }
    next ??= await Pool.create(bytes);
    bytes = null;
    if (state.pool) state.retired.push(state.pool);
    state.pool = next;
    if (!site.busy) retireOld(); // else after the video being classified, which holds the old pool
    const info = next.info;
    state.loadedChoice = choice;
    site.model = info;
    site.workers = next.size;
    showModel(info);
    showBackend(next);
    setProgress(0, `Model ready (${fmtMs(performance.now() - t0)}). Pick a video.`);
    document.dispatchEvent(new CustomEvent("castgo:model", { detail: info })); // live.js follows the model
    return info;
  })();
  p.catch(() => {}); // failures are reported by the caller
  state.modelPromise = p;
  return p;
}

// gpuName names a WebGPU adapter from castgo.gpuInfo(): its description, else vendor and architecture.
export function gpuName(g) {
  if (!g) return "GPU";
  if (/swiftshader/i.test(`${g.architecture} ${g.description}`)) return "SwiftShader";
  return g.description || [g.vendor, g.architecture].filter(Boolean).join(" ") || "GPU";
}

export function showBackend(p) {
  const b = $("mi-backend");
  // Comparing needs a WebGPU device: not when the browser has none, or when getting one just failed.
  ui.compare.disabled = !navigator.gpu || (p.kind === "cpu" && state.fallbackReason !== "");
  ui.compare.title = ui.compare.disabled ? `WebGPU is not available here${state.fallbackReason ? ` (${state.fallbackReason})` : ""}` : "";
  b.dataset.kind = p.kind;
  b.dataset.fallback = p.kind === "cpu" ? state.fallbackReason : "";
  if (p.kind === "webgpu") {
    b.textContent = `WebGPU · ${gpuName(p.gpu)}`;
    b.title = `The model's compiled plan runs on the GPU (WGSL compute shaders, fp32${p.gpu?.shaderF16 ? "; the device has shader-f16, unused" : ""}) in one Web Worker: ${[p.gpu?.vendor, p.gpu?.architecture, p.gpu?.description].filter(Boolean).join(", ")}.`;
    return;
  }
  b.textContent = `WASM · ${p.size} worker${p.size === 1 ? "" : "s"}`;
  b.title = `${p.size} Web Worker${p.size === 1 ? "" : "s"}, each with its own WebAssembly instance and copy of the model (${p.why}; this device reports ${navigator.hardwareConcurrency || "?"} cores${navigator.deviceMemory ? `, ${navigator.deviceMemory} GB` : ""}).` +
    (state.fallbackReason ? ` ${state.fallbackReason}.` : "");
}

export async function loadCachedModel() {
  const c = await cacheGet();
  if (!c) throw new Error("the cached model is gone");
  const blob = await c.resp.blob();
  const problem = memoryProblem(blob.size);
  if (problem) throw new Error(problem);
  return loadModel("cached", await blob.arrayBuffer(), decodeURIComponent(c.name));
}

export async function selectModel(choice) {
  clearError();
  const previous = state.loadedChoice;
  try {
    if (choice === "cached") await loadCachedModel();
    else await loadModel(choice, null, ui.select.selectedOptions[0]?.textContent || choice);
  } catch (e) {
    showError(`Cannot load the model: ${e.message}`);
    setProgress(0, "Model not loaded.");
    if (previous) {
      ui.select.value = previous;
      state.modelPromise = Promise.resolve(site.model);
    }
  }
}

ui.select.addEventListener("change", () => selectModel(ui.select.value));
ui.backendSelect.addEventListener("change", () => { if (state.loadedChoice) selectModel(state.loadedChoice); });

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
  const previous = state.loadedChoice;
  try {
    await loadModel("cached", bytes, file.name);
  } catch (e) {
    showError(`${file.name} is not a usable castgo model: ${e.message}`);
    setProgress(0, "The previous model is still in use.");
    if (previous) {
      ui.select.value = previous;
      state.loadedChoice = previous;
      state.modelPromise = Promise.resolve(site.model);
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

// modelBytes reads the bytes of a model choice again (a URL of this site, or "cached").
export async function modelBytes(choice) {
  if (choice === "cached") {
    const c = await cacheGet();
    if (!c) throw new Error("the cached model is gone");
    return (await c.resp.blob()).arrayBuffer();
  }
  const resp = await fetch(choice);
  if (!resp.ok) throw new Error(`cannot fetch ${choice}: HTTP ${resp.status}`);
  return resp.arrayBuffer();
}
