// results.js owns what a classified video shows: the strip of frames the model saw, the top predictions (per
// head, and EPIC's verb+noun actions), the timing line, the per-view table and how the frames were located.

import { el, fmtMs, fmtProb, ui } from "./dom.js";

// clearResults empties the frame strip and the predictions before a new video.
export function clearResults() {
  ui.resultsCard.hidden = true;
  ui.framesCard.hidden = true;
  ui.strip.replaceChildren();
  ui.predictions.replaceChildren();
}

// addThumb appends frame idx, drawn on canvas, to the strip (drawn 160 px high at most: shown at 64 px, and
// larger under explain.js's maps).
export function addThumb(canvas, idx) {
  const h = Math.min(160, canvas.height);
  const thumb = el("canvas", { width: Math.max(1, Math.round((h * canvas.width) / canvas.height)), height: h, title: `frame ${idx}` });
  thumb.getContext("2d").drawImage(canvas, 0, 0, thumb.width, thumb.height);
  ui.strip.append(el("figure", { dataset: { frame: String(idx) } }, thumb, el("figcaption", { textContent: `#${idx}` })));
}

// renderPredictions fills list with the top classes of r (r.top per head, r.actions) as <li data-label
// data-prob data-index data-head>, the first one marked "first".
export function renderPredictions(list, r) {
  const heads = r.heads;
  list.replaceChildren();
  for (const [hi, head] of heads.entries()) {
    if (heads.length > 1) list.append(el("li", { className: "head" }, head));
    for (const [i, p] of r.top[head].entries()) {
      const bar = el("span", { className: "bar" });
      bar.style.setProperty("--p", String(p.prob));
      const li = el("li", { className: hi === 0 && i === 0 ? "pred first" : "pred", dataset: { label: p.label, prob: String(p.prob), index: String(p.index), head } },
        el("span", { className: "label", textContent: p.label }),
        el("span", { className: "prob", textContent: fmtProb(p.prob) }),
        bar);
      list.append(li);
    }
  }
  for (const a of r.actions || []) {
    list.append(el("li", { className: "pred action", dataset: { label: `${a.verb.label} ${a.noun.label}`, prob: String(a.prob), head: "action" } },
      el("span", { className: "label", textContent: `${a.verb.label} ${a.noun.label}` }), el("span", { className: "prob", textContent: fmtProb(a.prob) })));
  }
}

// renderResult shows the result r of a video's classification; t holds the timings, the frame-rate
// measurement and where the model ran (t.ranOn).
export function renderResult(r, info, t) {
  const heads = r.heads;
  renderPredictions(ui.predictions, r);
  const tm = r.timings || {};
  ui.timing.textContent = `${info.name} · ${r.views} views (${t.nViews}) over ${t.numFrames} frames · total ${fmtMs(t.total)}: frame extraction ${fmtMs(t.extractMs)}, model ${fmtMs(t.modelMs)} on ${t.ranOn} (${fmtMs(tm.per_view_ms || 0)} per view)`;
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

