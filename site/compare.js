// compare.js owns "Compare backends": the last video's views run on the CPU (WebAssembly) and on WebGPU, and
// the table of how far their logits differ.

import { clearError, el, setProgress, showError, site, ui, VIEWS } from "./dom.js";
import { gpuName, modelBytes, showBackend, state } from "./models.js";
import { WorkerClient } from "./pool.js";
import { argmax } from "./rank.js";

// compareBackends runs the views of the last video on the CPU (WebAssembly) and on WebGPU, one forward pass
// per view on each, and shows max |Δlogit|, the relative L2 of the WebGPU logits against the CPU ones, top-1
// agreement per view and head, and ms/view of each (like `cast compare` does natively). The CPU result is
// the reference. Workers of the current pool are reused for its backend; the other one is started for this.
export async function compareBackends() {
  const v = site.lastVideo;
  if (!v || !state.pool || site.busy) return;
  site.busy = true;
  ui.compare.disabled = true;
  clearError();
  const started = [];
  try {
    let bytes = null;
    const clientFor = async (kind) => {
      if (state.pool.kind === kind) return state.pool.clients[0];
      bytes ??= await modelBytes(state.loadedChoice);
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
        for (let k = 0; k < a.length; k++) {
          const d = b[k] - a[k];
          maxAbs = Math.max(maxAbs, Math.abs(d));
          num += d * d;
          den += a[k] * a[k];
        }
        agree += argmax(a) === argmax(b) ? 1 : 0;
        total++;
      }
    }
    const rel = Math.sqrt(num / Math.max(den, 1e-30));
    const mean = (xs) => xs.reduce((x, y) => x + y, 0) / Math.max(xs.length, 1);
    const gpuInfo = state.pool.kind === "webgpu" ? state.pool.gpu : (await (await clientFor("webgpu")).call("gpuInfo")).gpu;
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
    if (state.pool) showBackend(state.pool);
    site.busy = false;
  }
}

