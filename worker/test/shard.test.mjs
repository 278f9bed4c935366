// Tests of a sharded model served by a chain of edge workers in workerd (worker/cmd/shardworker, the
// configs of worker/cmd/shardconfig, the files of `cast shard`). Run from the repository root:
// node --test worker/test/shard.test.mjs. Loopback only, nothing is deployed.
//
//   - the small golden (int8, hash-recipe weights from its model.pt) split into 2 stages: a PNG clip
//     classified through the coordinator gives the probabilities of `cast classify` on the unsplit model
//     file, and the response reports both stages (blocks, wasm memory under 128 MiB, ms) and the request id;
//   - the tiny golden in 2 stages, with faults: stage 1 down, its object missing, a stage that does not
//     answer in time, and a corrupt activation each answer a 502/503 JSON naming the stage within seconds,
//     and the coordinator keeps serving; views × stages over the limit is a 400;
//   - `cast shard --verify` refuses a tampered manifest, naming the stage.
//
// It builds the shard worker with worker/shard-build.sh unless $CASTGO_SHARD_DIST names a directory it wrote.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { frame, png } from "./frames.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "castgo-shard-test-"));
const dist = process.env.CASTGO_SHARD_DIST ? path.resolve(process.env.CASTGO_SHARD_DIST) : path.join(tmp, "dist");
const cli = path.join(tmp, "cast");
const goldens = path.join(root, "..", "shared", "goldens");
const probTol = 1e-5; // native amd64 (SIMD kernels) vs wasm (portable kernels) of the same Go code
const faultMs = 20_000; // a fault must be answered within this (seconds, not a hang)
const toolchain = /^export GOTOOLCHAIN=(\S+)$/m.exec(fs.readFileSync(path.join(root, "toolchain.env"), "utf8"))[1]; // written once there
const env = { ...process.env, GOTOOLCHAIN: toolchain, GOEXPERIMENT: process.env.GOEXPERIMENT ?? "simd" };

const procs = [];

function run(cmd, args) {
  return execFileSync(cmd, args, { cwd: root, env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
}

// model converts a golden's model.pt to an int8 model file and shards it into 2 stages.
function model(name) {
  const file = path.join(tmp, `${name}-int8.safetensors`);
  const g = process.env.CAST_SHARED ? path.join(process.env.CAST_SHARED, "goldens", name) : path.join(goldens, name);
  run(cli, ["convert", "--checkpoint", path.join(g, "model.pt"), "--config", path.join(g, "config.json"), "--quantize", "int8", "--views", "1x1", "--out", file]);
  const dir = path.join(tmp, `${name}-shards`);
  run(cli, ["shard", "--model", file, "--out", dir, "--stages", "2"]);
  return { file, dir };
}

let small, tiny;
before(() => {
  if (!process.env.CASTGO_SHARD_DIST) run(path.join(root, "worker", "shard-build.sh"), [dist]);
  for (const f of ["app.wasm", "entry.mjs", "wasm_exec.js", "runtime.mjs"]) {
    assert.ok(fs.existsSync(path.join(dist, f)), `${dist} lacks ${f}: run worker/shard-build.sh ${dist}`);
  }
  run("go", ["build", "-o", cli, "./tools/cast"]);
  small = model("small");
  tiny = model("tiny");
});

after(() => {
  for (const p of procs) p.kill("SIGKILL");
  fs.rmSync(tmp, { recursive: true, force: true });
});

// freePort returns a port nothing listens on now, never the same one twice in this file.
const handedOut = new Set();
async function freePort() {
  for (;;) {
    const port = await new Promise((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });
    // Closed again, the port can come back from the next call: never hand one out twice.
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

// serve writes the workerd config of a sharded directory into its own dist copy (edited by edit) and
// starts workerd; it resolves with the base URL of each socket once the coordinator's /healthz is 200.
async function serve(name, dir, edit = (c) => c, sockets = {}) {
  const d = path.join(tmp, `dist-${name}`);
  fs.mkdirSync(d, { recursive: true });
  for (const f of ["app.wasm", "entry.mjs", "wasm_exec.js", "runtime.mjs"]) fs.copyFileSync(path.join(dist, f), path.join(d, f));
  run("go", ["run", "./worker/cmd/shardconfig", "-shards", dir, "-dist", d]);
  const capnp = path.join(d, "workerd.capnp");
  fs.writeFileSync(capnp, edit(fs.readFileSync(capnp, "utf8")));
  const ports = { http: await freePort() };
  const args = ["serve", capnp, "--socket-addr", `http=127.0.0.1:${ports.http}`];
  for (const s of Object.keys(sockets)) {
    ports[s] = await freePort();
    args.push("--socket-addr", `${s}=127.0.0.1:${ports[s]}`);
  }
  const p = spawn(path.join(root, "node_modules", ".bin", "workerd"), args, { cwd: d, stdio: ["ignore", "inherit", "inherit"] });
  procs.push(p);
  const urls = Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, `http://127.0.0.1:${v}`]));
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      const r = await fetch(`${urls.http}/healthz`);
      if (r.status === 200) break;
    } catch {}
    assert.ok(Date.now() < deadline, `${name}: the coordinator's /healthz did not answer 200 within 300 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
  return { urls, stop: () => p.kill("SIGKILL") };
}

// PNG frames of a clip: a red disc moving right over a textured background (./frames.mjs).
const frames = Array.from({ length: 8 }, (_, t) => png(48, 48, frame(t, 48, 48)));

async function classify(base, query = "views=1x1&top=20", headers = {}) {
  const form = new FormData();
  frames.forEach((f, i) => form.append("frame", new Blob([f], { type: "image/png" }), `f${i}.png`));
  const t0 = performance.now();
  const r = await fetch(`${base}/v1/classify?${query}`, { method: "POST", body: form, headers });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, json, text, ms: performance.now() - t0, headers: r.headers };
}

test("the small golden in 2 stages classifies like cast classify on the unsplit model", async () => {
  const { urls, stop } = await serve("small", small.dir);
  try {
    const res = await classify(urls.http, "views=1x1&top=20", { "X-Request-Id": "test-small-1" });
    assert.equal(res.status, 200, res.text);
    const dir = path.join(tmp, "frames");
    fs.mkdirSync(dir, { recursive: true });
    frames.forEach((f, i) => fs.writeFileSync(path.join(dir, `f${String(i).padStart(3, "0")}.png`), f));
    const native = JSON.parse(run(cli, ["classify", "--model", small.file, "--json", "--views", "1x1", "--top", "20", dir]));
    const want = (native[0]?.result ?? native.result ?? native).top.logits;
    const got = res.json.top.logits;
    assert.equal(got.length, 20);
    for (let i = 0; i < want.length; i++) {
      assert.equal(got[i].index, want[i].index, `rank ${i}: class ${got[i].index} vs native ${want[i].index}`);
      assert.ok(Math.abs(got[i].prob - want[i].prob) <= probTol, `class ${want[i].index}: ${got[i].prob} vs native ${want[i].prob}`);
    }
    assert.equal(res.json.request_id, "test-small-1");
    assert.equal(res.headers.get("x-request-id"), "test-small-1");
    assert.deepEqual(res.json.stages.map((s) => [s.name, s.blocks]), [["stage-0", [0, 6]], ["stage-1", [6, 12]]]);
    for (const s of res.json.stages) {
      assert.ok(s.wasm_memory_bytes > 0 && s.wasm_memory_bytes < 128 * 2 ** 20, `${s.name}: wasm memory ${s.wasm_memory_bytes}`);
      assert.ok(s.ms > 0 && s.views === 1, `${s.name}: ${JSON.stringify(s)}`);
      assert.ok(s.wall_ms >= s.ms - 0.01, `${s.name}: the coordinator's wall time is under the stage's run: ${JSON.stringify(s)}`);
    }
    test.diagnostic?.(`small 2 stages: ${JSON.stringify(res.json.stages)}; total ${Math.round(res.ms)} ms`);
    console.log(`# small golden, 2 stages, 1x1: ${JSON.stringify(res.json.stages)}; total ${Math.round(res.ms)} ms`);

    // Two views: the coordinator pipelines them (one view per stage at a time), so each stage serves two
    // requests one after the other; the result must still be the unsplit model's.
    const two = await classify(urls.http, "views=2x1&top=5");
    assert.equal(two.status, 200, two.text);
    const native2 = JSON.parse(run(cli, ["classify", "--model", small.file, "--json", "--views", "2x1", "--top", "5", dir]));
    const want2 = (native2[0]?.result ?? native2.result ?? native2).top.logits;
    two.json.top.logits.forEach((g, i) => {
      assert.equal(g.index, want2[i].index, `2x1 rank ${i}: class ${g.index} vs native ${want2[i].index}`);
      assert.ok(Math.abs(g.prob - want2[i].prob) <= probTol, `2x1 class ${g.index}: ${g.prob} vs native ${want2[i].prob}`);
    });
    for (const s of two.json.stages) {
      assert.equal(s.views, 2, `${s.name}: ${JSON.stringify(s)}`);
      assert.ok(s.wasm_memory_bytes < 128 * 2 ** 20, `${s.name}: wasm memory ${s.wasm_memory_bytes}`);
    }
    console.log(`# small golden, 2 stages, 2x1: ${JSON.stringify(two.json.stages)}; total ${Math.round(two.ms)} ms`);
  } finally {
    stop();
  }
});

// The fault services: a stage that never answers in time, and a proxy that flips a byte of stage 0's answers.
const faultWorkers = `
const slow :Workerd.Worker = (
  modules = [(name = "slow.mjs", esModule = "export default { async fetch() { await new Promise((r) => setTimeout(r, 600000)); return new Response('late'); } };")],
  compatibilityDate = "2025-11-01",
);
const corrupt :Workerd.Worker = (
  modules = [(name = "corrupt.mjs", esModule = "export default { async fetch(req, env) { const r = await env.NEXT.fetch(req); if (r.status !== 200) return r; const b = new Uint8Array(await r.arrayBuffer()); b[b.length - 1] ^= 1; return new Response(b, { status: 200, headers: r.headers }); } };")],
  compatibilityDate = "2025-11-01",
  bindings = [(name = "NEXT", service = "stage-0")],
);
`;

// coordinatorVariant copies the coordinator's worker under a new name with its stage bindings replaced.
function coordinatorVariant(capnp, name, replace) {
  const start = capnp.indexOf("const coordinator :Workerd.Worker");
  const end = capnp.indexOf(");\n", start) + 3;
  let block = capnp.slice(start, end).replace("const coordinator ", `const ${name} `);
  for (const [from, to] of replace) block = block.replace(from, to);
  return block;
}

test("faults answer a 502/503 JSON naming the stage within seconds; the coordinator stays up", async () => {
  // A copy of the tiny shards without stage-1's file: that stage's object is missing.
  const missing = path.join(tmp, "tiny-missing");
  fs.cpSync(tiny.dir, missing, { recursive: true });
  fs.rmSync(path.join(missing, "stage-1.safetensors"));
  // Stage 1 of the "down" coordinator: a port held by a listener that resets every connection. A port merely
  // found free and closed again could be handed to one of workerd's sockets below (once it went to stage 0's,
  // and "down" got stage 0's 400); held, it stays unreachable for the whole test.
  const down = await new Promise((resolve) => {
    const s = net.createServer((conn) => conn.destroy()).listen(0, "127.0.0.1", () => resolve(s));
  });
  const downPort = down.address().port;
  const edit = (c) => {
    let stage1 = c.slice(c.indexOf("const stage1 :Workerd.Worker"));
    stage1 = stage1.slice(0, stage1.indexOf(");\n") + 3).replace("const stage1 ", "const stage1missing ").replace('service = "shards"', 'service = "shardsmissing"');
    const extraServices = [
      '(name = "c-down", worker = .cdown)',
      `(name = "down", external = (address = "127.0.0.1:${downPort}", http = ()))`,
      '(name = "c-slow", worker = .cslow)',
      '(name = "slow", worker = .slow)',
      '(name = "c-corrupt", worker = .ccorrupt)',
      '(name = "corrupt", worker = .corrupt)',
      '(name = "c-missing", worker = .cmissing)',
      '(name = "stage-1-missing", worker = .stage1missing)',
      `(name = "shardsmissing", disk = (path = ${JSON.stringify(missing)}, writable = false))`,
      '(name = "c-limit", worker = .climit)',
    ].map((s) => `    ${s},\n`).join("");
    const extraSockets = ["down", "slow", "corrupt", "missing", "limit"].map((s) => `    (name = "${s}", address = "127.0.0.1:0", http = (), service = "c-${s}"),\n`).join("")
    const stageSocket = '    (name = "stage0", address = "127.0.0.1:0", http = (), service = "stage-0"),\n'; // stage 0 directly
    c = c.replace("    # extra services\n", extraServices).replace("    # extra sockets\n", extraSockets + stageSocket);
    c += "\n" + faultWorkers + stage1 + "\n";
    c += coordinatorVariant(c, "cdown", [['service = "stage-1"', 'service = "down"']]) + "\n";
    c += coordinatorVariant(c, "cslow", [['service = "stage-1"', 'service = "slow"'], ['(name = "ROLE", text = "coordinator"),', '(name = "ROLE", text = "coordinator"), (name = "STAGE_TIMEOUT_MS", text = "3000"),']]) + "\n";
    c += coordinatorVariant(c, "ccorrupt", [['service = "stage-0"', 'service = "corrupt"']]) + "\n";
    c += coordinatorVariant(c, "cmissing", [['service = "stage-1"', 'service = "stage-1-missing"']]) + "\n";
    c += coordinatorVariant(c, "climit", [['(name = "ROLE", text = "coordinator"),', '(name = "ROLE", text = "coordinator"), (name = "MAX_STAGE_REQUESTS", text = "4"),']]) + "\n";
    return c;
  };
  const { urls, stop } = await serve("tiny-faults", tiny.dir, edit, { down: 1, slow: 1, corrupt: 1, missing: 1, limit: 1, stage0: 1 });
  try {
    const ok = await classify(urls.http, "views=1x1&top=3");
    assert.equal(ok.status, 200, ok.text);
    const cases = [
      ["down", 502, "stage-1", /unreachable|answered 5/],
      ["slow", 503, "stage-1", /no answer within 3s/],
      ["corrupt", 502, "stage-0", /corrupt activation/],
      ["missing", 503, "stage-1", /not found/],
    ];
    for (const [name, status, stage, re] of cases) {
      const r = await classify(urls[name], "views=1x1&top=3", { "X-Request-Id": `fault-${name}` });
      assert.equal(r.status, status, `${name}: ${r.text}`);
      assert.ok(r.json && typeof r.json.error === "string", `${name}: not a JSON error: ${r.text}`);
      assert.ok(r.json.error.includes(`stage ${stage}`), `${name}: error does not name ${stage}: ${r.json.error}`);
      assert.match(r.json.error, re, name);
      assert.ok(r.json.error.includes(`fault-${name}`), `${name}: error lacks the request id: ${r.json.error}`);
      assert.ok(r.ms < faultMs, `${name}: answered after ${Math.round(r.ms)} ms`);
      console.log(`# fault ${name}: ${r.status} in ${Math.round(r.ms)} ms: ${r.json.error}`);
    }
    const h = await fetch(`${urls.missing}/healthz`);
    assert.equal(h.status, 503);
    assert.match((await h.json()).error, /stage-1/);
    const lim = await classify(urls.limit, "views=1x3&top=3");
    assert.equal(lim.status, 400, lim.text);
    assert.match(lim.json.error, /3 views through 2 stages is 6 stage requests, over the limit of 4|1x3 views through 2 stages/);
    // A stage takes its request body whole (entry.mjs → binding.handleBytes): one far over its input message
    // is refused unread with a 413, one of the wrong size is a corrupt activation; the stage stays up.
    const big = await fetch(`${urls.stage0}/v1/stage`, { method: "POST", body: new Uint8Array(2 << 20) }).catch((e) => { throw new Error(`stage 0 and a 2 MiB body: ${e.cause}`); });
    assert.equal(big.status, 413);
    assert.match((await big.json()).error, /request body is over the \d+ bytes/);
    const bad = await fetch(`${urls.stage0}/v1/stage`, { method: "POST", body: new Uint8Array(100), headers: { "X-Request-Id": "bad-1" } });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get("x-request-id"), "bad-1");
    assert.match((await bad.json()).error, /stage stage-0: corrupt activation: 100 bytes without the "CGA1" header/);
    // The coordinator and the stages are still up.
    const again = await classify(urls.http, "views=1x1&top=3");
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.json.top, ok.json.top);
  } finally {
    down.close();
    stop();
  }
});

test("cast shard --verify refuses a tampered manifest, naming the stage", () => {
  const dir = path.join(tmp, "tiny-tampered");
  fs.cpSync(tiny.dir, dir, { recursive: true });
  const mpath = path.join(dir, "manifest.json");
  const m = JSON.parse(fs.readFileSync(mpath, "utf8"));
  m.stages[1].sha256 = m.stages[0].sha256;
  fs.writeFileSync(mpath, JSON.stringify(m));
  let err;
  try {
    execFileSync(cli, ["shard", "--verify", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    err = e;
  }
  assert.ok(err, "cast shard --verify accepted a tampered manifest");
  assert.match(err.stderr, /stage "stage-1".*sha256/);
  assert.match(run(cli, ["shard", "--verify", tiny.dir]), /every file matches the manifest/);
});
