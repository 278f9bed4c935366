// Times the ViT-B ONNX models of export.py in onnxruntime-node or onnxruntime-web (its WASM backend, in Node),
// and prints one JSON line in the shape of `cast bench --json`. Used by docs/speed-ort.sh.
//
//   node docs/ort/bench.mjs run --engine node|web --model FILE --precision fp32|int8 [--threads N] [--batch B]
//                               [--tokens T] [--runs R]
//   node docs/ort/bench.mjs check --dir DIR   (both models against PyTorch's output from export.py; exits 1 on a miss)
//
// onnxruntime-node runs with intraOpNumThreads=--threads (default 2) and sequential execution; onnxruntime-web
// with env.wasm.numThreads=--threads (default 1) on its SIMD build (the only one 1.30 ships). Both use every graph
// optimization ('all'), which fuses the int8 model's DynamicQuantizeLinear → MatMulInteger → Mul chains.
// GFLOP/s are 2 × the matmuls' multiply-accumulates (vitbMACs, the same count as vitb.py's vitb_macs) per second.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const DIM = 768, MLP = 3072, DEPTH = 12;
const require = createRequire(import.meta.url);
// onnxruntime-web's exports map hides its package.json: read it from node_modules.
const versionOf = (pkg) => JSON.parse(fs.readFileSync(new URL(`./node_modules/${pkg}/package.json`, import.meta.url), 'utf8')).version;

/** vitbMACs is vitb.py's vitb_macs: the linear layers and both attention products of the 12 blocks. */
export function vitbMACs(batch, tokens) {
  const t = tokens, d = DIM;
  return batch * DEPTH * (4 * t * d * d + 2 * t * d * MLP + 2 * t * t * d);
}

async function loadEngine(engine, threads) {
  if (engine === 'node') {
    const ort = require('onnxruntime-node');
    const version = versionOf('onnxruntime-node');
    const opts = { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
      executionMode: 'sequential', graphOptimizationLevel: 'all' };
    return { ort, version, opts, name: `onnxruntime-node ${version} (CPU EP, ${threads} thread${threads > 1 ? 's' : ''})`, model: (f) => f };
  }
  if (engine === 'web') {
    const ort = await import('onnxruntime-web');
    const version = versionOf('onnxruntime-web');
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.proxy = false;
    const opts = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
    return { ort, version, opts, name: `onnxruntime-web ${version} (wasm SIMD, ${threads} thread${threads > 1 ? 's' : ''})`,
      model: (f) => new Uint8Array(fs.readFileSync(f)) };
  }
  throw new Error(`--engine ${engine}: want node or web`);
}

function seededInput(n) {
  // xorshift32 uniform in [-1.7, 1.7) (unit variance): the values do not change the speed.
  const x = new Float32Array(n);
  let s = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    x[i] = ((s >>> 0) / 4294967296 * 2 - 1) * Math.sqrt(3);
  }
  return x;
}

async function run(a) {
  const threads = a.threads ? Number(a.threads) : (a.engine === 'web' ? 1 : 2);
  const batch = Number(a.batch ?? 1), tokens = Number(a.tokens ?? 1568), runs = Number(a.runs ?? 3);
  if (!a.model || !fs.existsSync(a.model)) throw new Error(`--model ${a.model}: no such file (run docs/ort/export.py)`);
  if (!['fp32', 'int8'].includes(a.precision)) throw new Error(`--precision ${a.precision}: want fp32 or int8`);
  if (!(threads >= 1 && batch >= 1 && tokens >= 1 && runs >= 1)) throw new Error('--threads, --batch, --tokens and --runs must be positive');
  const e = await loadEngine(a.engine, threads);
  const sess = await e.ort.InferenceSession.create(e.model(a.model), e.opts);
  const feeds = { x: new e.ort.Tensor('float32', seededInput(batch * tokens * DIM), [batch, tokens, DIM]) };
  let t0 = performance.now();
  await sess.run(feeds);
  const warmup = (performance.now() - t0) / 1e3;
  const times = [];
  for (let i = 0; i < runs; i++) {
    t0 = performance.now();
    const out = await sess.run(feeds);
    times.push((performance.now() - t0) / 1e3);
    if (!Number.isFinite(out.y.data[0])) throw new Error('output is not finite');
  }
  await sess.release?.();
  const secs = times.reduce((s, t) => s + t, 0) / runs, macs = vitbMACs(batch, tokens);
  console.log(JSON.stringify({
    engine: `onnxruntime-${a.engine}`, version: e.version, backend: e.name, config: `vitb-${batch}x${tokens}`,
    quantization: a.precision === 'int8' ? 'int8' : 'none', threads, batch, tokens, runs,
    warmup_seconds: warmup, seconds_per_view: secs, seconds_all: times,
    gmac_per_view: macs / 1e9, gflops: 2 * macs / secs / 1e9,
  }));
}

function relL2(got, want) {
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) { num += (got[i] - want[i]) ** 2; den += want[i] ** 2; }
  return Math.sqrt(num / den);
}

async function check(a) {
  const read = (f) => { const b = fs.readFileSync(`${a.dir}/${f}`); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); };
  const x = read('check-input-1x64.bin'), want = read('check-output-1x64.bin');
  if (x.length !== 64 * DIM || want.length !== 64 * DIM) throw new Error('check files: want 64×768 float32 each');
  // fp32 must match PyTorch to float rounding; the int8 model within what per-tensor int8 costs (≈1–3 %).
  const bounds = { fp32: 1e-4, int8: 0.05 };
  let ok = true;
  for (const engine of ['node', 'web']) {
    const e = await loadEngine(engine, 1);
    for (const p of ['fp32', 'int8']) {
      const sess = await e.ort.InferenceSession.create(e.model(`${a.dir}/vitb-${p}.onnx`), e.opts);
      const out = await sess.run({ x: new e.ort.Tensor('float32', x, [1, 64, DIM]) });
      const err = relL2(out.y.data, want), pass = err <= bounds[p];
      ok &&= pass;
      console.log(`check ${e.name} ${p}: relative L2 ${err.toExponential(2)} against PyTorch (bound ${bounds[p]}) ${pass ? 'ok' : 'FAIL'}`);
      await sess.release?.();
    }
  }
  if (!ok) process.exit(1);
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: Object.fromEntries(['engine', 'model', 'precision', 'threads', 'batch', 'tokens', 'runs', 'dir'].map((k) => [k, { type: 'string' }])),
});
try {
  if (positionals[0] === 'run') await run(values);
  else if (positionals[0] === 'check' && values.dir) await check(values);
  else throw new Error('usage: bench.mjs run --engine node|web --model FILE --precision fp32|int8 [...] | check --dir DIR');
} catch (err) {
  console.error(`bench.mjs: ${err.message}`);
  process.exit(1);
}
