// The measuring half of docs/edge-bench.sh: writes 16 PNG frames, waits for the coordinator's /healthz,
// classifies the frames through the chain for each view spec, runs native `cast classify` on the same
// frames, and prints and checks the figures (see docs/edge-bench.sh).
//
//   node docs/edge-bench.mjs WORKDIR BASE_URL VIEWS...
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { frame, png } from "../worker/test/frames.mjs";

const [dir, base, ...views] = process.argv.slice(2);
const tol = 1e-3;

const framesDir = path.join(dir, "frames");
fs.mkdirSync(framesDir, { recursive: true });
// frame t of a 256×256 clip: a red disc (radius 40) moving right over a textured background.
const frames = Array.from({ length: 16 }, (_, t) => png(256, 256, frame(t, 256, 256, { x0: 30, step: 12, r: 40 })));
frames.forEach((f, i) => fs.writeFileSync(path.join(framesDir, `f${String(i).padStart(3, "0")}.png`), f));

const t0 = Date.now();
for (;;) {
  try {
    const r = await fetch(`${base}/healthz`);
    if (r.status === 200) break;
    if (Date.now() - t0 > 60_000) console.log(`healthz ${r.status}: ${(await r.text()).slice(0, 300)}`);
  } catch {}
  if (Date.now() - t0 > 1_800_000) throw new Error("edge-serve did not become healthy within 30 min");
  await new Promise((r) => setTimeout(r, 2000));
}
console.log(`== every stage loaded and healthy after ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const report = { views: {} };
let failed = false;
for (const v of views) {
  // curl, not fetch: Node's fetch gives up on a response that takes over 5 minutes.
  const s = performance.now();
  const args = ["-s", "-m", "14400", "-w", "\n%{http_code}", "-H", `X-Request-Id: edge-bench-${v}`];
  frames.forEach((_, i) => args.push("-F", `frame=@${path.join(framesDir, `f${String(i).padStart(3, "0")}.png`)};type=image/png`));
  args.push(`${base}/v1/classify?views=${v}&top=5`);
  const out = execFileSync("curl", args, { encoding: "utf8", maxBuffer: 1 << 26 });
  const totalMs = performance.now() - s;
  const status = Number(out.slice(out.lastIndexOf("\n") + 1));
  const edge = JSON.parse(out.slice(0, out.lastIndexOf("\n")));
  if (status !== 200) {
    fs.writeFileSync(path.join(dir, "edge-bench.json"), JSON.stringify({ failed: v, status, response: edge }, null, 1));
    throw new Error(`${v}: ${status} ${JSON.stringify(edge)}`);
  }
  const n0 = performance.now();
  const native = JSON.parse(execFileSync(path.join(dir, "cast"), ["classify", "--model", path.join(dir, "base-ssv2-int8.safetensors"), "--json", "--views", v, "--top", "5", framesDir], { encoding: "utf8", maxBuffer: 1 << 26 }));
  const nativeMs = performance.now() - n0;
  const want = native[0].result.top.logits;
  const got = edge.top.logits;
  let maxDiff = 0;
  for (let i = 0; i < want.length; i++) {
    if (got[i].index !== want[i].index) failed = true;
    maxDiff = Math.max(maxDiff, Math.abs(got[i].prob - want[i].prob));
  }
  if (maxDiff > tol) failed = true;
  console.log(`\n== views ${v}: total ${(totalMs / 1000).toFixed(1)} s through the chain (native cast classify: ${(nativeMs / 1000).toFixed(1)} s)`);
  // ms: the stage's run, measured in the isolate; wall: the coordinator's stage request (the activations
  // sent, the run, the answer); wall − ms: the hop's transport.
  console.log("stage     blocks    wasm memory      CPU ms per view   wall ms per view   transport ms");
  for (const st of edge.stages) {
    const ms = st.ms / st.views;
    const wall = st.wall_ms === undefined ? NaN : st.wall_ms / st.views;
    console.log(`${st.name.padEnd(9)} [${st.blocks.join(",")})`.padEnd(20) + `${(st.wasm_memory_bytes / 2 ** 20).toFixed(1).padStart(7)} MiB   ${ms.toFixed(0).padStart(9)}   ${wall.toFixed(0).padStart(16)}   ${(wall - ms).toFixed(0).padStart(12)}`);
  }
  console.log("top-5 edge:   " + got.map((p) => `${p.index}:${p.prob.toFixed(6)}`).join(" "));
  console.log("top-5 native: " + want.map((p) => `${p.index}:${p.prob.toFixed(6)}`).join(" "));
  console.log(`max |Δprob| ${maxDiff.toExponential(2)} (tolerance ${tol})`);
  report.views[v] = { total_ms: totalMs, native_ms: nativeMs, stages: edge.stages, top_edge: got, top_native: want, max_diff: maxDiff, timings: edge.timings };
}
fs.writeFileSync(path.join(dir, "edge-bench.json"), JSON.stringify(report, null, 1));
// The same figures as a Markdown table, to paste into worker/README.md.
const specs = Object.keys(report.views);
console.log(`\n== Markdown (worker/README.md)\n`);
console.log(`| stage | blocks | ${specs.map((v) => `${v}: wasm memory | ${v}: ms per view (run / wall)`).join(" | ")} |`);
console.log(`|---|---|${specs.map(() => "---|---|").join("")}`);
report.views[specs[0]].stages.forEach((st, i) => {
  const cells = specs.map((v) => {
    const s = report.views[v].stages[i];
    const wall = s.wall_ms === undefined ? "" : ` / ${(s.wall_ms / s.views).toFixed(0)}`;
    return `${(s.wasm_memory_bytes / 2 ** 20).toFixed(1)} MiB | ${(s.ms / s.views).toFixed(0)}${wall}`;
  });
  console.log(`| ${st.name} | [${st.blocks.join(", ")}) | ${cells.join(" | ")} |`);
});
for (const v of specs) {
  const r = report.views[v];
  console.log(`\n${v}: total ${(r.total_ms / 1000).toFixed(1)} s (native ${(r.native_ms / 1000).toFixed(1)} s); top-5 ${r.top_edge.map((p) => `${p.index}:${p.prob.toFixed(6)}`).join(" ")}; max |Δprob| vs native ${r.max_diff.toExponential(2)}`);
}
if (failed) {
  console.error("FAIL: the edge top-5 differs from native cast classify");
  process.exit(1);
}
