// Benchmark of the page's worker pool: views per second in headless Chromium with 1 worker and with N workers
// (N = navigator.hardwareConcurrency, capped by the model's clips), on the same video and model. Not a test.
//
//   node site/bench-pool.mjs --model /tmp/small.safetensors [--views 2x1] [--runs 2] [--dist DIR] [--workers 1,2]
//
// It builds the site with site/build.sh into a temp dir (or uses --dist / $CASTGO_SITE_DIST when that holds a
// built site), serves it with tools/serve on a free loopback port, makes a 4 s 320×240 test video with ffmpeg,
// loads the model through the page's "Use my own model file" input and classifies the video --runs times per
// pool size, alternating (--views CLIPSxCROPS: the page's ?views= override of the model's protocol). views/s = views ÷ the page's model time (frame extraction excluded; the best run counts). It also
// checks that every pool size gives the same probabilities (when the browser extracted the same frames: the
// frames' checksum is compared too). parallelism = worker time (preprocessing + inference, summed over the
// workers) ÷ model wall time: how many workers were computing at once.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: opt } = parseArgs({
  options: {
    model: { type: "string", default: "/tmp/small.safetensors" },
    runs: { type: "string", default: "2" },
    dist: { type: "string", default: process.env.CASTGO_SITE_DIST || "" },
    workers: { type: "string", default: "" },
    video: { type: "string", default: "" },
    views: { type: "string", default: "" },
  },
});
const root = fileURLToPath(new URL("..", import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "castgo-bench-pool-"));
// The Go toolchain of toolchain.env (written once there), with the SIMD experiment, as build.sh uses.
const toolchain = /^export GOTOOLCHAIN=(\S+)$/m.exec(fs.readFileSync(path.join(root, "toolchain.env"), "utf8"))[1];
const env = { ...process.env, GOTOOLCHAIN: process.env.GOTOOLCHAIN || toolchain, GOEXPERIMENT: process.env.GOEXPERIMENT ?? "simd" };
const sh = (cmd, args, o = {}) => execFileSync(cmd, args, { cwd: root, env, stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 << 20, ...o });

if (!fs.existsSync(opt.model)) {
  console.error(`no model file ${opt.model}: convert one first, e.g.\n  go run ./tools/cast convert --checkpoint ../shared/goldens/small/model.pt --config ../shared/goldens/small/config.json --out /tmp/small.safetensors`);
  process.exit(2);
}
const dist = opt.dist || path.join(tmp, "site");
if (!["index.html", "app.js", "cast.wasm"].every((f) => fs.existsSync(path.join(dist, f)))) {
  sh(path.join(root, "site", "build.sh"), [dist], { stdio: ["ignore", "ignore", "inherit"] });
}
const serveBin = path.join(tmp, "serve");
sh("go", ["build", "-o", serveBin, "./tools/serve"]);
const video = opt.video || path.join(tmp, "bench.mp4");
if (!opt.video) {
  sh("ffmpeg", ["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=8:d=4",
    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", video]);
}

const server = spawn(serveBin, ["--dir", dist, "--addr", "127.0.0.1:0"], { stdio: ["ignore", "ignore", "pipe"] });
const url = await new Promise((resolve, reject) => {
  let buf = "";
  server.stderr.on("data", (d) => {
    buf += d;
    const m = /serving .* on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(buf);
    if (m) resolve(m[1]);
  });
  server.on("exit", (code) => reject(new Error(`serve exited with ${code}: ${buf}`)));
});
server.stderr.resume();

const browser = await chromium.launchPersistentContext(path.join(tmp, "profile"), {
  executablePath: process.env.CASTGO_CHROMIUM || "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});

const rows = [];
const loadBefore = os.loadavg().map((x) => x.toFixed(1)).join(" ");
let reference = null;
try {
  const probe = await browser.newPage();
  await probe.goto(url);
  const cores = await probe.evaluate(() => navigator.hardwareConcurrency);
  await probe.close();
  const sizes = opt.workers ? opt.workers.split(",").map(Number) : [...new Set([1, cores])];
  // One page per pool size, each with the model loaded; the runs alternate between them (1, N, 1, N, …) so
  // that a change in the machine's load hits every size alike.
  const pages = [];
  for (const n of sizes) {
    const page = await browser.newPage();
    page.on("pageerror", (e) => console.error(`pageerror: ${e.message}`));
    await page.goto(`${url}?workers=${n}&debug=frames${opt.views ? `&views=${opt.views}` : ""}`);
    await page.waitForFunction(() => globalThis.castgoSite?.model, null, { timeout: 120000 });
    if (await page.getByTestId("model-select").inputValue() !== "cached") {
      await page.getByTestId("model-input").setInputFiles(opt.model);
      await page.waitForFunction(() => document.querySelector('[data-testid="model-select"]').value === "cached" && !/Loading/.test(document.querySelector('[data-testid="stage"]').textContent), null, { timeout: 300000 });
    }
    pages.push({ n, page, backend: await page.getByTestId("backend").textContent(), runs: [] });
  }
  for (let r = 0; r < Number(opt.runs); r++) {
    for (const p of pages) {
      const { page, backend } = p;
      await page.bringToFront(); // a background tab presents video frames late or not at all
      await page.getByTestId("video-input").setInputFiles(video);
      await page.waitForFunction(() => globalThis.castgoSite.last?.result && !globalThis.castgoSite.busy || document.querySelector('[data-testid="error"]').textContent, null, { timeout: 1800000 });
      const err = await page.getByTestId("error").textContent();
      if (err) throw new Error(`page error: ${err}`);
      const last = await page.evaluate(() => {
        const site = globalThis.castgoSite;
        const l = site.last;
        let sum = 0; // a checksum of the extracted frames (kept with ?debug=frames)
        for (const f of l.frames) for (let i = 0; i < f.length; i += 7) sum = (sum * 31 + f[i]) >>> 0;
        const out = {
          views: l.plan.views.length, protocol: l.plan.protocol, modelMs: l.timings.modelMs, workers: l.result.workers,
          probs: l.result.probs, top: l.result.top, busyMs: l.result.timings.inference_ms + l.result.timings.preprocess_ms,
          frames: sum.toString(16), misplaced: l.checks.filter((c) => c.seen != null && c.seen !== c.index).length,
        };
        site.last = null; // so the next run waits for its own result
        return out;
      });
      p.runs.push(last);
      console.log(`# ${backend}: run ${r + 1}: ${last.views} views (${last.protocol}) in ${(last.modelMs / 1000).toFixed(2)} s; ` +
        `worker time ${(last.busyMs / 1000).toFixed(2)} s (parallelism ${(last.busyMs / last.modelMs).toFixed(2)}); frames checksum ${last.frames}, ${last.misplaced} misplaced`);
    }
  }
  for (const { runs, backend, page } of pages) {
    const best = runs.reduce((a, b) => (b.modelMs < a.modelMs ? b : a));
    const heads = Object.keys(best.probs);
    if (!reference) reference = best;
    const maxDiff = Math.max(...heads.flatMap((h) => best.probs[h].map((p, k) => Math.abs(p - reference.probs[h][k]))));
    rows.push({ n: best.workers, backend, views: best.views, s: best.modelMs / 1000, vps: best.views / (best.modelMs / 1000), maxDiff, top1: best.top[heads[0]][0], par: best.busyMs / best.modelMs, same: best.frames === reference.frames });
    await page.close();
  }
  const model = path.basename(opt.model);
  console.log(`\nmodel ${model}, video ${path.basename(video)}, ${rows[0].views} views per video, Chromium ${browser.browser()?.version() ?? ""} on ${os.cpus().length} cores (${os.cpus()[0]?.model?.trim()})`);
  console.log(`load average before: ${loadBefore}, after: ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  console.log("| workers | views | model time (best) | views/s | speed-up | parallelism | max |Δp| vs 1 worker | top-1 |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.n} | ${r.views} | ${r.s.toFixed(2)} s | ${r.vps.toPrecision(3)} | ${(r.vps / rows[0].vps).toFixed(2)}× | ${r.par.toFixed(2)} | ${r.maxDiff.toExponential(1)}${r.same ? "" : " (other frames!)"} | ${r.top1.label} (${(100 * r.top1.prob).toFixed(2)} %) |`);
  }
} finally {
  await browser.close();
  server.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
}
