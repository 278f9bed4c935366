// Fused attention softmax(scale·Q·Kᵀ)·V with an online softmax: one thread per query row of one (batch,
// head), keys and values staged 16 at a time in workgroup memory. Q, K, V and the output are strided views
// (batch, row, head strides; unit stride along the head dimension HD).
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> Kb: array<f32>;
@group(0) @binding(3) var<storage, read> V: array<f32>;
@group(0) @binding(4) var<storage, read_write> OUT: array<f32>;

const HD: u32 = HDVALUEu;
const TK: u32 = 16u;
var<workgroup> ks: array<array<f32, HD>, TK>;
var<workgroup> vs: array<array<f32, HD>, TK>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let Lq = prm[2]; let Lk = prm[3]; let scale = bitcast<f32>(prm[4]);
  let b = wid.z; let h = wid.y; let row = wid.x * 64u + li;
  let qBase = prm[5] + b * prm[6] + row * prm[7] + h * prm[8];
  let kBase = prm[9] + b * prm[10] + h * prm[12]; let krs = prm[11];
  let vBase = prm[13] + b * prm[14] + h * prm[16]; let vrs = prm[15];
  let live = row < Lq;
  var q: array<f32, HD>;
  var acc: array<f32, HD>;
  if (live) {
    for (var d = 0u; d < HD; d++) { q[d] = Q[qBase + d] * scale; }
  }
  var m = -3.0e38;
  var l = 0.0;
  for (var j0 = 0u; j0 < Lk; j0 += TK) {
    for (var e = li; e < TK * HD; e += 64u) {
      let jj = e / HD; let d = e % HD;
      var kv = 0.0; var vv = 0.0;
      if (j0 + jj < Lk) { kv = Kb[kBase + (j0 + jj) * krs + d]; vv = V[vBase + (j0 + jj) * vrs + d]; }
      ks[jj][d] = kv; vs[jj][d] = vv;
    }
    workgroupBarrier();
    if (live) {
      let cnt = min(TK, Lk - j0);
      for (var jj = 0u; jj < cnt; jj++) {
        var s = 0.0;
        for (var d = 0u; d < HD; d++) { s = fma(q[d], ks[jj][d], s); }
        let mn = max(m, s);
        let corr = exp(m - mn);
        let p = exp(s - mn);
        l = l * corr + p;
        for (var d = 0u; d < HD; d++) { acc[d] = fma(p, vs[jj][d], acc[d] * corr); }
        m = mn;
      }
    }
    workgroupBarrier();
  }
  if (live) {
    let o = b * prm[17] + row * prm[18] + h * prm[19];
    let inv = 1.0 / l;
    for (var d = 0u; d < HD; d++) { OUT[o + d] = acc[d] * inv; }
  }
}
