// Integer attention of int8 programs, step 1 of 2 (attention_int8.wgsl is step 2): K and V of every (batch,
// head) quantized to int8 levels in the scratch buffer S, as the CPU's packKInt8 and packVInt8 do
// (backend/kernels/attention_int8.go). Thread t of a (batch, head) quantizes
//   - key t (t < Lk): scale max|k|/127, levels round-half-even(k·(127/max|k|)) (one float32 product each);
//   - head dimension d = t − Lk (d < HDP): the same over all keys of that dimension.
// Levels are stored as i32 per (batch·H + head, key) with the head dimension padded to HDP (a multiple of 4;
// the padding is 0), scales as f32 bits; the scales' functions are spliced in from quantize.wgsl.
// Parameter words: B, H, Lk, HD, HDP, K view (offset, batch, row and head strides), V view (the same), then the
// scratch offsets of K's levels, K's scales, V's levels, V's scales.
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read> Kb: array<f32>;
@group(0) @binding(2) var<storage, read> V: array<f32>;
@group(0) @binding(3) var<storage, read_write> S: array<i32>;

{{QUANTIZE}}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let H = prm[1]; let Lk = prm[2]; let HD = prm[3]; let HDP = prm[4];
  let b = gid.z; let h = gid.y; let t = gid.x;
  let bh = b * H + h;
  let kBase = prm[5] + b * prm[6] + h * prm[8]; let krs = prm[7];
  let vBase = prm[9] + b * prm[10] + h * prm[12]; let vrs = prm[11];
  let kLev = prm[13]; let kSc = prm[14]; let vLev = prm[15]; let vSc = prm[16];
  if (t < Lk) {
    let src = kBase + t * krs;
    var mb = 0u;
    for (var d = 0u; d < HD; d++) { mb = max(mb, absBits(Kb[src + d])); }
    let si = symScale(mb, 127.0);
    let dst = kLev + (bh * Lk + t) * HDP;
    for (var d = 0u; d < HDP; d++) {
      var q = 0;
      if (d < HD && si.y != 0.0) { q = i32(round(Kb[src + d] * si.y)); }
      S[dst + d] = q;
    }
    S[kSc + bh * Lk + t] = bitcast<i32>(si.x);
  } else if (t < Lk + HDP) {
    let d = t - Lk;
    var mb = 0u;
    if (d < HD) {
      for (var j = 0u; j < Lk; j++) { mb = max(mb, absBits(V[vBase + j * vrs + d])); }
    }
    let si = symScale(mb, 127.0);
    for (var j = 0u; j < Lk; j++) {
      var q = 0;
      if (si.y != 0.0) { q = i32(round(V[vBase + j * vrs + d] * si.y)); }
      S[vLev + (bh * Lk + j) * HDP + d] = q;
    }
    S[vSc + bh * HDP + d] = bitcast<i32>(si.x);
  }
}
