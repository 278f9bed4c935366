// Shared by the browser tests (site.test.mjs, webgpu.test.mjs): building the site and the tools, serving the
// site, making test videos, and what `cast classify` and ffmpeg make of them.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

// root is the repository root.
export const root = fileURLToPath(new URL("../..", import.meta.url));

// The Go toolchain of toolchain.env (where it is written once) with the SIMD experiment, as build.sh uses.
const toolchain = /^export GOTOOLCHAIN=(\S+)$/m.exec(fs.readFileSync(path.join(root, "toolchain.env"), "utf8"))[1];
const env = { ...process.env, GOTOOLCHAIN: process.env.GOTOOLCHAIN || toolchain, GOEXPERIMENT: process.env.GOEXPERIMENT ?? "simd" };

// sh runs cmd in the repository root and returns its stdout (stderr goes to the test's).
export function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { cwd: root, env, stdio: ["ignore", "pipe", "inherit"], maxBuffer: 256 << 20, ...opts });
}

// YUV holds colours as [Y, U, V] whose RGB conversion saturates every channel under BT.601 and BT.709 (see
// site.test.mjs): a browser's frames of such a clip equal ffmpeg's byte for byte.
export const YUV = { black: [0, 128, 128], white: [255, 128, 128], green: [172, 0, 0], magenta: [79, 255, 255], yellow: [228, 0, 141] };

// X264 are the H.264 encoding arguments of the test clips.
export const X264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-crf", "12"];

// makeVideo writes to out a 3 s, 8 fps clip (24 frames) of size w×h: a 16×16 square of colour fg, whose top-left
// corner is at the expressions x, y of the frame number N (even values), on a background bg; both [Y, U, V].
export function makeVideo(out, w, h, bg, fg, x, y, codecArgs = X264) {
  // geq's X, Y are plane coordinates; X/SW, Y/SH the luma coordinates (SW = SH = 1/2 on the chroma planes).
  const inBox = `between(X/SW,${x},${x}+15)*between(Y/SH,${y},${y}+15)`;
  const plane = (i) => `if(${inBox},${fg[i]},${bg[i]})`;
  sh("ffmpeg", ["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
    `color=c=black:s=${w}x${h}:r=8:d=3,format=yuv420p,geq=lum='${plane(0)}':cb='${plane(1)}':cr='${plane(2)}'`,
    ...codecArgs, out]);
  return out;
}

// ffmpegFrames decodes every frame the way `cast classify` does (ffmpeg → packed RGB24).
export function ffmpegFrames(file, w, h) {
  const raw = sh("ffmpeg", ["-v", "error", "-nostdin", "-i", file, "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
  const n = raw.length / (w * h * 3);
  return Array.from({ length: n }, (_, i) => raw.subarray(i * w * h * 3, (i + 1) * w * h * 3));
}

// frameDiffs compares the page's RGBA frames (aligned with neededFrames) with ffmpeg's RGB24 frames of the same
// indices: per frame, the largest and the summed |Δ| over the RGB channels, and how many values were compared.
export function frameDiffs(ref, neededFrames, rgbaFrames) {
  return neededFrames.map((idx, k) => {
    const rgba = rgbaFrames[k];
    let max = 0, sum = 0;
    for (let p = 0, q = 0; q < ref[idx].length; p += 4, q += 3) {
      for (let c = 0; c < 3; c++) {
        const d = Math.abs(rgba[p + c] - ref[idx][q + c]);
        max = Math.max(max, d);
        sum += d;
      }
    }
    return { index: idx, max, sum, count: ref[idx].length };
  });
}

// buildSiteAndTools builds the site into dist with site/build.sh unless dist already holds a built site (then
// it is used as is), and the cast and serve commands into tmp; it returns their paths.
export function buildSiteAndTools(dist, tmp) {
  if (!["index.html", "app.js", "dom.js", "live.js", "explain.js", "worker.js", "cast.wasm", "wasm_exec.js", "models/default-int8.safetensors"].every((f) => fs.existsSync(path.join(dist, f)))) {
    sh(path.join(root, "site", "build.sh"), [dist], { stdio: ["ignore", "inherit", "inherit"] });
  }
  const cli = path.join(tmp, "cast");
  sh("go", ["build", "-o", cli, "./tools/cast"]);
  const serveBin = path.join(tmp, "serve");
  sh("go", ["build", "-o", serveBin, "./tools/serve"]);
  return { cli, serveBin };
}

// nativeClassify returns the result of `cast classify --model default-int8` on file with every class's
// probability (--top 1000): the reference the page must reproduce.
export function nativeClassify(cli, file) {
  const out = JSON.parse(sh(cli, ["classify", "--model", "default-int8", "--top", "1000", "--json", file], { stdio: ["ignore", "pipe", "ignore"] }));
  assert.equal(out.length, 1);
  assert.ok(out[0].result, `cast classify failed: ${out[0].error}`);
  return out[0].result;
}

// startServe runs the serve binary on dist at 127.0.0.1 on a free port and resolves to {server, url} once it
// says where it listens (or rejects after 15 s, or when it exits first).
export async function startServe(serveBin, dist) {
  const server = spawn(serveBin, ["--dir", dist, "--addr", "127.0.0.1:0"], { stdio: ["ignore", "ignore", "pipe"] });
  const url = await new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${buf}`)), 15000);
    server.stderr.on("data", (d) => {
      buf += d;
      const m = /serving .* on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(buf);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    server.on("exit", (code) => reject(new Error(`serve exited with ${code}: ${buf}`)));
  });
  server.stderr.resume();
  return { server, url };
}
