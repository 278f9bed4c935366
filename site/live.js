// live.js owns the live camera mode: the camera stream (getUserMedia), the rolling window of its frames, the
// window length (from the model file's castgo.clip_seconds, or the fallback below; the user can change it),
// classifying each new window on the loaded model's pool (WebGPU or the CPU workers, as chosen), and the live
// top-5, the timeline of top-1 labels and the rate and latency. The frames stay in this page: they go to the
// model's workers and nowhere else.
//
// Sampling. The window of W seconds is read as a virtual video of N frames, frame j showing the camera at
// time end − W + (j + ½)·W/N (the latest captured frame at or before that time), and planned with the
// model's own protocol (castgo.planViews), as a clip file of that length would be: segment sampling with T
// frames and C clips reads N = T·C frames (clip 0 the segment starts, clip 1 the midpoints, so every frame
// is read once); dense sampling at stride r reads N = T·r. A new window is classified as soon as the camera
// has moved on by one of the model's frame steps (W/T) and the previous window's result is in.
//
// Window length. castgo.clip_seconds says how long the model's training clips were (the default model: 16
// frames at 8 fps = 2 s). A model file without it gets a fallback: dense sampling's T·r frames at 30 fps
// (Kinetics' rate), and for segment sampling 4 s (about the median length of an SSv2 clip).

import { $, VIEWS, el, fmtMs, showError, site } from "./dom.js";
import { state } from "./models.js";
import { renderPredictions } from "./results.js";

const TIMELINE = 16; // top-1 labels kept in the timeline
const RATE_WINDOW_MS = 5000; // classifications per second are counted over the last 5 s

const lv = {
  button: $("camera"), windowInput: $("live-window"), why: $("live-window-why"), view: $("live-view"),
  video: $("live-video"), top: $("live-top"), predictions: $("live-predictions"), timeline: $("live-timeline"),
  stats: $("live-stats"),
};

// Exposed for tests: the live mode's state and the history of its readings ({label, latencyMs, at}).
const live = (site.live = { running: false, readings: [], windowSeconds: null, error: "" });

let stream = null;
let captured = []; // {t (ms, performance.now() clock), rgba: Uint8ClampedArray}, oldest first
let capture = null; // {canvas, ctx, w, h}
let busy = false; // a window is being classified
let lastEnd = -Infinity; // the end time of the last classified window
let planCache = null; // {key, plan}
let userWindow = false; // the user typed a window length: a model change keeps it
let session = 0; // bumped by every start and stop, so a stale callback does nothing

// windowFor returns the window length in seconds for a model's info, and why.
export function windowFor(info) {
  if (info?.clipSeconds > 0) return { seconds: info.clipSeconds, why: `the length of the model's training clips (castgo.clip_seconds)` };
  const p = info?.protocol || {}, T = info?.frames || 16;
  if (p.sampling === "dense") {
    const r = p.sampling_rate || 4;
    return { seconds: +((T * r) / 30).toFixed(2), why: `the model file does not say how long its training clips were: ${T}×${r} frames at 30 fps` };
  }
  return { seconds: 4, why: "the model file does not say how long its training clips were: 4 s, a typical SSv2 clip" };
}

// virtualFrames is N, the number of frames of the virtual video a window is read as (see the header).
function virtualFrames(info) {
  const p = info.protocol || {}, T = info.frames || 16;
  if (p.sampling === "dense") return T * (p.sampling_rate || 4);
  return T * Math.min(Math.max(p.clips || 1, 1), 2);
}

function windowSeconds() {
  const s = Number(lv.windowInput.value);
  return Number.isFinite(s) && s >= 0.5 && s <= 20 ? s : windowFor(site.model).seconds;
}

function followModel(info) {
  const w = windowFor(info);
  if (!userWindow) lv.windowInput.value = String(w.seconds);
  lv.why.textContent = userWindow ? `(the model suggests ${w.seconds} s: ${w.why})` : `from ${w.why}`;
  planCache = null;
}

// cameraError turns a getUserMedia failure into a message that says what to do.
function cameraError(e) {
  switch (e?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Camera permission was denied: allow this page to use the camera (the camera icon in the address bar or the site settings), then press “Use camera” again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera was found: connect a camera, then press “Use camera” again.";
    case "NotReadableError":
    case "AbortError":
      return "The camera could not be started: another application may be using it.";
    default:
      return `The camera could not be started: ${e?.message || e}`;
  }
}

async function start() {
  if (live.running) return;
  if (site.busy) {
    showError("Still working on a video: start the camera when it is done.");
    return;
  }
  if (!navigator.mediaDevices?.getUserMedia) {
    fail("This browser gives this page no camera access (getUserMedia needs a secure context: https or localhost).");
    return;
  }
  const my = ++session;
  lv.button.disabled = true;
  live.error = "";
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (e) {
    lv.button.disabled = false;
    if (my === session) fail(cameraError(e));
    return;
  }
  if (my !== session) { // stopped while the permission prompt was open
    for (const t of stream.getTracks()) t.stop();
    return;
  }
  live.running = true;
  live.readings = [];
  captured = [];
  lastEnd = -Infinity;
  lv.button.disabled = false;
  lv.button.textContent = "Stop camera";
  lv.button.classList.add("secondary");
  lv.view.hidden = false;
  lv.top.textContent = "waiting for frames…";
  lv.top.dataset.label = "";
  lv.predictions.replaceChildren();
  lv.timeline.replaceChildren();
  lv.stats.textContent = "";
  lv.video.srcObject = stream;
  stream.getVideoTracks()[0]?.addEventListener("ended", () => { if (my === session) fail("The camera stopped (unplugged, or its permission was withdrawn)."); });
  await lv.video.play().catch(() => {});
  const onFrame = () => {
    if (my !== session) return;
    grab();
    maybeClassify(my);
    lv.video.requestVideoFrameCallback(onFrame);
  };
  lv.video.requestVideoFrameCallback(onFrame);
}

// stop releases the camera: every track is stopped and the frames are dropped.
export function stop() {
  session++;
  if (stream) for (const t of stream.getTracks()) t.stop();
  stream = null;
  lv.video.srcObject = null;
  captured = [];
  live.running = false;
  lv.button.disabled = false;
  lv.button.textContent = "Use camera";
  lv.button.classList.remove("secondary");
}

function fail(msg) {
  stop();
  live.error = msg;
  showError(msg);
}

// grab draws the camera's current frame, scaled so that its short side is the model's input size (the model
// resizes it there anyway), and keeps it while it can still be in a window.
function grab() {
  const v = lv.video;
  if (!v.videoWidth || !v.videoHeight || !site.model) return;
  const S = site.model.imgSize || 224;
  const k = Math.min(1, S / Math.min(v.videoWidth, v.videoHeight));
  const w = Math.max(1, Math.round(v.videoWidth * k)), h = Math.max(1, Math.round(v.videoHeight * k));
  if (!capture || capture.w !== w || capture.h !== h) {
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    capture = { canvas, ctx: canvas.getContext("2d", { willReadFrequently: true }), w, h };
    captured = [];
  }
  capture.ctx.drawImage(v, 0, 0, w, h);
  const now = performance.now();
  captured.push({ t: now, rgba: capture.ctx.getImageData(0, 0, w, h).data });
  const keep = now - windowSeconds() * 1000 - 1000;
  while (captured.length > 2 && captured[1].t < keep) captured.shift();
}

// frameAt returns the latest captured frame at or before time t (the oldest one if none is).
function frameAt(t) {
  let best = captured[0];
  for (const c of captured) {
    if (c.t <= t) best = c;
    else break;
  }
  return best;
}

async function maybeClassify(my) {
  const pool = state.pool, info = site.model;
  if (busy || !pool || !info || captured.length < 2) return;
  const W = windowSeconds() * 1000;
  const end = captured[captured.length - 1].t;
  const T = info.frames || 16;
  if (end - captured[0].t < W - W / T) return; // the window is not full yet
  if (end - lastEnd < W / T) return; // not enough new frames since the last window
  busy = true;
  lastEnd = end;
  const t0 = performance.now();
  try {
    const N = virtualFrames(info), { w, h } = capture;
    const key = `${info.name}|${info.sizeBytes}|${N}|${w}x${h}|${VIEWS}`;
    if (planCache?.key !== key) planCache = { key, plan: await pool.plan({ numFrames: N, width: w, height: h, views: VIEWS }) };
    const plan = planCache.plan;
    const start = end - W;
    const frames = plan.neededFrames.map((j) => frameAt(start + ((j + 0.5) * W) / N).rgba.slice().buffer);
    const r = await pool.classify(plan, N, w, h, frames);
    if (my !== session) return;
    show(r, info, performance.now() - end, performance.now() - t0, plan.views.length);
  } catch (e) {
    // A model change retires the pool this window ran on: the next window runs on the new one.
    if (my === session && pool === state.pool) fail(`Live classification failed: ${e.message}`);
  } finally {
    busy = false;
  }
}

function show(r, info, latencyMs, runMs, views) {
  const head = r.heads[0];
  const labels = info.labels?.[head] || [];
  const top = r.top[head][0];
  const label = r.actions?.length ? `${r.actions[0].verb.label} ${r.actions[0].noun.label}` : top.label;
  const now = performance.now();
  live.readings.push({ label, prob: top.prob, latencyMs, at: now });
  if (live.readings.length > 1000) live.readings.splice(0, live.readings.length - 1000);
  lv.top.textContent = label;
  lv.top.dataset.label = label;
  lv.top.dataset.prob = String(top.prob);
  renderPredictions(lv.predictions, r);
  const chip = el("li", { textContent: label, title: `${label} (${(100 * top.prob).toFixed(1)} %)`, dataset: { label } });
  chip.style.setProperty("--h", String(Math.round((top.index * 360) / Math.max(labels.length, 1))));
  lv.timeline.append(chip);
  while (lv.timeline.childElementCount > TIMELINE) lv.timeline.firstElementChild.remove();
  const recent = live.readings.filter((x) => x.at >= now - RATE_WINDOW_MS);
  const span = Math.min(RATE_WINDOW_MS, now - recent[0].at);
  const rate = recent.length > 1 && span > 0 ? ((recent.length - 1) * 1000) / span : 0;
  live.rate = rate;
  const on = state.pool?.kind === "webgpu" ? "WebGPU" : `${state.pool?.size} worker${state.pool?.size === 1 ? "" : "s"}`;
  lv.stats.textContent = `${rate.toFixed(1)} classifications/s · latency ${fmtMs(latencyMs)} (newest frame to result; model ${fmtMs(runMs)} for ${views} view${views === 1 ? "" : "s"} on ${on}) · window ${windowSeconds()} s`;
  lv.stats.dataset.rate = String(rate);
  lv.stats.dataset.latencyMs = String(latencyMs);
}

// initLive wires the camera button, the window input, model changes and leaving the page.
export function initLive() {
  lv.button.addEventListener("click", () => (live.running ? stop() : start()));
  lv.windowInput.addEventListener("change", () => {
    userWindow = true;
    live.windowSeconds = windowSeconds();
    followModel(site.model);
  });
  document.addEventListener("castgo:model", (e) => {
    followModel(e.detail);
    live.windowSeconds = windowSeconds();
  });
  // Leaving the page (or putting it in the back/forward cache) releases the camera.
  addEventListener("pagehide", stop);
}
