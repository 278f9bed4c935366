// Keeps, per benchmark, the median of docs/speed-ort.sh's rounds: OUT_DIR/rounds/<key>.<round>.json (one JSON
// line each, as `cast bench --json`, bench.mjs and bench_torch.py write them) become OUT_DIR/<key>.json, the round
// of median GFLOP/s (the lower of the two middle ones for an even count) with `rounds_gflops` added: every
// round's GFLOP/s in round order, from which table.mjs prints the spread of the ratios.
//
//   node docs/ort/median.mjs OUT_DIR
import fs from 'node:fs';

const [dir] = process.argv.slice(2);
if (!dir) {
  console.error('usage: node docs/ort/median.mjs OUT_DIR');
  process.exit(2);
}
const byKey = new Map();
for (const f of fs.readdirSync(`${dir}/rounds`)) {
  const m = f.match(/^(.+)\.(\d+)\.json$/);
  if (!m) continue;
  let r;
  try {
    r = JSON.parse(fs.readFileSync(`${dir}/rounds/${f}`, 'utf8'));
  } catch (err) {
    console.error(`median.mjs: ${dir}/rounds/${f}: ${err.message}`);
    process.exit(1);
  }
  if (!byKey.has(m[1])) byKey.set(m[1], []);
  byKey.get(m[1]).push({ round: Number(m[2]), r });
}
for (const [key, runs] of byKey) {
  runs.sort((a, b) => a.round - b.round);
  const sorted = [...runs].sort((a, b) => a.r.gflops - b.r.gflops);
  const med = sorted[Math.floor((sorted.length - 1) / 2)].r;
  const out = { ...med, rounds_gflops: runs.map((x) => x.r.gflops) };
  fs.writeFileSync(`${dir}/${key}.json`, JSON.stringify(out) + '\n');
}
