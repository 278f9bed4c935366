// Browser tests of castgo's WebGPU executor (run from the repository root: node --test site/test/webgpu.test.mjs).
//
// Debian's headless Chromium (/usr/bin/chromium or $CASTGO_CHROMIUM) runs WebGPU on SwiftShader (a CPU Vulkan
// implementation) with --enable-unsafe-webgpu --use-webgpu-adapter=swiftshader --enable-features=Vulkan
// --use-angle=swiftshader; the site is served from 127.0.0.1 by tools/serve. The tests check, inside the page's
// worker (worker.js, the same one the page uses):
//   - the integer kernels of int8 models (int8 GEMM, integer attention) against the CPU's: the same bits,
//   - WebGPU logits against the WASM CPU path on the tiny and small goldens (fp32: relative L2 ≤ 1e-4; int8:
//     WebGPU int8 vs CPU int8 ≤ 3e-4, and int8 vs the fp32 reference within the int8 bound),
//   - the page on WebGPU: top-5 equal to `cast classify` (probabilities within 1e-4) and the backend label
//     "WebGPU · …",
//   - the "compare backends" control, and the fallback to the WASM pool where WebGPU is absent.
// SwiftShader's speed says nothing about a GPU: the times printed are for orientation only.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { YUV, buildSiteAndTools, ffmpegFrames, frameDiffs, makeVideo, nativeClassify, root, sh, startServe } from "./common.mjs";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "castgo-webgpu-test-"));
const dist = process.env.CASTGO_SITE_DIST || path.join(tmp, "site");
const executablePath = process.env.CASTGO_CHROMIUM || "/usr/bin/chromium";
const goldens = process.env.CAST_SHARED ? path.join(process.env.CAST_SHARED, "goldens") : path.join(root, "..", "shared", "goldens");
const WEBGPU_FLAGS = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--enable-features=Vulkan", "--use-angle=swiftshader"];
// The video and canvas paths stay on the CPU (as with site.test.mjs's --disable-gpu): decoded through the GPU
// process (ANGLE on SwiftShader) the frames' YUV→RGB conversion differs from ffmpeg's, and the top-5 would no
// longer be comparable with `cast classify` (measured: 0.549 vs 0.673 for the top class, on WASM and WebGPU
// alike). WebGPU itself is unaffected by these flags.
const CPU_MEDIA_FLAGS = ["--disable-accelerated-2d-canvas", "--disable-accelerated-video-decode", "--disable-gpu-compositing", "--disable-gpu-rasterization"];
const COMMON_FLAGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required"];

let server, serverURL, gpuBrowser, cli;
const report = [];

before(async () => {
  const t0 = Date.now();
  assert.ok(fs.existsSync(path.join(goldens, "tiny", "model.pt")), `goldens not found at ${goldens} (set CAST_SHARED)`);
  let serveBin;
  ({ cli, serveBin } = buildSiteAndTools(dist, tmp));
  // The golden models and inputs, served beside the page.
  const gdir = path.join(dist, "gpu-test");
  fs.mkdirSync(gdir, { recursive: true });
  for (const g of ["tiny", "small"]) {
    const model = path.join(gdir, `${g}.safetensors`);
    if (!fs.existsSync(model)) {
      sh(cli, ["convert", "--checkpoint", path.join(goldens, g, "model.pt"), "--config", path.join(goldens, g, "config.json"), "--out", model], { stdio: ["ignore", "ignore", "inherit"] });
      sh(cli, ["quantize", "--model", model, "--out", path.join(gdir, `${g}-int8.safetensors`)], { stdio: ["ignore", "ignore", "inherit"] });
    }
    fs.copyFileSync(path.join(goldens, g, "input.npy"), path.join(gdir, `${g}-input.npy`));
    fs.copyFileSync(path.join(goldens, g, "logits.npy"), path.join(gdir, `${g}-logits.npy`));
  }
  fs.writeFileSync(path.join(gdir, "blank.html"), "<!doctype html><title>castgo webgpu test</title>\n");
  console.log(`# built site, cast, serve and golden models in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  ({ server, url: serverURL } = await startServe(serveBin, dist));
  gpuBrowser = await chromium.launchPersistentContext(path.join(tmp, "profile-gpu"), {
    executablePath, headless: true, viewport: { width: 1280, height: 900 }, args: [...COMMON_FLAGS, ...WEBGPU_FLAGS, ...CPU_MEDIA_FLAGS],
  });
});

after(async () => {
  await gpuBrowser?.close();
  server?.kill();
  if (report.length) console.log("# WebGPU vs WASM CPU:\n" + report.map((l) => `#   ${l}`).join("\n"));
  fs.rmSync(tmp, { recursive: true, force: true });
});

// harness opens a blank page of the site and returns a function that runs fn(args) in it; the page has
// globalThis.rpc(worker, op, data) and globalThis.newWorker() for the site's worker.js.
async function harness(browser) {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("worker", (w) => w.on("console", (m) => { if (m.type() === "error") problems.push(`worker console: ${m.text()}`); }));
  await page.goto(serverURL + "gpu-test/blank.html");
  await page.evaluate(() => {
    let next = 1;
    globalThis.newWorker = () => {
      const w = new Worker("../worker.js");
      w.pending = new Map();
      w.onmessage = (ev) => {
        const m = ev.data;
        if (m.fatal) { for (const p of w.pending.values()) p.reject(new Error(m.fatal)); return; }
        const p = w.pending.get(m.id);
        if (!p || m.progress) return;
        w.pending.delete(m.id);
        if (m.ok) p.resolve(m); else p.reject(new Error(m.error));
      };
      return w;
    };
    globalThis.rpc = (w, op, data = {}, transfer = []) => new Promise((resolve, reject) => {
      const id = next++;
      w.pending.set(id, { resolve, reject });
      w.postMessage({ id, op, ...data }, transfer);
    });
    // npy reads a little-endian float32 .npy file of the site.
    globalThis.npy = async (url) => {
      const buf = await (await fetch(url)).arrayBuffer();
      const u8 = new Uint8Array(buf);
      const hlen = u8[8] | (u8[9] << 8);
      const header = new TextDecoder().decode(u8.subarray(10, 10 + hlen));
      if (!/'descr': '<f4'/.test(header)) throw new Error(`not float32: ${header}`);
      const shape = /'shape': \(([^)]*)\)/.exec(header)[1].split(",").filter((s) => s.trim()).map(Number);
      return { shape, data: new Float32Array(buf.slice(10 + hlen)) };
    };
  });
  return { page, problems };
}

function relL2(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

function argmaxRows(x, classes) {
  const out = [];
  for (let r = 0; r < x.length / classes; r++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (x[r * classes + k] > x[r * classes + best]) best = k;
    out.push(best);
  }
  return out;
}

// goldenLogits runs the golden input of g (batch of its clips, or the first `clips`) through the model file
// on "cpu" and "webgpu" in two workers of the page and returns both logits, the golden ones and the GPU info.
async function goldenLogits(page, model, g, clips, again) {
  return page.evaluate(async ({ model, g, clips, again }) => {
    const input = await npy(`${g}-input.npy`);
    const want = await npy(`${g}-logits.npy`);
    const per = input.data.length / input.shape[0];
    const batch = Math.min(clips || input.shape[0], input.shape[0]);
    const clip = input.data.slice(0, batch * per);
    const bytes = await (await fetch(model)).arrayBuffer();
    const out = { batch, want: Array.from(want.data.slice(0, batch * want.shape[1])), classes: want.shape[1] };
    for (const backend of ["cpu", "webgpu"]) {
      const w = newWorker();
      await rpc(w, "load", { bytes: bytes.slice(0), backend });
      const r = await rpc(w, "logits", { clip: clip.slice(0), batch });
      out[backend] = { logits: Array.from(r.logits.heads.logits), innerMs: r.logits.ms };
      if (again) { // a second run: weights already on the device, pipelines built
        const before = backend === "webgpu" ? (await rpc(w, "gpuInfo")).gpu : null;
        const r2 = await rpc(w, "logits", { clip: clip.slice(0), batch });
        if (before) {
          const after = (await rpc(w, "gpuInfo")).gpu;
          out.uploads = { weights1: before.weightBytes, weights2: after.weightBytes, input1: before.inputBytes, input2: after.inputBytes, clipBytes: clip.byteLength };
        }
        out[backend].againMs = r2.logits.ms;
        if (Array.from(r2.logits.heads.logits).some((v, i) => v !== out[backend].logits[i])) throw new Error(`${backend}: the second run differs`);
        if (before) { // dispose releases the device buffers (in a goroutine: poll briefly)
          const held = (await rpc(w, "gpuInfo")).gpu.bufferBytes;
          await rpc(w, "dispose");
          let left = held;
          for (let i = 0; i < 50 && left !== 0; i++) {
            await new Promise((r) => setTimeout(r, 20));
            left = (await rpc(w, "gpuInfo")).gpu.bufferBytes;
          }
          out.released = { held, left };
        }
      }
      if (backend === "webgpu") out.gpu = (await rpc(w, "gpuInfo")).gpu;
      w.terminate();
    }
    return out;
  }, { model, g, clips, again });
}

const FP32_TOL = 1e-4; // relative L2, WebGPU fp32 vs the WASM CPU path
const INT8_TOL = 0.02; // relative L2 of int8 vs the fp32 reference, the bound of cast/quantize_test.go (tiny measures 1.4 %)
// int8 WebGPU vs int8 CPU: the same logits. An int8 program's kernels do the CPU's operations in its order: the
// integer GEMM and attention (the same bits on the same inputs, the next test) and every float operation around
// them (backend/webgpu/wgsl/f32exact.wgsl: layer norm's canonical sums, GELU and QuickGELU, the GEMM epilogue,
// the attentions of < 32 keys, the elementwise ops), each rounded as the CPU rounds it. So on SwiftShader, which
// rounds +, −, · and √ correctly, every logit of the tiny and small int8 goldens and of the page's default int8
// model is the CPU's (relative L2 0; it was 1.8e-4 on the goldens while WebGPU's layer norm, GELU and few-key
// attention did their own float operations). A GPU whose √ is not correctly rounded may differ in the last bits.

// The integer kernels of int8 programs (backend/webgpu: the int8 GEMM and the integer attention) on random
// problems that `go test ./backend/webgpu -run TestInt8Cases` builds and runs through the CPU's kernels: WebGPU
// must give the CPU's outputs bit for bit (measured: every output of every case equal on SwiftShader).
test("integer GEMM and attention kernels on WebGPU give the CPU's outputs bit for bit", async () => {
  const file = path.join(tmp, "int8-cases.json");
  sh("go", ["test", "./backend/webgpu", "-run", "^TestInt8Cases$", "-count=1", "-args", `-int8-cases=${file}`]);
  const cases = JSON.parse(fs.readFileSync(file, "utf8"));
  assert.ok(cases.length >= 7, `${cases.length} cases`);
  const { page, problems } = await harness(gpuBrowser);
  const res = await page.evaluate(async (cases) => {
    const ad = await navigator.gpu.requestAdapter();
    const dev = await ad.requestDevice({ requiredLimits: { maxStorageBuffersPerShaderStage: ad.limits.maxStorageBuffersPerShaderStage } });
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const out = [];
    for (const c of cases) {
      const bufs = c.Slots.map((bytes, i) => {
        const b = dev.createBuffer({ size: bytes, usage });
        if (c.Words[i]) dev.queue.writeBuffer(b, 0, new Uint32Array(c.Words[i]));
        return b;
      });
      dev.pushErrorScope("validation");
      const enc = dev.createCommandEncoder();
      const msgs = [];
      for (const d of c.Dispatches) { // bindings as the executor's: parameter words, inputs, output
        const module = dev.createShaderModule({ code: d.Kernel });
        for (const m of (await module.getCompilationInfo()).messages) msgs.push(`${m.type} ${m.lineNum}:${m.linePos} ${m.message}`);
        const pipe = dev.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
        const meta = dev.createBuffer({ size: 4 * d.Meta.length, usage });
        dev.queue.writeBuffer(meta, 0, new Uint32Array(d.Meta));
        const entries = [{ binding: 0, resource: { buffer: meta } }];
        d.Ins.forEach((s, k) => entries.push({ binding: k + 1, resource: { buffer: bufs[s] } }));
        entries.push({ binding: d.Ins.length + 1, resource: { buffer: bufs[d.Out] } });
        const pass = enc.beginComputePass();
        pass.setPipeline(pipe);
        pass.setBindGroup(0, dev.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries }));
        pass.dispatchWorkgroups(...d.Groups);
        pass.end();
      }
      const n = c.Want.length;
      const rb = dev.createBuffer({ size: 4 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      enc.copyBufferToBuffer(bufs[c.OutSlot], 0, rb, 0, 4 * n);
      dev.queue.submit([enc.finish()]);
      const err = await dev.popErrorScope();
      if (err) msgs.push(`validation: ${err.message}`);
      await rb.mapAsync(GPUMapMode.READ);
      const got = new Uint32Array(rb.getMappedRange().slice(0));
      let differ = 0;
      for (let i = 0; i < n; i++) if (got[i] !== c.Want[i]) differ++;
      out.push({ name: c.Name, msgs, differ, n });
      for (const b of bufs) b.destroy();
    }
    dev.destroy();
    return out;
  }, cases);
  for (const r of res) {
    assert.deepEqual(r.msgs, [], `${r.name}: shader messages`);
    assert.equal(r.differ, 0, `${r.name}: ${r.differ} of ${r.n} outputs differ from the CPU's`);
  }
  assert.deepEqual(problems, []);
  report.push(`integer kernels: ${res.length} cases (${res.map((r) => r.n).reduce((a, b) => a + b)} outputs), every output the CPU's bits`);
  await page.close();
});

for (const g of ["tiny", "small"]) {
  test(`${g} golden: WebGPU logits match the WASM CPU path (fp32 ≤ ${FP32_TOL}, int8 the same bits and within its bound)`, async () => {
    const { page, problems } = await harness(gpuBrowser);
    const clips = g === "small" ? 1 : 0;
    const fp = await goldenLogits(page, `${g}.safetensors`, g, clips, g === "tiny");
    assert.ok(fp.gpu.runs >= 1 && fp.gpu.cpuRuns === 0, `ran on the GPU: ${JSON.stringify(fp.gpu)}`);
    assert.match(fp.gpu.architecture + fp.gpu.vendor, /swiftshader|google/i);
    const rFP = relL2(fp.webgpu.logits, fp.cpu.logits);
    const rRef = relL2(fp.cpu.logits, fp.want);
    assert.ok(rFP <= FP32_TOL, `fp32 WebGPU vs CPU relative L2 ${rFP}`);
    assert.ok(rRef <= 1e-4, `CPU vs golden ${rRef}`);
    assert.deepEqual(argmaxRows(fp.webgpu.logits, fp.classes), argmaxRows(fp.want, fp.classes));
    if (fp.uploads) { // the weights went to the device once; the second run wrote only the clip
      const u = fp.uploads;
      assert.ok(u.weights1 > 0 && u.weights2 === u.weights1, `weights uploaded again: ${JSON.stringify(u)}`);
      assert.equal(u.input2 - u.input1, u.clipBytes, `clip upload: ${JSON.stringify(u)}`);
      assert.ok(fp.released.held >= u.weights1 && fp.released.left === 0, `dispose: ${JSON.stringify(fp.released)}`);
    }
    const q = await goldenLogits(page, `${g}-int8.safetensors`, g, clips);
    assert.ok(q.gpu.runs >= 1 && q.gpu.cpuRuns === 0, `int8 ran on the GPU: ${JSON.stringify(q.gpu)}`);
    const rQ = relL2(q.webgpu.logits, q.cpu.logits);
    const rQRef = relL2(q.webgpu.logits, fp.want);
    const differ = q.webgpu.logits.filter((v, i) => v !== q.cpu.logits[i]).length;
    assert.equal(differ, 0, `int8 WebGPU vs int8 CPU: ${differ} of ${q.cpu.logits.length} logits differ (relative L2 ${rQ})`);
    assert.ok(rQRef <= INT8_TOL, `int8 WebGPU vs fp32 golden relative L2 ${rQRef}`);
    assert.deepEqual(argmaxRows(q.webgpu.logits, q.classes), argmaxRows(fp.want, fp.classes), "int8 top-1");
    report.push(`${g} (${fp.batch} clip${fp.batch > 1 ? "s" : ""}): fp32 rel L2 ${rFP.toExponential(2)} (CPU vs golden ${rRef.toExponential(2)}), ` +
      `int8 rel L2 ${rQ.toExponential(2)} vs CPU int8, ${rQRef.toExponential(2)} vs fp32 golden; ` +
      `fp32 forward: CPU ${fp.cpu.innerMs.toFixed(0)} ms, SwiftShader ${fp.webgpu.innerMs.toFixed(0)} ms (first run: pipelines, upload)` +
      (fp.webgpu.againMs ? `, ${fp.webgpu.againMs.toFixed(0)} ms (second; CPU ${fp.cpu.againMs.toFixed(0)} ms)` : "") +
      (fp.uploads ? `; uploads: weights ${fp.uploads.weights1} B once, clip ${fp.uploads.clipBytes} B per run; dispose freed ${fp.released.held} B of GPU buffers` : ""));
    assert.deepEqual(problems, []);
    await page.close();
  });
}

// ---------------------------------------------------------------- the page

// The page's test clip: common.mjs's saturating colours, so the browser's frames equal ffmpeg's and the page's
// top-5 must equal `cast classify`'s.
const makeClip = (name) => makeVideo(path.join(tmp, name), 96, 64, YUV.black, YUV.magenta, "80-4*N", "24");

// native returns every class of `cast classify --model default-int8` on file, most probable first.
const native = (file) => nativeClassify(cli, file).top.logits;

async function openSite(browser, query) {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  await page.goto(serverURL + (query ? `${query}&debug=frames` : "?debug=frames"));
  await page.waitForFunction(() => globalThis.castgoSite?.model, null, { timeout: 120000 });
  return { page, problems };
}

// classifyIn picks file in the page (opened with ?debug=frames) and returns its top-5. It first checks the
// frames the page extracted against ffmpeg's decoding of the same indices (what `cast classify` reads), so that
// a wrong frame is reported as such rather than as different probabilities.
async function classifyIn(page, file) {
  await page.getByTestId("video-input").setInputFiles(file);
  await page.locator('[data-testid="predictions"] li[data-label]').first().waitFor({ timeout: 300000 });
  const last = await page.evaluate(() => {
    const l = globalThis.castgoSite.last;
    return { width: l.width, height: l.height, neededFrames: l.neededFrames, checks: l.checks, frames: l.frames.map((f) => Array.from(f)) };
  });
  const wrong = frameDiffs(ffmpegFrames(file, last.width, last.height), last.neededFrames, last.frames)
    .map((d, k) => ({ ...d, presented: last.checks[k] })).filter((d) => d.max > 0)
    .map((d) => `#${d.index} (max |Δ| ${d.max}, presented ${JSON.stringify(d.presented)})`);
  assert.deepEqual(wrong, [], "the page's frames differ from ffmpeg's at the same indices");
  return page.$$eval('[data-testid="predictions"] li[data-label]', (lis) => lis.map((li) => ({ label: li.dataset.label, prob: Number(li.dataset.prob) })));
}

// assertTop5 checks the page's top-5 against cast classify's ranking: the same probabilities (within PROB_TOL)
// and the same five classes, where classes whose probabilities tie within that tolerance may swap places. The
// page's default model is int8: cast classify (CPU) and WebGPU run its attention with the same integer algorithm.
const PROB_TOL = 1e-4;
function assertTop5(got, all) {
  assert.equal(got.length, 5);
  const byLabel = new Map(all.map((p) => [p.label, p.prob]));
  for (const p of got) {
    assert.ok(byLabel.has(p.label), `unknown label ${p.label}`);
    assert.ok(Math.abs(p.prob - byLabel.get(p.label)) <= PROB_TOL, `${p.label}: page ${p.prob}, cast classify ${byLabel.get(p.label)}`);
  }
  for (let i = 0; i < 5; i++) {
    const tied = all.filter((q) => Math.abs(q.prob - all[i].prob) <= PROB_TOL).map((q) => q.label);
    assert.ok(tied.includes(got[i].label), `rank ${i + 1}: page ${got[i].label}, cast classify ${all[i].label} (ties: ${tied})`);
  }
}

test("the page runs on WebGPU: label, top-5 equal to cast classify, compare backends", async () => {
  const video = makeClip("gpu.mp4");
  const want = native(video);
  for (const query of ["?backend=webgpu", ""]) { // chosen, and automatic
    const { page, problems } = await openSite(gpuBrowser, query);
    assert.equal(await page.getByTestId("backend").textContent(), "WebGPU · SwiftShader", `backend label (${query || "auto"})`);
    if (query) {
      const got = await classifyIn(page, video);
      assertTop5(got, want);
      assert.equal((await page.evaluate(() => globalThis.castgoSite.last.result)).workers, 1);
      assert.match(await page.getByTestId("timing").textContent(), /on WebGPU \(SwiftShader\)/);
      const ran = await page.evaluate(() => globalThis.castgoSite.gpuInfo());
      assert.ok(ran.runs >= 1 && ran.cpuRuns === 0, `the video ran on the GPU: ${JSON.stringify(ran)}`);
      await page.getByTestId("compare-backends").click();
      const row = page.locator('[data-testid="compare"] tr[data-backend="webgpu"]');
      await row.waitFor({ timeout: 300000 });
      const s = await page.evaluate(() => globalThis.castgoSite.lastCompare);
      const after = await page.evaluate(() => globalThis.castgoSite.gpuInfo());
      assert.ok(after.runs > ran.runs && after.cpuRuns === 0, `the comparison's WebGPU side ran on the GPU: ${JSON.stringify(after)}`);
      // the default model is int8: WebGPU gives the CPU's logits, bit for bit (the note after INT8_TOL)
      assert.ok(s.views >= 1 && s.rel === 0 && s.maxAbs === 0, JSON.stringify(s));
      assert.equal(s.agree, s.total);
      assert.ok(s.cpuMs > 0 && s.gpuMs > 0);
      assert.equal(await row.getAttribute("data-top1"), `${s.total}/${s.total}`);
      assert.equal(await page.locator('[data-testid="compare"] tr[data-backend="cpu"]').count(), 1);
      report.push(`page compare (${s.views} views, default int8 model): max |Δlogit| ${s.maxAbs.toExponential(2)}, rel L2 ${s.rel.toExponential(2)}, top-1 ${s.agree}/${s.total}, CPU ${s.cpuMs.toFixed(1)} ms/view, SwiftShader ${s.gpuMs.toFixed(1)} ms/view`);
    }
    assert.deepEqual(problems, []);
    await page.close();
  }
});

test("the live camera mode on WebGPU: a looped synthetic clip's class is the live top-1, and the GPU ran", async () => {
  // A clip of the procedural dataset that cast classify gets right, as Chromium's fake camera (looped y4m).
  const ds = path.join(tmp, "live-synth");
  sh(cli, ["dataset", "--seed", "4321", "--clips", "1", "--out", ds], { stdio: ["ignore", "ignore", "ignore"] });
  const truth = fs.readFileSync(path.join(ds, "classes.txt"), "utf8").trim().split("\n")[Number(fs.readFileSync(path.join(ds, "annotations.csv"), "utf8").split(" ")[1])];
  assert.equal(native(path.join(ds, "clip_000000.mp4"))[0].label, truth);
  const y4m = path.join(tmp, "live.y4m");
  sh("ffmpeg", ["-v", "error", "-nostdin", "-y", "-i", path.join(ds, "clip_000000.mp4"), "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", y4m]);
  const browser = await chromium.launchPersistentContext(path.join(tmp, "profile-live"), {
    executablePath, headless: true, viewport: { width: 1280, height: 900 },
    args: [...COMMON_FLAGS, ...WEBGPU_FLAGS, ...CPU_MEDIA_FLAGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", `--use-file-for-fake-video-capture=${y4m}`],
  });
  try {
    const { page, problems } = await openSite(browser, "?backend=webgpu");
    assert.equal(await page.getByTestId("backend").textContent(), "WebGPU · SwiftShader");
    await page.getByTestId("camera").click();
    await page.waitForFunction(() => globalThis.castgoSite.live.readings.length >= 5, null, { timeout: 300000 });
    const readings = await page.evaluate(() => globalThis.castgoSite.live.readings.map((r) => r.label));
    const gpu = await page.evaluate(() => globalThis.castgoSite.gpuInfo());
    await page.getByTestId("camera").click();
    const right = readings.filter((l) => l === truth).length;
    report.push(`live camera on WebGPU (SwiftShader): ${truth} right in ${right}/${readings.length} readings; GPU runs ${gpu.runs}, CPU runs ${gpu.cpuRuns}`);
    assert.ok(right > readings.length / 2, `${truth}: ${readings.join(", ")}`);
    assert.ok(gpu.runs >= readings.length && gpu.cpuRuns === 0, `the windows ran on the GPU: ${JSON.stringify(gpu)}`);
    assert.match(await page.getByTestId("live-stats").textContent(), /on WebGPU/);
    assert.deepEqual(problems, []);
    await page.close();
  } finally {
    await browser.close();
  }
});

test("a lost WebGPU device: the page runs the video on the WASM pool and says so", async () => {
  const video = makeClip("lost.mp4");
  const want = native(video);
  const { page, problems } = await openSite(gpuBrowser, "?backend=webgpu");
  assert.equal(await page.getByTestId("backend").textContent(), "WebGPU · SwiftShader");
  assert.equal(await page.evaluate(() => globalThis.castgoSite.destroyGPU().then((m) => m.destroyed)), true);
  const got = await classifyIn(page, video);
  const backend = page.getByTestId("backend");
  assert.match(await backend.textContent(), /^WASM · \d+ workers?$/);
  assert.match(await backend.getAttribute("data-fallback"), /^WebGPU failed: .*device lost/);
  assertTop5(got, want);
  assert.deepEqual(problems, []);
  await page.close();
});

test("without WebGPU the page falls back to the WASM pool and says so", async () => {
  const video = makeClip("cpu.mp4");
  const want = native(video);
  // No WebGPU flags: Debian's Chromium then gives no adapter (or no navigator.gpu).
  const browser = await chromium.launchPersistentContext(path.join(tmp, "profile-nogpu"), {
    executablePath, headless: true, viewport: { width: 1280, height: 900 }, args: [...COMMON_FLAGS, "--disable-gpu", "--disable-features=WebGPU"],
  });
  try {
    for (const query of ["", "?backend=webgpu"]) {
      const { page, problems } = await openSite(browser, query);
      const backend = page.getByTestId("backend");
      assert.match(await backend.textContent(), /^WASM · \d+ workers?$/);
      assert.match(await backend.getAttribute("data-fallback"), /^WebGPU unavailable: /);
      if (!query) assertTop5(await classifyIn(page, video), want);
      assert.equal(await page.getByTestId("compare-backends").isDisabled(), true);
      assert.deepEqual(problems, []);
      await page.close();
    }
    const { page } = await openSite(browser, "?backend=cpu");
    assert.equal(await page.getByTestId("backend").getAttribute("data-fallback"), "", "CPU chosen: no fallback");
    await page.close();
  } finally {
    await browser.close();
  }
});
