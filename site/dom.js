// dom.js owns the page's shared plumbing: the elements (ui), the castgoSite object exposed to tests, the URL
// parameters (?workers=, ?views=, ?debug=frames), the status line (progress, error) and small formatters.
// It holds no model or video state.

export const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
export const DEBUG_FRAMES = params.get("debug") === "frames";

export const ui = {
  select: $("model-select"), modelInput: $("model-input"), forget: $("forget-model"),
  video: $("video"), videoInput: $("video-input"), drop: $("drop"), dropHint: $("drop-hint"), another: $("another"),
  meta: $("video-meta"), progress: $("progress"), stage: $("stage"), error: $("error"),
  framesCard: $("frames-card"), strip: $("strip"), resultsCard: $("results-card"), predictions: $("predictions"),
  timing: $("timing"), viewsBody: document.querySelector("#views-table tbody"), method: $("frame-method"),
  backendSelect: $("backend-select"), compare: $("compare-backends"), compareWrap: $("compare-wrap"),
  compareBody: document.querySelector("#compare-table tbody"),
};

// Exposed for tests and the curious: the last run's numbers (and frames with ?debug=frames).
export const site = (globalThis.castgoSite = { model: null, last: null, busy: false });

// ?workers=N forces the size of the CPU pool (see pool.js).
export const FORCED_WORKERS = (() => {
  const n = Number.parseInt(params.get("workers") || "", 10);
  return Number.isFinite(n) && n >= 1 ? Math.min(n, 16) : 0;
})();

// ?views=CLIPSxCROPS overrides the model's view protocol, as `cast classify --views` does (1x1 is fastest).
export const VIEWS = /^\d{1,2}x[13]$/.test(params.get("views") || "") ? params.get("views") : undefined;

// ?backend=auto|webgpu|cpu preselects the compute backend (see models.js).
export const BACKEND_PARAM = params.get("backend");

export function showError(msg) {
  ui.error.textContent = msg;
  ui.error.hidden = false;
}
export function clearError() {
  ui.error.textContent = "";
  ui.error.hidden = true;
}
export function setProgress(fraction, text) {
  if (fraction == null) ui.progress.removeAttribute("value"); // indeterminate
  else ui.progress.value = Math.max(0, Math.min(1, fraction));
  if (text != null) ui.stage.textContent = text;
}
export function fmtBytes(n) {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} KiB`;
  return `${n} B`;
}
export function fmtProb(p) {
  return `${(100 * p).toFixed(p < 0.1 ? 2 : 1)}%`;
}
export function fmtMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}
