// Browser tests of the page's live camera mode (run from the repository root: node --test site/test/).
//
// Chromium's fake camera plays a y4m file in a loop (--use-fake-device-for-media-stream
// --use-file-for-fake-video-capture=FILE, --use-fake-ui-for-media-stream grants the permission). The files are
// clips of the procedural dataset (`cast dataset`, the default model's classes) that `cast classify` gets
// right, converted by ffmpeg; for each of two clips of different classes, the live top-1 must be the clip's
// class in most readings. Also: the window comes from the model file (castgo.clip_seconds, 2 s), Stop and
// leaving the page release the camera, a denied permission gets a clear message, and every request stays on
// the page's origin. Like site.test.mjs it uses $CASTGO_SITE_DIST (a built site, or where to build it),
// $CASTGO_CHROMIUM and $CASTGO_ARTIFACTS (screenshots).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { buildSiteAndTools, nativeClassify, root, sh, startServe } from "./common.mjs";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "castgo-live-test-"));
const dist = process.env.CASTGO_SITE_DIST || path.join(tmp, "site");
const artifacts = process.env.CASTGO_ARTIFACTS || path.join(root, "dist", "artifacts");
const executablePath = process.env.CASTGO_CHROMIUM || "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required"];
const SEED = 4321; // the dataset seed of the camera clips (training used 1000, its evaluation 9000)
const READINGS = 10; // live readings collected per clip
const MAJORITY = 0.5; // the clip's class must be the live top-1 in more than this fraction of them

let server, serverURL, cli;
const clips = []; // {y4m, truth}
const report = [];

before(async () => {
  fs.mkdirSync(artifacts, { recursive: true });
  let serveBin;
  ({ cli, serveBin } = buildSiteAndTools(dist, tmp));
  ({ server, url: serverURL } = await startServe(serveBin, dist));
  // Two clips of different classes that the CLI classifies correctly, as looping fake-camera files.
  const ds = path.join(tmp, "synth");
  sh(cli, ["dataset", "--seed", String(SEED), "--clips", "16", "--out", ds], { stdio: ["ignore", "ignore", "ignore"] });
  const classes = fs.readFileSync(path.join(ds, "classes.txt"), "utf8").trim().split("\n");
  for (const line of fs.readFileSync(path.join(ds, "annotations.csv"), "utf8").trim().split("\n")) {
    const [video, label] = line.split(" ");
    const truth = classes[Number(label)];
    const file = path.join(ds, video);
    if (clips.some((c) => c.truth === truth) || nativeClassify(cli, file).top.logits[0].label !== truth) continue;
    const y4m = path.join(tmp, `${video}.y4m`);
    sh("ffmpeg", ["-v", "error", "-nostdin", "-y", "-i", file, "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", y4m]);
    clips.push({ y4m, truth, video });
    if (clips.length === 2) break;
  }
  assert.equal(clips.length, 2, "two clips of different classes that cast classify gets right");
});

after(async () => {
  server?.kill();
  if (report.length) console.log("# live camera:\n" + report.map((l) => `#   ${l}`).join("\n"));
  fs.rmSync(tmp, { recursive: true, force: true });
});

// withBrowser runs fn(page, problems, requests) in a fresh Chromium started with the extra flags, on the page
// with its default model loaded.
async function withBrowser(name, flags, fn) {
  const browser = await chromium.launchPersistentContext(path.join(tmp, `profile-${name}`), {
    executablePath, headless: true, viewport: { width: 1280, height: 1000 }, args: [...FLAGS, ...flags],
  });
  const requests = [];
  browser.on("request", (r) => requests.push(r.url()));
  try {
    const page = await browser.newPage();
    const problems = [];
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    page.on("console", (m) => { if (m.type() === "error" || /Content.Security.Policy/i.test(m.text())) problems.push(`console ${m.type()}: ${m.text()}`); });
    await page.goto(serverURL);
    await page.waitForFunction(() => globalThis.castgoSite?.model, null, { timeout: 60000 });
    await fn(page, problems);
    const origin = new URL(serverURL).origin;
    assert.deepEqual(requests.filter((u) => !u.startsWith(origin + "/") && !u.startsWith("blob:" + origin + "/") && !u.startsWith("data:")), [], "requests to other origins");
  } finally {
    await browser.close();
  }
}

const fakeCamera = (y4m) => ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", `--use-file-for-fake-video-capture=${y4m}`];

for (const i of [0, 1]) {
  test(`live camera, fake clip ${i + 1}: its class is the live top-1 in most readings`, async () => {
    const { y4m, truth, video } = clips[i];
    await withBrowser(`cam${i}`, fakeCamera(y4m), async (page, problems) => {
      // The window comes from the model file: 2 s of training clips.
      assert.equal(await page.getByTestId("live-window").inputValue(), "2");
      assert.match(await page.getByTestId("live-window-why").textContent(), /castgo\.clip_seconds/);
      await page.getByTestId("camera").click();
      await page.waitForFunction((n) => globalThis.castgoSite.live.readings.length >= n, READINGS, { timeout: 180000 });
      const live = await page.evaluate(() => ({
        readings: globalThis.castgoSite.live.readings.map((r) => r.label),
        latency: globalThis.castgoSite.live.readings.map((r) => r.latencyMs),
        label: document.querySelector('[data-testid="live"]').dataset.label,
        stats: document.querySelector('[data-testid="live-stats"]').textContent,
        rate: globalThis.castgoSite.live.rate,
        timeline: document.querySelectorAll('[data-testid="live-timeline"] li').length,
        top5: document.querySelectorAll('[data-testid="live-predictions"] li[data-label]').length,
        tracks: document.getElementById("live-video").srcObject.getTracks().map((t) => t.readyState),
      }));
      const right = live.readings.filter((l) => l === truth).length;
      report.push(`${video} (${truth}): live top-1 right in ${right}/${live.readings.length} readings; ${live.rate.toFixed(2)} classifications/s, ` +
        `median latency ${live.latency.sort((a, b) => a - b)[Math.floor(live.latency.length / 2)].toFixed(0)} ms; readings: ${live.readings.join(", ")}`);
      assert.ok(right > MAJORITY * live.readings.length, `${truth}: right in ${right} of ${live.readings.length} readings: ${live.readings.join(", ")}`);
      assert.ok(live.readings.includes(live.label), `data-label ${live.label} is a reading`);
      assert.equal(live.top5, 5);
      assert.ok(live.timeline >= Math.min(live.readings.length, 10), `timeline of ${live.timeline}`);
      assert.match(live.stats, /^\d+\.\d classifications\/s · latency \d+(\.\d\d)? m?s /);
      assert.ok(live.rate > 0, `rate ${live.rate}`);
      assert.deepEqual(live.tracks, ["live"]);
      if (i === 0) await page.screenshot({ path: path.join(artifacts, "site-live.png"), fullPage: true });

      // Stop releases the camera.
      await page.evaluate(() => { globalThis.liveTracks = document.getElementById("live-video").srcObject.getTracks(); });
      await page.getByTestId("camera").click();
      assert.deepEqual(await page.evaluate(() => globalThis.liveTracks.map((t) => t.readyState)), ["ended"]);
      assert.equal(await page.evaluate(() => globalThis.castgoSite.live.running), false);
      assert.equal(await page.getByTestId("camera").textContent(), "Use camera");
      const n = await page.evaluate(() => globalThis.castgoSite.live.readings.length);
      await page.waitForTimeout(1000);
      assert.equal(await page.evaluate(() => globalThis.castgoSite.live.readings.length), n, "no reading after Stop");

      // So does leaving the page (pagehide).
      await page.getByTestId("camera").click();
      await page.waitForFunction(() => globalThis.castgoSite.live.running && document.getElementById("live-video").srcObject);
      await page.evaluate(() => { globalThis.liveTracks = document.getElementById("live-video").srcObject.getTracks(); });
      await page.evaluate(() => dispatchEvent(new PageTransitionEvent("pagehide", { persisted: true })));
      assert.deepEqual(await page.evaluate(() => globalThis.liveTracks.map((t) => t.readyState)), ["ended"]);
      assert.equal(await page.getByTestId("error").isVisible(), false);
      assert.deepEqual(problems, []);
    });
  });
}

test("live camera: the user's window length is used; a denied permission gets a clear message", async () => {
  // No --use-fake-ui-for-media-stream: headless Chromium denies the permission prompt.
  await withBrowser("denied", ["--use-fake-device-for-media-stream", "--deny-permission-prompts"], async (page, problems) => {
    await page.getByTestId("live-window").fill("3.5");
    await page.getByTestId("live-window").dispatchEvent("change");
    assert.equal(await page.evaluate(() => globalThis.castgoSite.live.windowSeconds), 3.5);
    assert.match(await page.getByTestId("live-window-why").textContent(), /the model suggests 2 s/);
    await page.getByTestId("camera").click();
    const error = page.getByTestId("error");
    await error.waitFor({ state: "visible", timeout: 30000 });
    assert.match(await error.textContent(), /^Camera permission was denied: allow this page to use the camera/);
    assert.equal(await page.evaluate(() => globalThis.castgoSite.live.running), false);
    assert.equal(await page.getByTestId("camera").textContent(), "Use camera");
    await page.screenshot({ path: path.join(artifacts, "site-live-denied.png"), fullPage: true });
    assert.deepEqual(problems, []);
  });
});
