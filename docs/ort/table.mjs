// Prints docs/speed-ort.sh's table from its OUT_DIR: castgo, ONNX Runtime and PyTorch side by side, GFLOP/s and
// the castgo / ORT ratios. Each OUT_DIR/<key>.json is one benchmark's JSON line (`cast bench --json`, bench.mjs or
// bench_torch.py); OUT_DIR/load.txt the load averages before and after. Writes OUT_DIR/speed.jsonl (every line, with its key) and OUT_DIR/ratios.jsonl (one line a row).
//
//   node docs/ort/table.mjs OUT_DIR [--json]    (--json prints the ratio lines instead of the Markdown table)
import fs from 'node:fs';
import os from 'node:os';

const [dir, flag] = process.argv.slice(2);
if (!dir || (flag && flag !== '--json')) {
  console.error('usage: node docs/ort/table.mjs OUT_DIR [--json]');
  process.exit(2);
}
const read = (key) => {
  const f = `${dir}/${key}.json`;
  if (!fs.existsSync(f)) return undefined;
  try {
    return { key, ...JSON.parse(fs.readFileSync(f, 'utf8')) };
  } catch (err) {
    console.error(`table.mjs: ${f}: ${err.message}`);
    process.exit(1);
  }
};
const keys = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
const all = keys.map(read);
fs.writeFileSync(`${dir}/speed.jsonl`, all.map((r) => JSON.stringify(r)).join('\n') + '\n');

const rows = [
  ['native fp32, 2 threads', 'castgo-native-fp32', 'ort-node-fp32', 'torch-fp32'],
  ['native int8, 2 threads', 'castgo-native-int8', 'ort-node-int8', 'torch-int8'],
  ['WASM fp32, 1 thread', 'castgo-wasm-fp32', 'ort-web-fp32', null],
  ['WASM int8, 1 thread', 'castgo-wasm-int8', 'ort-web-int8', null],
];
const clip = keys.some((k) => k.endsWith('-clip'));
const g = (r) => (r ? r.gflops.toFixed(r.gflops < 100 ? 1 : 0) : '—');
const cell = (r, label) => (r ? `${g(r)} (${label ? `${r.config}, ` : ''}${r.seconds_per_view.toFixed(2)} s)` : '—');
const ratios = rows.map(([path, c, o, t]) => {
  const [rc, ro, rt, roc, rtc] = [read(c), read(o), t && read(t), read(`${o}-clip`), t && read(`${t}-clip`)];
  return {
    path, castgo: rc, ort: ro, torch: rt, ortClip: roc, torchClip: rtc,
    json: {
      path, castgo_config: rc?.config ?? null, castgo_gflops: rc?.gflops ?? null, ort_gflops: ro?.gflops ?? null,
      pytorch_gflops: rt?.gflops ?? null, castgo_over_ort: rc && ro ? rc.gflops / ro.gflops : null,
      castgo_over_pytorch: rc && rt ? rc.gflops / rt.gflops : null,
      ...(clip ? { ort_clip_gflops: roc?.gflops ?? null, pytorch_clip_gflops: rtc?.gflops ?? null } : {}),
    },
  };
});
fs.writeFileSync(`${dir}/ratios.jsonl`, ratios.map((r) => JSON.stringify(r.json)).join('\n') + '\n');
if (flag === '--json') {
  for (const r of ratios) console.log(JSON.stringify(r.json));
  process.exit(0);
}
const ratio = (x) => (x == null ? '—' : `**${x.toFixed(2)}**`);
const head = ['path', 'castgo GFLOP/s', 'ONNX Runtime GFLOP/s (ViT-B 1×1568)', 'PyTorch GFLOP/s (ViT-B 1×1568)'];
if (clip) head.push('ORT, ViT-B 8×197', 'PyTorch, ViT-B 8×197');
head.push('castgo / ORT', 'castgo / PyTorch');
console.log(`| ${head.join(' | ')} |`);
console.log(`|${head.map(() => '---').join('|')}|`);
for (const r of ratios) {
  const line = [r.path, cell(r.castgo, true), cell(r.ort), cell(r.torch)];
  if (clip) line.push(cell(r.ortClip), cell(r.torchClip));
  line.push(ratio(r.json.castgo_over_ort), ratio(r.json.castgo_over_pytorch));
  console.log(`| ${line.join(' | ')} |`);
}
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
const field = (name) => cpuinfo.match(new RegExp(`^${name}\\s*:(.*)$`, 'm'))?.[1].trim();
const flags = field('flags')?.split(/\s+/) ?? [];
const family = field('cpu family') ? ` family ${field('cpu family')} model ${field('model')}` : '';
const isa = ['avx512_vnni', 'avx_vnni', 'avx512f', 'avx2'].filter((f) => flags.includes(f));
const tiers = [...new Set(all.filter((r) => r.key.startsWith('castgo') && r.kernels).map((r) => r.kernels))];
const versions = [...new Set(all.filter((r) => r.version).map((r) => r.backend))];
console.log(`\nCPU: ${cpu}${family}, ${os.cpus().length} logical CPUs (${isa.join(', ') || 'no AVX2'})${tiers.length ? `; castgo kernels: ${tiers.join(', ')}` : ''}.`);
console.log(`Engines: ${versions.join('; ')}.`);
// With --rounds N (median.mjs), each figure is its benchmark's median round; the spread of castgo / ORT over the
// rounds, each round's castgo against the same round's ORT, says how far one round can be trusted.
const spread = ratios.filter((r) => r.castgo?.rounds_gflops?.length > 1 && r.ort?.rounds_gflops?.length === r.castgo.rounds_gflops.length)
  .map((r) => {
    const q = r.castgo.rounds_gflops.map((c, i) => c / r.ort.rounds_gflops[i]);
    return `${r.path} ${Math.min(...q).toFixed(2)}–${Math.max(...q).toFixed(2)}`;
  });
if (spread.length) {
  console.log(`Medians of ${ratios.find((r) => r.castgo?.rounds_gflops)?.castgo.rounds_gflops.length} rounds (fresh processes, round after round); castgo / ORT per round: ${spread.join('; ')}.`);
}
if (fs.existsSync(`${dir}/load.txt`)) {
  const load = fs.readFileSync(`${dir}/load.txt`, 'utf8').trim().split('\n').join(', ');
  console.log(`Load average (1, 5, 15 min): ${load}.`);
}
