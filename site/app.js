// app.js wires the page together (the module the HTML loads): picking, dropping or clicking a video runs
// classifyFile (open it, measure its rate, plan its views, extract exactly those frames, run them on the
// model's pool, show the result); it also starts the live camera mode (live.js), the explain overlay
// (explain.js) and the backend comparison (compare.js), and loads the default (or cached) model at start.
// The modules: dom.js (elements, status line, formatters), models.js (model choice, cache, compute backend),
// pool.js (the model's workers), frames.js (exact frame extraction), results.js (predictions, strip, views),
// rank.js (top-k), compare.js (CPU vs WebGPU), live.js (camera), explain.js (what the model looked at).
// The model runs in a pool of Web Workers (worker.js); this thread only talks to them with postMessage.

import { compareBackends } from "./compare.js";
import { DEBUG_FRAMES, VIEWS, clearError, fmtMs, setProgress, showError, site, ui } from "./dom.js";
import { initExplain, resetExplain } from "./explain.js";
import { extractFrames, measureFps, openVideo } from "./frames.js";
import { initLive, stop as stopLive } from "./live.js";
import { cacheGet, gpuName, loadCachedModel, loadModel, modelBytes, retireOld, selectModel, setCachedOption, showBackend, state } from "./models.js";
import { Pool } from "./pool.js";
import { addThumb, clearResults, renderResult } from "./results.js";

// Tests: lose the WebGPU device of the current pool (the next video must fall back to the CPU pool).
site.destroyGPU = () => (state.pool?.kind === "webgpu" ? state.pool.clients[0].call("destroyGPU") : Promise.resolve(null));
// Tests: castgo.gpuInfo() of the current WebGPU pool (its run counters say whether the GPU ran), else null.
site.gpuInfo = () => (state.pool?.kind === "webgpu" ? state.pool.clients[0].call("gpuInfo").then((m) => m.gpu) : Promise.resolve(null));

let runCounter = 0;

async function classifyFile(file) {
  if (site.busy) {
    showError("Still working on the previous video: wait for it to finish.");
    return;
  }
  site.busy = true;
  stopLive(); // one thing at a time on the model's workers
  const run = ++runCounter;
  const t0 = performance.now();
  clearError();
  clearResults();
  resetExplain();
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
    while (!state.modelPromise) await new Promise((r) => setTimeout(r, 50));
    await state.modelPromise;
    if (!state.pool) throw new Error("No model is loaded: pick one above.");
    if (state.pool.dead) {
      // A worker died (out of memory?) since the last video: start the pool again with the same model.
      setProgress(0.05, "Restarting the model workers…");
      await (state.loadedChoice === "cached" ? loadCachedModel() : loadModel(state.loadedChoice, null, ui.select.selectedOptions[0]?.textContent || state.loadedChoice));
    }
    const runPool = state.pool; // a model change during this video does not stop these workers (see retireOld)
    const info = runPool.info;
    const plan = await runPool.plan({ numFrames, width, height, views: VIEWS });
    const needed = plan.neededFrames;

    // Extract exactly the needed frames.
    ui.framesCard.hidden = false;
    const tExtract = performance.now();
    const got = await extractFrames(v, rate, needed, (k, idx) => {
      if (run !== runCounter) return false;
      setProgress(0.05 + 0.35 * (k / needed.length), `Extracting frame ${k + 1} of ${needed.length} (#${idx})…`);
      return true;
    }, addThumb);
    if (!got) return;
    const { frames, checks } = got;
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
      const cpuPool = await Pool.create(await modelBytes(state.loadedChoice), "cpu");
      state.fallbackReason = `WebGPU failed: ${e.message}`;
      if (state.pool === runPool) {
        state.retired.push(state.pool);
        state.pool = cpuPool;
        showBackend(cpuPool);
      }
      result = await cpuPool.classify(plan, numFrames, width, height, frames.map((f) => f.buffer.slice(0)), onViews(cpuPool));
    }
    const modelMs = performance.now() - tModel;
    site.last.result = result;
    site.last.timings = { totalMs: performance.now() - t0, extractMs, modelMs };

    const cur = state.pool;
    const ranOn = cur?.kind === "webgpu" ? `WebGPU (${gpuName(cur.gpu)})` : `${result.workers} worker${result.workers === 1 ? "" : "s"}`;
    renderResult(result, info, { total: performance.now() - t0, extractMs, modelMs, nViews, rate, mismatched, numFrames, ranOn });
    document.dispatchEvent(new CustomEvent("castgo:result", { detail: site.lastVideo })); // explain.js
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


ui.compare.addEventListener("click", () => compareBackends());

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

initLive();
initExplain();

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
