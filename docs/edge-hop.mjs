// Measures one hop of a sharded model's activations in workerd: a stage worker's request and answer of one
// view (9.7 MB each way for base), apart from the stage's run. For each shard-worker build given, it serves
// the sharded directory with that build (only the measured stage loads: isolates start on their first
// request) and, alternating between the builds, sends the stage a valid message of that view's size
// (zeros), timing the request against the stage's own X-Castgo-Ms, and a message of the right size with a
// wrong header, which the stage reads whole and refuses (400): the request direction alone.
//
//   node docs/edge-hop.mjs SHARDS_DIR STAGE_INDEX REPS LABEL=DIST_DIR [LABEL=DIST_DIR…]
//
// DIST_DIR is a directory worker/shard-build.sh wrote (app.wasm, entry.mjs, wasm_exec.js, runtime.mjs). It
// prints, per build, each repetition's wall ms, stage ms and their difference (the hop: the message in and
// out of JS and Go, its decoding and encoding), and the 400's wall ms. Not a test: a measurement.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const [shards, stageArg, repsArg, ...builds] = process.argv.slice(2);
if (!shards || !stageArg || !repsArg || builds.length === 0) {
  console.error("usage: node docs/edge-hop.mjs SHARDS_DIR STAGE_INDEX REPS LABEL=DIST_DIR [LABEL=DIST_DIR…]");
  process.exit(2);
}
const idx = Number(stageArg);
const reps = Number(repsArg);
const manifest = JSON.parse(fs.readFileSync(path.join(shards, "manifest.json"), "utf8"));
const entry = manifest.stages[idx];
const cfg = manifest.config;

// The element counts of the stage's input: the clip for the embedding stage, else both experts' tokens.
const patches = (cfg.img_size / cfg.patch_size) ** 2;
const counts = entry.embed
  ? [cfg.in_chans * cfg.all_frames * cfg.img_size * cfg.img_size]
  : [(cfg.all_frames / 2) * (patches + 1) * cfg.embed_dim, (cfg.all_frames / cfg.tubelet_size) * patches * cfg.embed_dim];

const crcTable = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b) {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = crcTable[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// message frames zero tensors of counts for stage to (worker/stage/wire.go).
function message(to, counts, magic = "CGA1") {
  const head = 16 + 4 * counts.length;
  const b = new Uint8Array(head + 4 * counts.reduce((a, n) => a + n, 0));
  const dv = new DataView(b.buffer);
  for (let i = 0; i < 4; i++) b[i] = magic.charCodeAt(i);
  dv.setUint32(4, to, true);
  dv.setUint32(8, counts.length, true);
  counts.forEach((n, i) => dv.setUint32(16 + 4 * i, n, true));
  dv.setUint32(12, crc32(b.subarray(16)), true);
  return b;
}

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "castgo-edge-hop-"));
const procs = [];
process.on("exit", () => {
  for (const p of procs) p.kill("SIGKILL");
  fs.rmSync(tmp, { recursive: true, force: true });
});

// serve starts workerd on the shards with one build, exposing stage idx on its own socket.
async function serve(label, dist) {
  const d = path.join(tmp, label);
  fs.mkdirSync(d);
  for (const f of ["app.wasm", "entry.mjs", "wasm_exec.js", "runtime.mjs"]) fs.copyFileSync(path.join(dist, f), path.join(d, f));
  execFileSync("go", ["run", "./worker/cmd/shardconfig", "-shards", shards, "-dist", d], { cwd: root, stdio: "ignore" });
  const capnp = path.join(d, "workerd.capnp");
  const c = fs.readFileSync(capnp, "utf8").replace("    # extra sockets\n", `    (name = "stage", address = "127.0.0.1:0", http = (), service = "stage-${idx}"),\n`);
  fs.writeFileSync(capnp, c);
  const http = await freePort();
  const port = await freePort();
  const p = spawn(path.join(root, "node_modules", ".bin", "workerd"), ["serve", capnp, "--socket-addr", `http=127.0.0.1:${http}`, "--socket-addr", `stage=127.0.0.1:${port}`], { cwd: d, stdio: ["ignore", "ignore", "inherit"] });
  procs.push(p);
  const url = `http://127.0.0.1:${port}`;
  for (const t0 = Date.now(); ; ) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.status === 200) break;
      if (r.status === 503) throw new Error(`${label}: ${await r.text()}`);
    } catch (e) {
      if (e.message.startsWith(label)) throw e;
    }
    if (Date.now() - t0 > 600_000) throw new Error(`${label}: stage ${idx} not healthy within 10 min`);
    await new Promise((r) => setTimeout(r, 500));
  }
  return url;
}

const good = message(idx, counts);
const bad = message(idx, counts, "XXXX");
console.log(`stage ${entry.name} (${JSON.stringify(entry.blocks)}), message ${good.length} bytes, ${reps} repetitions per build`);
const urls = {};
for (const b of builds) {
  const [label, dist] = b.split("=");
  urls[label] = await serve(label, dist);
}
const rows = Object.fromEntries(Object.keys(urls).map((l) => [l, []]));
for (let r = 0; r < reps; r++) {
  for (const [label, url] of Object.entries(urls)) {
    let t0 = performance.now();
    const res = await fetch(`${url}/v1/stage`, { method: "POST", body: good, headers: { "content-type": "application/x-castgo-activations" } });
    const out = new Uint8Array(await res.arrayBuffer());
    const wall = performance.now() - t0;
    if (res.status !== 200) throw new Error(`${label}: ${res.status} ${new TextDecoder().decode(out)}`);
    const ms = Number(res.headers.get("x-castgo-ms"));
    t0 = performance.now();
    const res400 = await fetch(`${url}/v1/stage`, { method: "POST", body: bad });
    await res400.arrayBuffer();
    const in400 = performance.now() - t0;
    if (res400.status !== 400) throw new Error(`${label}: a wrong header answered ${res400.status}`);
    rows[label].push({ wall, ms, hop: wall - ms, in400, answer: out.length });
    console.log(`${label.padEnd(6)} rep ${r}: wall ${wall.toFixed(0)} ms, stage run ${ms.toFixed(0)} ms, hop (wall − run) ${(wall - ms).toFixed(0)} ms, answer ${out.length} B; request alone (400) ${in400.toFixed(0)} ms`);
  }
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
for (const [label, rs] of Object.entries(rows)) {
  console.log(`${label.padEnd(6)} median: hop ${med(rs.map((r) => r.hop)).toFixed(0)} ms, request alone ${med(rs.map((r) => r.in400)).toFixed(0)} ms, run ${med(rs.map((r) => r.ms)).toFixed(0)} ms`);
}
process.exit(0);
