// explain.js owns "What the model looked at": for the last video, the maps of castgo.explain (computed in a
// CPU worker: the pool's first worker, or, when the model runs on WebGPU, a CPU worker started for this) for
// one view of the plan, drawn over that view's frames in the strip, for the chosen method.
//
// castgo.explain(handle, request) takes classify's request (numFrames, width, height, frames aligned with
// the plan's neededFrames, views) plus view (its index in the plan) and optional methods (names), and returns
// {methods: {NAME: [{view, frame, rect: [x0, y0, x1, y1], grid: [[…], …]}]}}: per frame of the video, the
// rectangle of the video's pixels that the grid covers and rows × cols of scores. Scores are not normalised;
// they are scaled here, per method and view, from the lowest (transparent) to the highest (opaque) over all
// the view's frames, so the frames of one view can be compared with each other but not across methods.

import { $, VIEWS, el, site, ui } from "./dom.js";
import { modelBytes, state } from "./models.js";
import { WorkerClient } from "./pool.js";

const ex = { toggle: $("explain"), view: $("explain-view"), method: $("explain-method"), status: $("explain-status") };

// Exposed for tests: the maps drawn ({method, view, frames: [{frame, min, max, cells}]}) and the last error.
const exp = (site.explain = { drawn: null, error: "" });

let cache = new Map(); // view index → castgo.explain's result, for the last video
let token = 0; // bumped by every new video, model or request
let cpu = null; // {client, choice}: the CPU worker started for a WebGPU pool

// resetExplain forgets the maps of the previous video (the toggle stays: the next video's maps follow).
export function resetExplain() {
  token++;
  cache = new Map();
  ex.view.replaceChildren();
  ex.method.replaceChildren();
  ex.status.textContent = "";
  exp.drawn = null;
  exp.error = "";
  clearOverlays();
}

function clearOverlays() {
  ui.strip.classList.remove("explaining");
  for (const c of ui.strip.querySelectorAll("canvas.overlay")) c.remove();
  for (const f of ui.strip.querySelectorAll("figure.off")) f.classList.remove("off");
}

// cpuClient returns a worker that runs the model on the CPU: explain's gradients and attention maps are
// computed by the CPU backend, also when the page runs the model on WebGPU.
async function cpuClient() {
  const pool = state.pool;
  if (!pool) throw new Error("no model is loaded");
  if (pool.kind === "cpu" && !pool.dead) return pool.clients[0];
  if (cpu && cpu.choice === state.loadedChoice && !cpu.client.dead) return cpu.client;
  cpu?.client.terminate();
  const client = new WorkerClient();
  cpu = { client, choice: state.loadedChoice };
  await client.call("load", { bytes: await modelBytes(state.loadedChoice), backend: "cpu" });
  return client;
}

async function update() {
  clearOverlays();
  exp.drawn = null;
  if (!ex.toggle.checked) {
    ex.status.textContent = "";
    return;
  }
  const v = site.lastVideo;
  if (!v) {
    ex.status.textContent = "classify a video first";
    return;
  }
  const view = Number(ex.view.value) || 0;
  const my = ++token;
  let res = cache.get(view);
  if (!res) {
    ex.status.textContent = "computing the maps on the CPU…";
    try {
      const client = await cpuClient();
      const m = await client.call("explain", {
        numFrames: v.numFrames, width: v.width, height: v.height, frames: v.frames.map((f) => f.slice(0)), views: VIEWS, view,
      });
      res = m.explain;
    } catch (e) {
      if (my === token) {
        exp.error = e.message;
        ex.status.textContent = `Cannot compute the maps: ${e.message}`;
      }
      return;
    }
    if (my !== token) return;
    cache.set(view, res);
  }
  const names = Object.keys(res?.methods || {});
  if (names.length === 0) {
    ex.status.textContent = "castgo.explain returned no maps";
    return;
  }
  const chosen = names.includes(ex.method.value) ? ex.method.value : names[0];
  if ([...ex.method.options].map((o) => o.value).join("|") !== names.join("|")) {
    ex.method.replaceChildren(...names.map((n) => el("option", { value: n, textContent: n })));
  }
  ex.method.value = chosen;
  draw(chosen, view, (res.methods[chosen] || []).filter((m) => m.view === undefined || m.view === view), v);
}

// VIRIDIS are stops of the viridis colour map (dark violet → yellow), perceptually even and readable by the
// colour-blind.
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

// heat maps a score in [0, 1] to RGBA: viridis, more opaque as it grows (low scores let the frame through).
function heat(n) {
  const x = Math.min(1, Math.max(0, n)) * (VIRIDIS.length - 1), i = Math.min(Math.floor(x), VIRIDIS.length - 2), f = x - i;
  const rgb = VIRIDIS[i].map((c, k) => Math.round(c + (VIRIDIS[i + 1][k] - c) * f));
  return [...rgb, Math.round(255 * (0.3 + 0.5 * n))];
}

function draw(method, view, maps, v) {
  let lo = Infinity, hi = -Infinity;
  for (const m of maps) for (const row of m.grid) for (const x of row) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
  const span = hi > lo ? hi - lo : 1;
  const frames = new Set(maps.map((m) => m.frame));
  ui.strip.classList.add("explaining"); // larger frames, before the overlays take their sizes
  for (const f of ui.strip.querySelectorAll("figure[data-frame]")) f.classList.toggle("off", !frames.has(Number(f.dataset.frame)));
  const drawn = [];
  for (const m of maps) {
    const fig = ui.strip.querySelector(`figure[data-frame="${m.frame}"]`);
    const thumb = fig?.querySelector("canvas:not(.overlay)");
    const rows = m.grid.length, cols = m.grid[0]?.length || 0;
    if (!thumb || !rows || !cols) continue;
    const cells = document.createElement("canvas");
    cells.width = cols;
    cells.height = rows;
    const img = cells.getContext("2d").createImageData(cols, rows);
    let fmin = Infinity, fmax = -Infinity;
    m.grid.forEach((row, r) => row.forEach((x, c) => {
      fmin = Math.min(fmin, x);
      fmax = Math.max(fmax, x);
      img.data.set(heat((x - lo) / span), 4 * (r * cols + c));
    }));
    cells.getContext("2d").putImageData(img, 0, 0);
    const overlay = el("canvas", { className: "overlay", width: thumb.width, height: thumb.height, title: `${method}, frame ${m.frame}` });
    overlay.dataset.method = method;
    overlay.dataset.frame = String(m.frame);
    overlay.style.width = `${thumb.offsetWidth}px`;
    overlay.style.height = `${thumb.offsetHeight}px`;
    const sx = thumb.width / v.width, sy = thumb.height / v.height;
    const [x0, y0, x1, y1] = m.rect;
    const ctx = overlay.getContext("2d");
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(cells, x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
    fig.append(overlay);
    drawn.push({ frame: m.frame, min: fmin, max: fmax, cells: rows * cols, rect: m.rect });
  }
  exp.drawn = { method, view, frames: drawn };
  ex.status.textContent = drawn.length
    ? `${method}: ${drawn.length} frame${drawn.length === 1 ? "" : "s"} of view ${view}; yellow = highest score, violet = lowest (scaled from ${lo.toPrecision(3)} to ${hi.toPrecision(3)} over this view)`
    : `${method}: no map matches a frame of the strip`;
}

// initExplain wires the toggle and the selectors, and follows new results and models.
export function initExplain() {
  ex.toggle.addEventListener("change", update);
  ex.view.addEventListener("change", update);
  ex.method.addEventListener("change", update);
  document.addEventListener("castgo:result", (e) => {
    const plan = e.detail?.plan;
    ex.view.replaceChildren(...(plan?.views || []).map((v, i) => el("option", { value: String(i), textContent: `${i}: clip ${v.clip}, crop ${v.crop}` })));
    if (ex.toggle.checked) update();
  });
  document.addEventListener("castgo:model", () => {
    cpu?.client.terminate();
    cpu = null;
    cache = new Map();
    token++;
    if (ex.toggle.checked) update();
  });
}
