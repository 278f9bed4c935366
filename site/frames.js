// frames.js owns reading a video file's frames exactly as `cast classify` does: opening it in the <video>
// element, measuring its frame rate, and seeking to and drawing each frame a plan needs.
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

import { ui } from "./dom.js";

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

export async function openVideo(file) {
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

// seekTo sets v.currentTime to t and resolves, once the seek is done, with the metadata of the next frame the
// browser presents, or null when none comes within waitMs of the seek's start.
async function seekTo(v, t, waitMs) {
  const frame = nextFrame(v, waitMs);
  const seeked = once(v, { seeked: true }, 10000);
  v.currentTime = t;
  await seeked;
  return frame;
}

// skipStale waits, for up to skips more frames of waitMs each, for the sought frame when md is another one;
// it resolves with the last frame presented (md when no other came).
async function skipStale(v, md, matches, skips, waitMs) {
  for (let i = 0; i < skips && md && !matches(md); i++) {
    const next = await nextFrame(v, waitMs);
    if (!next) break;
    md = next;
  }
  return md;
}

// seekFrame seeks to time t and resolves with the metadata of the frame presented there, which should be the
// one at time expect (frameDur long; Infinity accepts any frame), or null if the browser presented no new frame,
// e.g. because it was already showing it.
// When the sought frame is known not to be the one on screen, a new frame will be presented: wait for it for up
// to 5 s (a loaded machine can take far longer than a frame's time); when it is on screen, none comes: 300 ms;
// when what is on screen is unknown (v.castgoShown undefined), 1 s.
// A frame other than the sought one (a stale presentation of an earlier seek, which a slow device can deliver
// late) is skipped once. When what comes is still the frame that was on screen before the seek, or nothing
// though a new frame was due, the seek is redone through a neighbouring frame (seeking away and back always
// presents a new frame), with twice the wait.
async function seekFrame(v, t, expect, frameDur) {
  const tol = frameDur / 4;
  const matches = (md) => Math.abs(md.mediaTime - expect) <= tol;
  const shown = v.castgoShown;
  const known = shown !== undefined;
  const onScreen = known && Math.abs(shown - expect) <= tol;
  const wait = !known ? 1000 : onScreen ? 300 : 5000;
  let md = await skipStale(v, await seekTo(v, t, wait), matches, 1, wait);
  const stuck = known && !onScreen && (md === null || Math.abs(md.mediaTime - shown) <= 1e-6);
  if (stuck) {
    const away = [t - frameDur, t + frameDur].find((u) => u >= 0 && u < v.duration && Math.abs(u - 0.5 * frameDur - shown) > tol);
    if (away !== undefined) {
      await seekTo(v, away, wait);
      md = (await skipStale(v, await seekTo(v, t, 2 * wait), matches, 4, 2 * wait)) || md;
    }
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
export async function measureFps(v) {
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
  const md = await seekTo(v, Math.max(0, t - eps), waitMs);
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

// extractFrames reads the frames `needed` (indices) of the open video v, whose rate is measureFps's result: it
// seeks to each, waits for the browser to present it, draws it at the natural size and keeps its RGBA bytes.
// before(k, idx) runs before each seek and may return false to stop (null is returned then); after(canvas,
// idx) runs with the drawn frame. It returns the frames (Uint8ClampedArray, aligned with needed) and, per
// frame, the index the presented frame's timestamp says (seen; null when the browser presented none).
export async function extractFrames(v, rate, needed, before, after) {
  const width = v.videoWidth, height = v.videoHeight;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const frames = [];
  const checks = [];
  for (const [k, idx] of needed.entries()) {
    if (before(k, idx) === false) return null;
    const expect = rate.start + idx / rate.fps;
    const md = await seekFrame(v, rate.start + (idx + 0.5) / rate.fps, expect, 1 / rate.fps);
    ctx.drawImage(v, 0, 0, width, height);
    frames.push(ctx.getImageData(0, 0, width, height).data);
    const seen = md ? Math.round((md.mediaTime - rate.start) * rate.fps) : null;
    checks.push({ index: idx, mediaTime: md ? md.mediaTime : null, seen });
    after(canvas, idx);
  }
  return { frames, checks };
}
